#pragma once

// The search for the highest rate a system sustains without loss: a geometric ramp up to the
// first rate that loses, then bisection (geometric) between the last clean rate and it.

#include <algorithm>
#include <cmath>

namespace vigil::bench {

/// Proposes rates to try and keeps the highest clean one (no loss) and the lowest lossy
/// one. Ramp: start, start*factor, start*factor^2, ... capped at `max`; after the first
/// lossy rate, the geometric middle of the bracket until lossy/clean <= precision. A lossy
/// first step searches downwards (rate/factor) at most `max_down` times. Rates are whatever
/// unit the caller uses (events per second).
class RateSearch {
 public:
  RateSearch(double start, double factor, double max, double precision, int max_down = 4)
      : next_(std::min(start, max)),
        factor_(factor),
        max_(max),
        precision_(precision),
        downs_left_(max_down) {}

  /// The rate to try next; 0 when the search is over.
  double next() const { return done_ ? 0 : next_; }
  bool done() const { return done_; }

  /// The highest rate recorded clean (0: none) and the lowest recorded lossy (0: none).
  double best_clean() const { return clean_; }
  double first_lossy() const { return lossy_; }

  /// Records the outcome at `rate` (normally next()) and chooses the next rate.
  void Record(double rate, bool clean) {
    if (done_) return;
    if (clean) {
      clean_ = std::max(clean_, rate);
    } else {
      lossy_ = lossy_ == 0 ? rate : std::min(lossy_, rate);
    }
    if (lossy_ == 0) {  // still ramping up
      if (clean_ >= max_) {
        done_ = true;
        return;
      }
      next_ = std::min(clean_ * factor_, max_);
      return;
    }
    if (clean_ == 0) {  // lossy from the start: look lower
      if (downs_left_-- <= 0) {
        done_ = true;
        return;
      }
      next_ = lossy_ / factor_;
      return;
    }
    if (clean_ >= lossy_ || lossy_ / clean_ <= precision_) {
      done_ = true;
      return;
    }
    next_ = std::sqrt(clean_ * lossy_);
  }

 private:
  double next_;
  const double factor_;
  const double max_;
  const double precision_;
  int downs_left_;
  double clean_ = 0;
  double lossy_ = 0;
  bool done_ = false;
};

}  // namespace vigil::bench
