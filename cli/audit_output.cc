#include "cli/audit_output.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/output_file.h"
#include "common/escape.h"

namespace vigil::cli {

std::string JunitXml(const std::string& suite, const std::vector<JunitCase>& cases) {
  int failures = 0, skipped = 0;
  for (const JunitCase& c : cases) {
    if (!c.failures.empty()) ++failures;
    if (!c.skipped.empty()) ++skipped;
  }
  const std::string counts = absl::StrFormat(R"(tests="%d" failures="%d" errors="0" skipped="%d")",
                                             cases.size(), failures, skipped);
  std::string out = absl::StrCat("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites ", counts,
                                 ">\n  <testsuite name=\"", XmlEscape(suite), "\" ", counts, ">\n");
  for (const JunitCase& c : cases) {
    absl::StrAppend(&out, "    <testcase classname=\"", XmlEscape(c.classname), "\" name=\"",
                    XmlEscape(c.name), "\"");
    if (c.failures.empty() && c.skipped.empty()) {
      absl::StrAppend(&out, "/>\n");
      continue;
    }
    absl::StrAppend(&out, ">\n");
    if (!c.skipped.empty()) {
      absl::StrAppend(&out, "      <skipped message=\"", XmlEscape(c.skipped), "\"/>\n");
    }
    for (const auto& [rule, message] : c.failures) {
      absl::StrAppend(&out, "      <failure type=\"", XmlEscape(rule), "\" message=\"",
                      XmlEscape(message), "\">", XmlEscape(rule), ": ", XmlEscape(message),
                      "</failure>\n");
    }
    absl::StrAppend(&out, "    </testcase>\n");
  }
  absl::StrAppend(&out, "  </testsuite>\n</testsuites>\n");
  return out;
}

absl::Status WriteJunit(const std::string& path, const std::string& suite,
                        const std::vector<JunitCase>& cases) {
  return WriteFileAtomically(path, JunitXml(suite, cases), /*replace=*/true);
}

}  // namespace vigil::cli
