// A latency histogram in microseconds with HDR-like log-linear buckets: exact
// below 128 us, then 64 buckets per power of two (relative error < 1.6%), up to
// 2^40 us. Fixed size (about 18 KiB), no allocation on Record, mergeable.
//
//   LatencyHistogram h;
//   h.Record(elapsed_us);
//   uint64_t p99 = h.Percentile(99.0);
#pragma once

#include <array>
#include <cstdint>

namespace pgb::bench {

class LatencyHistogram {
 public:
  void Record(uint64_t us) {
    ++counts_[IndexOf(us)];
    ++count_;
    sum_ += us;
    if (us > max_) max_ = us;
    if (us < min_) min_ = us;
  }
  void Merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  uint64_t max() const { return count_ ? max_ : 0; }
  uint64_t min() const { return count_ ? min_ : 0; }
  double mean() const {
    return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0;
  }
  // The highest value equivalent to the bucket holding the q-th percentile
  // (q in 0..100), capped at max(); 0 when empty.
  uint64_t Percentile(double q) const;

 private:
  static constexpr int kLinearBits = 7;                       // 0..127 exact
  static constexpr int kSubBuckets = 1 << (kLinearBits - 1);  // 64 per octave above
  static constexpr int kMaxBits = 40;
  static constexpr int kBuckets = (1 << kLinearBits) + (kMaxBits - kLinearBits + 1) * kSubBuckets;

  static int IndexOf(uint64_t v);
  static uint64_t HighestOf(int index);

  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t max_ = 0;
  uint64_t min_ = UINT64_MAX;
};

}  // namespace pgb::bench
