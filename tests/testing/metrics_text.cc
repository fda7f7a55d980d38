#include "tests/testing/metrics_text.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <regex>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/testing/build_paths.h"
#include "tests/testing/program_run.h"
#include "tests/testing/temp_dir.h"

namespace vigil::testing {

absl::StatusOr<std::vector<std::string>> ParseMetricsText(const std::string& text) {
  absl::StatusOr<TestTempDir> dir = TestTempDir::Create("metrics");
  if (!dir.ok()) return dir.status();
  const std::string path = dir->path() + "/metrics.txt";
  std::ofstream(path) << text;
  ProgramRun run =
      RunProgram({"/usr/bin/python3", SourceDir() + "/tests/common/metrics/parse_metrics.py", path},
                 dir->path());
  if (run.exit_code != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the reference parser refused the metrics (exit ", run.exit_code, "): ", run.err));
  }
  return std::vector<std::string>(absl::StrSplit(run.out, '\n', absl::SkipEmpty()));
}

absl::StatusOr<std::map<std::string, double>> MetricsSampleValues(const std::string& text) {
  absl::StatusOr<std::vector<std::string>> lines = ParseMetricsText(text);
  if (!lines.ok()) return lines.status();
  std::map<std::string, double> out;
  for (const std::string& line : *lines) {
    // "name{labels} value type": the labels may hold spaces, the value and type do not.
    const size_t type_at = line.rfind(' ');
    const size_t value_at = line.rfind(' ', type_at - 1);
    double value = 0;
    if (type_at == std::string::npos || value_at == std::string::npos ||
        !absl::SimpleAtod(line.substr(value_at + 1, type_at - value_at - 1), &value)) {
      return absl::InternalError(absl::StrCat("unexpected parser line: ", line));
    }
    out[line.substr(0, value_at)] = value;
  }
  return out;
}

absl::StatusOr<std::map<std::string, double>> ScrapeMetrics(int port) {
  httplib::Client client("127.0.0.1", port);
  httplib::Result result = client.Get("/metrics");
  if (!result) {
    return absl::UnavailableError(
        absl::StrCat("GET /metrics: ", httplib::to_string(result.error())));
  }
  if (result->status != 200) {
    return absl::UnavailableError(absl::StrCat("GET /metrics: HTTP ", result->status));
  }
  return MetricsSampleValues(result->body);
}

absl::StatusOr<int> AwaitMetricsPort(const std::function<std::string()>& logs) {
  const std::regex line("metrics on http://127\\.0\\.0\\.1:([0-9]+)/metrics");
  for (absl::Time deadline = absl::Now() + absl::Seconds(60);;
       absl::SleepFor(absl::Milliseconds(100))) {
    const std::string text = logs();
    int port = 0;
    for (std::sregex_iterator it(text.begin(), text.end(), line), end; it != end; ++it) {
      port = std::stoi((*it)[1].str());
    }
    if (port > 0) return port;
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError("no \"metrics on http://127.0.0.1:PORT/metrics\" logged");
    }
  }
}

absl::StatusOr<size_t> CheckDashboardQueriesServed(const std::string& path,
                                                   const std::map<std::string, double>& samples) {
  std::set<std::string> served;
  for (const auto& [sample, value] : samples) served.insert(sample.substr(0, sample.find('{')));
  std::ifstream in(SourceDir() + "/" + path);
  nlohmann::json dashboard = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (dashboard.is_discarded() || !dashboard.contains("panels") ||
      !dashboard["panels"].is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a dashboard with panels"));
  }
  const std::regex metric_name("vigil_[a-z_]+");
  size_t queried = 0;
  std::string unserved;
  for (const nlohmann::json& panel : dashboard["panels"]) {
    const std::string title = panel.value("title", "");
    if (!panel.contains("targets") || !panel["targets"].is_array()) continue;
    for (const nlohmann::json& target : panel["targets"]) {
      if (!target.contains("expr") || !target["expr"].is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": a target of \"", title, "\" has no expr string"));
      }
      const std::string expr = target["expr"].get<std::string>();
      for (std::sregex_iterator it(expr.begin(), expr.end(), metric_name), end; it != end; ++it) {
        ++queried;
        if (served.count(it->str()) == 0) {
          absl::StrAppend(&unserved, "\n\"", title, "\" queries ", it->str(),
                          ", which is not served");
        }
      }
    }
  }
  if (!unserved.empty()) return absl::NotFoundError(absl::StrCat(path, ":", unserved));
  return queried;
}

}  // namespace vigil::testing
