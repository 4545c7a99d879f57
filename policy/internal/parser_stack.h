// Running the parser with enough stack. libpg_query turns its parse tree into
// JSON recursively, one C stack frame chain per tree level, without any depth
// check: `SELECT 1+1+1...` (a left-deep tree, which the grammar's own stack
// limit does not catch) crashes an 8 MiB thread stack at around 60,000 terms.
// Stack use grows at most linearly with the text, so the analyser asks for
// kStackPerInputByte per byte and runs the parse where that much is available:
// on the calling thread when it has that much left (every ordinary statement),
// else on a short-lived thread of its own with a stack of that size.
//
//   bool ran = RunWithStack(StackNeededFor(sql.size()), [&] { result = Parse(sql); });
#pragma once

#include <cstddef>

#include "absl/functional/function_ref.h"

namespace pgb::policy::internal {

// Measured: ~70 bytes of libpg_query stack per byte of `+1+1+1...` (the
// densest left-deep form), doubled for margin.
inline constexpr size_t kStackPerInputByte = 160;
// Room for our own tree walk (bounded by simdjson's depth limit of 1024) and
// libpg_query's fixed frames; sanitizers make frames several times larger.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr size_t kStackReserve = 4 << 20;
#else
inline constexpr size_t kStackReserve = 1 << 20;
#endif
// The largest stack the analyser will ask for (a ~6 MB statement); texts that
// need more are refused as too complex rather than reserving gigabytes.
inline constexpr size_t kMaxStack = size_t{1} << 30;

inline constexpr size_t StackNeededFor(size_t text_bytes) {
  return text_bytes * kStackPerInputByte + kStackReserve;
}

// Bytes of stack left below the caller's frame on the calling thread.
size_t RemainingStack();

// Runs `fn` with at least `bytes` of stack: in place when the calling thread
// has that much left, else on a new thread that is joined before returning.
// Returns false (without running `fn`) when no such thread can be started.
[[nodiscard]] bool RunWithStack(size_t bytes, absl::FunctionRef<void()> fn);

}  // namespace pgb::policy::internal
