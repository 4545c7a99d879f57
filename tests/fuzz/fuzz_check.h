// FUZZ_CHECK: an invariant the fuzz targets assert. Always on (not assert):
// the Fuzz build must check it whatever NDEBUG says, and abort so libFuzzer
// records the input as a crash.
//
//   FUZZ_CHECK(scan.valid_prefix <= size);
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)
