// The process heap after a burst. glibc's malloc keeps what the gateway frees
// for reuse: a statement analysed with a 200 MB peak (simdjson's tape of the
// parse tree of a 50,000-statement Query), thousands of sessions of a
// connection storm, all freed, stay resident unless they are handed back.
// Two measures, both glibc's own (docs/operations.md, "Memory"):
//
//  - at start, the mmap threshold is fixed at glibc's initial 128 KiB. glibc
//    otherwise raises it, up to 32 MiB, each time a large block is freed, so
//    that from then on the large transient buffers of an analysis come from
//    the heap and stay there; fixed, every block that large is mapped alone
//    and unmapped when it is freed.
//  - a shard that has been quiet for a tick after doing work returns the free
//    pages of every arena to the system (malloc_trim), at most once a second:
//    the many small blocks of a storm leave pages free but scattered, which
//    glibc never trims by itself. A busy shard never pays for it.
//
//   TuneHeapForBursts();                       // once, before the shards start
//   HeapReturn r = ReturnFreeHeap();           // on a shard's quiet tick
//   PGB_LOG(kDebug) << "RSS " << r.rss_before << " -> " << r.rss_after;
#pragma once

#include <cstdint>

#include "absl/time/time.h"

namespace pgb {

// Fixes malloc's mmap threshold (see above). Call before threads start.
void TuneHeapForBursts();

struct HeapReturn {
  uint64_t rss_before = 0;  // bytes resident before and after (0: unknown)
  uint64_t rss_after = 0;
  absl::Duration took;
};

// Gives the free pages of every malloc arena back to the system.
HeapReturn ReturnFreeHeap();

// The process's resident set, in bytes (0 when /proc cannot be read).
uint64_t ResidentBytes();

}  // namespace pgb
