// The heap measures of core/heap.h, on this process's own glibc heap. ASan
// replaces malloc (its allocator neither takes mallopt nor is trimmed), so
// there the tests have nothing to check.
#include "core/heap.h"

#include <cstring>
#include <memory>
#include <vector>

#include "gtest/gtest.h"

namespace pgb {
namespace {

constexpr uint64_t kMiB = 1 << 20;

#if defined(__SANITIZE_ADDRESS__)
#define SKIP_UNDER_ASAN() GTEST_SKIP() << "ASan's allocator replaces glibc's"
#else
#define SKIP_UNDER_ASAN() (void)0
#endif

TEST(HeapTest, ResidentBytesIsThisProcesssResidentSet) {
  const uint64_t before = ResidentBytes();
  ASSERT_GT(before, 0u);
  std::vector<char> touched(64 * kMiB);
  std::memset(touched.data(), 1, touched.size());
  EXPECT_GE(ResidentBytes(), before + 60 * kMiB);
}

// A large block freed goes back to the system at once, even after a larger
// one was freed (which, untuned, raises glibc's mmap threshold so that the
// next large blocks come from the heap and stay there).
TEST(HeapTest, LargeBlocksGoBackWhenFreed) {
  SKIP_UNDER_ASAN();
  TuneHeapForBursts();
  auto big = std::make_unique<char[]>(32 * kMiB);
  std::memset(big.get(), 1, 32 * kMiB);
  big.reset();
  const uint64_t before = ResidentBytes();
  for (int i = 0; i < 4; ++i) {
    auto block = std::make_unique<char[]>(16 * kMiB);
    std::memset(block.get(), 1, 16 * kMiB);
  }
  EXPECT_LT(ResidentBytes(), before + 8 * kMiB);
}

// Many small blocks, most of them freed: the pages they leave free are
// scattered, glibc keeps them, ReturnFreeHeap gives them back.
TEST(HeapTest, ReturnFreeHeapGivesBackWhatManySmallBlocksLeft) {
  SKIP_UNDER_ASAN();
  std::vector<std::unique_ptr<char[]>> blocks(256 * 1024);
  for (auto& b : blocks) {
    b = std::make_unique<char[]>(256);
    std::memset(b.get(), 1, 256);
  }
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (i % 256 != 0) blocks[i].reset();  // keep one block in 64 KiB
  }
  const HeapReturn r = ReturnFreeHeap();
  ASSERT_GT(r.rss_before, 0u);
  EXPECT_LT(r.rss_after + 32 * kMiB, r.rss_before) << r.rss_before << " -> " << r.rss_after;
}

}  // namespace
}  // namespace pgb
