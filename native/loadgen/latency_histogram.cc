#include "loadgen/latency_histogram.h"

namespace acceptpool {

size_t LatencyHistogram::BucketOf(uint64_t us) {
  if (us < kExact) return static_cast<size_t>(us);
  constexpr uint64_t kLimit = (uint64_t{1} << (kMaxExponent + 1)) - 1;
  if (us > kLimit) us = kLimit;
  uint32_t exponent = kSubBits + 1;  // us >= 2^(kSubBits + 1) here
  while ((us >> (exponent + 1)) != 0) ++exponent;
  uint64_t sub = us >> (exponent - kSubBits);  // in [kSub, 2 * kSub)
  return static_cast<size_t>(kExact + (exponent - kSubBits - 1) * kSub + (sub - kSub));
}

uint64_t LatencyHistogram::BucketHighest(size_t bucket) {
  if (bucket < kExact) return bucket;
  size_t k = bucket - kExact;
  uint32_t exponent = static_cast<uint32_t>(k / kSub) + kSubBits + 1;
  uint64_t sub = k % kSub + kSub;
  return ((sub + 1) << (exponent - kSubBits)) - 1;
}

void LatencyHistogram::Record(uint64_t us) {
  ++counts_[BucketOf(us)];
  ++count_;
  sum_ += us;
  if (us > max_) max_ = us;
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  if (other.max_ > max_) max_ = other.max_;
}

void LatencyHistogram::Reset() { *this = LatencyHistogram(); }

uint64_t LatencyHistogram::Percentile(double fraction) const {
  if (count_ == 0) return 0;
  if (fraction < 0) fraction = 0;
  if (fraction > 1) fraction = 1;
  // The rank of the sample asked for, 1-based: p50 of 10 samples is the 5th.
  uint64_t rank = static_cast<uint64_t>(fraction * static_cast<double>(count_) + 0.5);
  if (rank < 1) rank = 1;
  if (rank > count_) rank = count_;
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      uint64_t highest = BucketHighest(i);
      return highest < max_ ? highest : max_;
    }
  }
  return max_;
}

}  // namespace acceptpool
