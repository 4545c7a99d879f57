// Names the calling thread, so top -H, ps -L, perf and gdb tell pgbastion's
// threads apart (shards, the audit writer, each sink, the key refresher).
// Linux keeps 15 bytes of a name; the rest is cut.
//
//   NameThisThread(Cat("pgb-shard-", index));
#pragma once

#include <pthread.h>

#include <algorithm>
#include <cstring>
#include <string_view>

namespace pgb {

inline void NameThisThread(std::string_view name) {
  char cut[16];
  const size_t n = std::min(name.size(), sizeof(cut) - 1);
  std::memcpy(cut, name.data(), n);
  cut[n] = '\0';
  pthread_setname_np(pthread_self(), cut);
}

}  // namespace pgb
