#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace vigil::metrics {

/// Label names and values of one series, in the order they are rendered.
using Labels = std::vector<std::pair<std::string, std::string>>;

/// A monotonically increasing count. Lock-free; safe from any thread.
class Counter {
 public:
  void Increment(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

/// Observations counted into fixed buckets (upper bounds, ascending), with their sum.
/// Lock-free; safe from any thread.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);
  void ObserveDuration(absl::Duration d) { Observe(absl::ToDoubleSeconds(d)); }

  const std::vector<double>& bounds() const { return bounds_; }
  /// Per-bucket (not cumulative) counts; the last one is the +Inf bucket.
  std::vector<uint64_t> bucket_counts() const;
  double sum() const;
  uint64_t count() const;

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1
  std::atomic<uint64_t> sum_micros_{0};  // the sum, in millionths, kept integral for atomics
};

/// Bucket bounds for durations in seconds, from 0.5 ms to 10 s.
std::vector<double> LatencyBuckets();

/// The metrics of one process, rendered in Prometheus' text exposition format (0.0.4).
/// Series are added at start (each name with one type and help text; a name may have many
/// label sets) and live as long as the registry. Add* return nullptr (or false) for a name
/// or label name that is not a valid Prometheus identifier, a name already registered with
/// another type, or a label set the name already has. Thread-safe.
class Registry {
 public:
  Counter* AddCounter(const std::string& name, const std::string& help, Labels labels = {});
  Histogram* AddHistogram(const std::string& name, const std::string& help,
                          std::vector<double> bounds, Labels labels = {});
  /// A counter or gauge whose value is read from `read` at every scrape (for counts another
  /// component keeps). `read` must be thread-safe and outlive the registry's use.
  bool AddCounterFunc(const std::string& name, const std::string& help, Labels labels,
                      std::function<double()> read);
  bool AddGaugeFunc(const std::string& name, const std::string& help, Labels labels,
                    std::function<double()> read);

  /// Every family, sorted by name, each series in the order it was added.
  std::string Render() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Series {
    Labels labels;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Histogram> histogram;
    std::function<double()> read;
  };
  struct Family {
    Type type;
    std::string help;
    std::vector<Series> series;
  };

  // The series for `name` with `labels`, creating the family; nullptr when the name, a
  // label or the type is refused.
  Series* Add(const std::string& name, const std::string& help, Type type, Labels labels)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, Family> families_ ABSL_GUARDED_BY(mu_);
};

/// A protobuf enum value's name as a label value: `prefix` removed, lower case
/// ("TRUST_AFFIRMING", "TRUST_" -> "affirming"; "NONCE_EXPIRED", "" -> "nonce_expired").
std::string EnumLabelValue(const std::string& enum_name, const std::string& prefix);

/// Whether `name` is a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*).
bool ValidMetricName(const std::string& name);
/// Whether `name` is a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__").
bool ValidLabelName(const std::string& name);

}  // namespace vigil::metrics
