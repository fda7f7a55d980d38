#include "tests/testing/metrics_text.h"

#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
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

}  // namespace vigil::testing
