#include "policy/internal/parser_stack.h"

#include <pthread.h>
#include <unistd.h>

#include <cstdint>

namespace pgb::policy::internal {
namespace {

// The lowest usable address of the calling thread's stack (glibc reports the
// main thread's from RLIMIT_STACK), found once per thread.
uintptr_t StackLimit() {
  thread_local const uintptr_t limit = [] {
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) != 0) return ~uintptr_t{0};
    void* addr = nullptr;
    size_t size = 0;
    size_t guard = 0;
    int rc = pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_getguardsize(&attr, &guard);
    pthread_attr_destroy(&attr);
    if (rc != 0) return ~uintptr_t{0};
    return reinterpret_cast<uintptr_t>(addr) + guard;
  }();
  return limit;
}

void* RunThunk(void* arg) {
  (*static_cast<absl::FunctionRef<void()>*>(arg))();
  return nullptr;
}

}  // namespace

size_t RemainingStack() {
  uintptr_t here = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  uintptr_t limit = StackLimit();
  return here > limit ? here - limit : 0;
}

bool RunWithStack(size_t bytes, absl::FunctionRef<void()> fn) {
  if (RemainingStack() >= bytes) {
    fn();
    return true;
  }
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_t size = (bytes + page - 1) / page * page;
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return false;
  bool ok = pthread_attr_setstacksize(&attr, size) == 0;
  pthread_t thread;
  ok = ok && pthread_create(&thread, &attr, &RunThunk, &fn) == 0;
  pthread_attr_destroy(&attr);
  if (!ok) return false;
  pthread_join(thread, nullptr);
  return true;
}

}  // namespace pgb::policy::internal
