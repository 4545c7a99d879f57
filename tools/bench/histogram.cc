#include "tools/bench/histogram.h"

#include <bit>
#include <cmath>

namespace pgb::bench {

int LatencyHistogram::IndexOf(uint64_t v) {
  constexpr uint64_t kLinear = uint64_t{1} << kLinearBits;
  if (v < kLinear) return static_cast<int>(v);
  if (v >= (uint64_t{1} << (kMaxBits + 1))) v = (uint64_t{1} << (kMaxBits + 1)) - 1;
  const int msb = 63 - std::countl_zero(v);  // >= kLinearBits
  const int shift = msb - (kLinearBits - 1);
  const int sub = static_cast<int>(v >> shift) - kSubBuckets;  // 0..63
  return static_cast<int>(kLinear) + (msb - kLinearBits) * kSubBuckets + sub;
}

uint64_t LatencyHistogram::HighestOf(int index) {
  constexpr int kLinear = 1 << kLinearBits;
  if (index < kLinear) return static_cast<uint64_t>(index);
  const int octave = (index - kLinear) / kSubBuckets;
  const int sub = (index - kLinear) % kSubBuckets;
  const int shift = octave + 1;
  const uint64_t low = static_cast<uint64_t>(kSubBuckets + sub) << shift;
  return low + (uint64_t{1} << shift) - 1;
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (int i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  if (other.count_) {
    if (other.max_ > max_) max_ = other.max_;
    if (other.min_ < min_) min_ = other.min_;
  }
}

uint64_t LatencyHistogram::Percentile(double q) const {
  if (count_ == 0) return 0;
  // The rank of the sample at q, 1-based, as HdrHistogram counts it.
  uint64_t rank = static_cast<uint64_t>(std::ceil(q / 100.0 * static_cast<double>(count_)));
  if (rank < 1) rank = 1;
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const uint64_t v = HighestOf(i);
      return v < max_ ? v : max_;
    }
  }
  return max_;
}

}  // namespace pgb::bench
