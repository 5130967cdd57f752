// Capacity that follows load. A buffer that grows with a burst keeps what
// its largest use in the last period needed and gives the rest back when the
// period ends: a burst's memory is returned within two periods of its end,
// while steady traffic, which needs about the same each period, keeps its
// capacity and allocates nothing. The period is the engine's tick (~1 s).
#ifndef ACCEPTPOOL_CORE_CAPACITY_H_
#define ACCEPTPOOL_CORE_CAPACITY_H_

#include <algorithm>
#include <cstddef>
#include <vector>

namespace acceptpool {

// The most a buffer held during the current period.
class PeakTracker {
 public:
  void Note(size_t used) { peak_ = std::max(peak_, used); }
  // Ends the period: what to keep (its peak, at least `floor`).
  size_t EndPeriod(size_t floor) {
    size_t keep = std::max(peak_, floor);
    peak_ = 0;
    return keep;
  }

 private:
  size_t peak_ = 0;
};

// Gives back the capacity of an empty `v` beyond `keep` elements, but only
// when it holds more than twice that: vectors grow by doubling, so capacity
// within 2x of the need is what steady use grew into and must not churn.
// Returns the bytes given back.
template <typename T>
size_t ShrinkTo(std::vector<T>* v, size_t keep) {
  if (!v->empty() || v->capacity() <= 2 * keep) return 0;
  size_t before = v->capacity();
  std::vector<T> smaller;
  smaller.reserve(keep);
  v->swap(smaller);
  return (before - v->capacity()) * sizeof(T);
}

}  // namespace acceptpool

#endif  // ACCEPTPOOL_CORE_CAPACITY_H_
