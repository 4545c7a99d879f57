#include <thread>

#include "core/audit/record.h"
#include "core/audit/ring.h"
#include "gtest/gtest.h"

namespace pgb::audit {
namespace {

struct Item {
  uint64_t value = 0;
  uint64_t check = 0;
};

TEST(SpscRingTest, FillsDrainsAndWrapsAround) {
  SpscRing<Item> ring(4);
  uint64_t next_in = 0, next_out = 0;
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 4; ++i) {
      Item* slot = ring.TryClaim();
      ASSERT_NE(slot, nullptr);
      slot->value = next_in++;
      ring.Publish();
    }
    EXPECT_EQ(ring.TryClaim(), nullptr) << "full";
    EXPECT_EQ(ring.ProducerSize(), 4u);
    const size_t n = round % 2 == 0 ? 3 : 4;  // leave one behind on even rounds
    ASSERT_GE(ring.Available(), n);
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(ring.Peek(i).value, next_out++);
    ring.Release(n);
    if (n == 3) {
      ASSERT_EQ(ring.Available(), 1u);
      EXPECT_EQ(ring.Peek(0).value, next_out++);
      ring.Release(1);
    }
    EXPECT_EQ(ring.Available(), 0u);
  }
}

TEST(SpscRingTest, ClaimWithoutPublishIsInvisible) {
  SpscRing<Item> ring(2);
  Item* slot = ring.TryClaim();
  ASSERT_NE(slot, nullptr);
  slot->value = 1;
  EXPECT_EQ(ring.Available(), 0u);
  EXPECT_EQ(ring.TryClaim(), slot);
  ring.Publish();
  EXPECT_EQ(ring.Available(), 1u);
}

// Two threads, a small ring (constant wraparound), and a payload the
// consumer checks: a torn or reordered slot would show.
TEST(SpscRingTest, TwoThreadStress) {
  constexpr uint64_t kCount = 2'000'000;
  SpscRing<Item> ring(64);
  std::thread producer([&] {
    for (uint64_t i = 0; i < kCount;) {
      Item* slot = ring.TryClaim();
      if (slot == nullptr) {
        std::this_thread::yield();
        continue;
      }
      slot->value = i;
      slot->check = i * 0x9E3779B97F4A7C15ULL;
      ring.Publish();
      ++i;
    }
  });
  uint64_t expected = 0;
  bool ok = true;
  while (expected < kCount && ok) {
    const size_t n = ring.Available();
    if (n == 0) {
      std::this_thread::yield();
      continue;
    }
    for (size_t i = 0; i < n; ++i) {
      const Item& item = ring.Peek(i);
      if (item.value != expected || item.check != expected * 0x9E3779B97F4A7C15ULL) ok = false;
      ++expected;
    }
    ring.Release(n);
  }
  producer.join();
  EXPECT_TRUE(ok) << "at " << expected;
  EXPECT_EQ(expected, kCount);
}

TEST(SpscRingTest, HoldsAuditRecords) {
  SpscRing<AuditRecord> ring(8);
  AuditRecord* r = ring.TryClaim();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(r) % 64, 0u);
  r->Reset();
  r->SetStatement("SELECT 1");
  ring.Publish();
  ASSERT_EQ(ring.Available(), 1u);
  EXPECT_EQ(ring.Peek(0).Get(AuditField::kStatement), "SELECT 1");
}

}  // namespace
}  // namespace pgb::audit
