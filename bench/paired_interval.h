// Confidence intervals for benchmark ratios measured in paired rounds: each round measures
// a baseline and a configuration back to back, so the per-round ratio (or difference)
// cancels the machine's slow drifts, and the spread of those per-round values is what the
// interval is built from. Header-only: used by bench/probe_overhead.cc and its test.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace vigil::bench {

/// A point estimate (the median of the per-round values) and its 95% percentile-bootstrap
/// confidence interval.
struct Interval {
  double estimate = 0;
  double low = 0;
  double high = 0;
  double Width() const { return high - low; }
};

/// Median of `v` (the mean of the middle two for an even count); 0 when empty.
inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// The median of `samples` with a 95% percentile-bootstrap interval: `resamples` resamples
/// with replacement, drawn from a fixed-seed generator (SplitMix64) so the same samples give
/// the same interval on every run and every platform. Fewer than two samples: a zero-width
/// interval at the single value.
inline Interval BootstrapMedian(const std::vector<double>& samples, int resamples = 4000,
                                uint64_t seed = 0x5eed5eedULL) {
  Interval out;
  out.estimate = Median(samples);
  out.low = out.high = out.estimate;
  const size_t n = samples.size();
  if (n < 2 || resamples < 1) return out;
  uint64_t state = seed;
  auto next = [&state] {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  std::vector<double> medians;
  medians.reserve(resamples);
  std::vector<double> draw(n);
  for (int r = 0; r < resamples; ++r) {
    for (size_t i = 0; i < n; ++i) draw[i] = samples[next() % n];
    medians.push_back(Median(draw));
  }
  std::sort(medians.begin(), medians.end());
  auto at = [&](double q) {
    size_t i = static_cast<size_t>(q * (medians.size() - 1) + 0.5);
    return medians[std::min(i, medians.size() - 1)];
  };
  out.low = at(0.025);
  out.high = at(0.975);
  return out;
}

/// Per-round ratios config[i] / base[i] (both vectors one value per round, same length).
inline std::vector<double> PairedRatios(const std::vector<int64_t>& config,
                                        const std::vector<int64_t>& base) {
  std::vector<double> r;
  for (size_t i = 0; i < config.size() && i < base.size(); ++i) {
    r.push_back(static_cast<double>(config[i]) / static_cast<double>(base[i]));
  }
  return r;
}

/// Per-round differences (a[i] - b[i]) / divisor.
inline std::vector<double> PairedDifferences(const std::vector<int64_t>& a,
                                             const std::vector<int64_t>& b, double divisor) {
  std::vector<double> d;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    d.push_back(static_cast<double>(a[i] - b[i]) / divisor);
  }
  return d;
}

/// What an interval says about an upper bound ("ratio <= limit").
enum class Verdict { kMet, kNotMet, kUndecided };

/// Met only when the whole interval is at or below `limit`, not met when all of it is above,
/// undecided when the interval straddles it.
inline Verdict Judge(const Interval& ci, double limit) {
  if (ci.high <= limit) return Verdict::kMet;
  if (ci.low > limit) return Verdict::kNotMet;
  return Verdict::kUndecided;
}

inline const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kMet:
      return "met";
    case Verdict::kNotMet:
      return "not met";
    case Verdict::kUndecided:
      return "undecided";
  }
  return "undecided";
}

/// Rounds needed for an interval narrower than `target_width`, assuming the width shrinks
/// as 1/sqrt(rounds) from the `width` measured with `rounds` (at least `rounds` + 1 when the
/// interval is not narrow enough yet; `rounds` when it is).
inline long RoundsForWidth(double width, long rounds, double target_width) {
  if (width < target_width) return rounds;
  const double ratio = width / target_width;
  const long need = static_cast<long>(std::ceil(static_cast<double>(rounds) * ratio * ratio));
  return std::max(need, rounds + 1);
}

}  // namespace vigil::bench
