#include "common/metrics/metrics.h"

#include <cmath>
#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace vigil::metrics {
namespace {

bool IdentifierChars(const std::string& s, bool colon) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!(alpha || (colon && c == ':') || (i > 0 && digit))) return false;
  }
  return true;
}

// A label value or help text escaped for the text format: backslash and newline always,
// the double quote in label values.
std::string Escape(const std::string& s, bool quote) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return absl::StrCat(static_cast<int64_t>(v));
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.15g", v);
  return buf;
}

// {a="x",b="y"} with `extra` appended (the histogram's le), or "" with no labels.
std::string LabelText(const Labels& labels, const std::pair<std::string, std::string>* extra) {
  if (labels.empty() && extra == nullptr) return "";
  std::string out = "{";
  bool first = true;
  auto add = [&](const std::pair<std::string, std::string>& l) {
    if (!first) out += ",";
    first = false;
    absl::StrAppend(&out, l.first, "=\"", Escape(l.second, true), "\"");
  };
  for (const auto& l : labels) add(l);
  if (extra != nullptr) add(*extra);
  return out + "}";
}

}  // namespace

std::string EnumLabelValue(const std::string& enum_name, const std::string& prefix) {
  std::string v = absl::StartsWith(enum_name, prefix) ? enum_name.substr(prefix.size()) : enum_name;
  absl::AsciiStrToLower(&v);
  return v;
}

bool ValidMetricName(const std::string& name) { return IdentifierChars(name, true); }

bool ValidLabelName(const std::string& name) {
  return IdentifierChars(name, false) && name.rfind("__", 0) != 0;
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::Observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  if (value > 0) {
    sum_micros_.fetch_add(static_cast<uint64_t>(std::llround(value * 1e6)),
                          std::memory_order_relaxed);
  }
}

std::vector<uint64_t> Histogram::bucket_counts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i) out[i] = counts_[i].load(std::memory_order_relaxed);
  return out;
}

double Histogram::sum() const {
  return static_cast<double>(sum_micros_.load(std::memory_order_relaxed)) / 1e6;
}

uint64_t Histogram::count() const {
  uint64_t n = 0;
  for (uint64_t c : bucket_counts()) n += c;
  return n;
}

std::vector<double> LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

Registry::Series* Registry::Add(const std::string& name, const std::string& help, Type type,
                                Labels labels) {
  if (!ValidMetricName(name)) return nullptr;
  for (const auto& [label, value] : labels) {
    if (!ValidLabelName(label) || (type == Type::kHistogram && label == "le")) return nullptr;
  }
  auto [it, inserted] = families_.try_emplace(name, Family{type, help, {}});
  Family& family = it->second;
  if (family.type != type) return nullptr;
  for (const Series& s : family.series) {
    if (s.labels == labels) return nullptr;
  }
  family.series.push_back(Series{std::move(labels), nullptr, nullptr, nullptr});
  return &family.series.back();
}

Counter* Registry::AddCounter(const std::string& name, const std::string& help, Labels labels) {
  absl::MutexLock lock(&mu_);
  Series* s = Add(name, help, Type::kCounter, std::move(labels));
  if (s == nullptr) return nullptr;
  s->counter = std::make_unique<Counter>();
  return s->counter.get();
}

Histogram* Registry::AddHistogram(const std::string& name, const std::string& help,
                                  std::vector<double> bounds, Labels labels) {
  for (size_t i = 1; i < bounds.size(); ++i) {
    if (!(bounds[i - 1] < bounds[i])) return nullptr;
  }
  absl::MutexLock lock(&mu_);
  Series* s = Add(name, help, Type::kHistogram, std::move(labels));
  if (s == nullptr) return nullptr;
  s->histogram = std::make_unique<Histogram>(std::move(bounds));
  return s->histogram.get();
}

bool Registry::AddCounterFunc(const std::string& name, const std::string& help, Labels labels,
                              std::function<double()> read) {
  absl::MutexLock lock(&mu_);
  Series* s = Add(name, help, Type::kCounter, std::move(labels));
  if (s == nullptr) return false;
  s->read = std::move(read);
  return true;
}

bool Registry::AddGaugeFunc(const std::string& name, const std::string& help, Labels labels,
                            std::function<double()> read) {
  absl::MutexLock lock(&mu_);
  Series* s = Add(name, help, Type::kGauge, std::move(labels));
  if (s == nullptr) return false;
  s->read = std::move(read);
  return true;
}

std::string Registry::Render() const {
  absl::MutexLock lock(&mu_);
  std::string out;
  for (const auto& [name, family] : families_) {
    const char* type = family.type == Type::kCounter ? "counter"
                       : family.type == Type::kGauge ? "gauge"
                                                     : "histogram";
    absl::StrAppend(&out, "# HELP ", name, " ", Escape(family.help, false), "\n# TYPE ", name, " ",
                    type, "\n");
    for (const Series& s : family.series) {
      if (s.histogram != nullptr) {
        const std::vector<uint64_t> counts = s.histogram->bucket_counts();
        const std::vector<double>& bounds = s.histogram->bounds();
        uint64_t cumulative = 0;
        for (size_t i = 0; i <= bounds.size(); ++i) {
          cumulative += counts[i];
          const std::pair<std::string, std::string> le{
              "le", i < bounds.size() ? Number(bounds[i]) : "+Inf"};
          absl::StrAppend(&out, name, "_bucket", LabelText(s.labels, &le), " ", cumulative, "\n");
        }
        absl::StrAppend(&out, name, "_sum", LabelText(s.labels, nullptr), " ",
                        Number(s.histogram->sum()), "\n", name, "_count",
                        LabelText(s.labels, nullptr), " ", cumulative, "\n");
        continue;
      }
      const double value =
          s.counter != nullptr ? static_cast<double>(s.counter->value()) : s.read();
      absl::StrAppend(&out, name, LabelText(s.labels, nullptr), " ", Number(value), "\n");
    }
  }
  return out;
}

}  // namespace vigil::metrics
