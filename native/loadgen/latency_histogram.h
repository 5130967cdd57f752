// A fixed-size latency histogram (microseconds), log-linear like
// HdrHistogram: exact below 64 µs, then 32 buckets per power of two, so any
// reported percentile is within ~3% of the true value. Recording is one
// index computation and one increment: no allocation per sample, ever.
#ifndef ACCEPTPOOL_LOADGEN_LATENCY_HISTOGRAM_H_
#define ACCEPTPOOL_LOADGEN_LATENCY_HISTOGRAM_H_

#include <cstddef>
#include <cstdint>

namespace acceptpool {

class LatencyHistogram {
 public:
  // 2^kSubBits buckets per power of two above the exact range.
  static constexpr uint32_t kSubBits = 5;
  static constexpr uint32_t kSub = 1u << kSubBits;
  // Values below this are their own bucket.
  static constexpr uint64_t kExact = 2 * kSub;
  // The largest exponent kept; larger samples (over 12 days) are clamped.
  static constexpr uint32_t kMaxExponent = 40;
  static constexpr size_t kBuckets = kExact + (kMaxExponent - kSubBits) * kSub;

  void Record(uint64_t us);
  void Merge(const LatencyHistogram& other);
  void Reset();

  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }
  // The value at or below which `fraction` (0..1) of the samples lie: the
  // highest value of the bucket that sample falls in (0 when empty).
  uint64_t Percentile(double fraction) const;

  // Bucket arithmetic, public for tests.
  static size_t BucketOf(uint64_t us);
  static uint64_t BucketHighest(size_t bucket);

 private:
  uint64_t counts_[kBuckets] = {};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t max_ = 0;
};

}  // namespace acceptpool

#endif  // ACCEPTPOOL_LOADGEN_LATENCY_HISTOGRAM_H_
