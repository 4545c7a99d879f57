#include "core/heap.h"

#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdio>

#include "absl/time/clock.h"

namespace pgb {
namespace {

// glibc's initial M_MMAP_THRESHOLD (DEFAULT_MMAP_THRESHOLD_MIN): kept, not
// let grow. Blocks that large are rare on the data path (a message gathered
// across receives, a statement's analysis), so the system calls cost little.
constexpr int kMmapThreshold = 128 * 1024;

}  // namespace

void TuneHeapForBursts() {
  // Setting it also stops glibc adjusting M_TRIM_THRESHOLD, which stays at
  // its default (128 KiB): a heap's free top is trimmed as glibc starts out.
  mallopt(M_MMAP_THRESHOLD, kMmapThreshold);
}

uint64_t ResidentBytes() {
  const int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char text[128];
  const ssize_t n = ::read(fd, text, sizeof(text) - 1);
  ::close(fd);
  if (n <= 0) return 0;
  text[n] = '\0';
  unsigned long long size = 0;
  unsigned long long resident = 0;
  if (std::sscanf(text, "%llu %llu", &size, &resident) != 2) return 0;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

HeapReturn ReturnFreeHeap() {
  HeapReturn r;
  r.rss_before = ResidentBytes();
  const absl::Time start = absl::Now();
  malloc_trim(0);
  r.took = absl::Now() - start;
  r.rss_after = ResidentBytes();
  return r;
}

}  // namespace pgb
