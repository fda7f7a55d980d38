#pragma once

// Output shared by `vigilctl audit manifests` and `audit compare`: JUnit XML for CI systems.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace vigil::cli {

/// One JUnit testcase: passed when `failures` and `skipped` are empty.
struct JunitCase {
  std::string classname;
  std::string name;
  /// Each failure's message (one <failure> element each, its type the rule id).
  std::vector<std::pair<std::string, std::string>> failures;  // (rule, message)
  /// Why the case was not run ("" when it was).
  std::string skipped;
};

/// A JUnit XML document: one <testsuites> holding one <testsuite name=`suite`> of `cases`.
std::string JunitXml(const std::string& suite, const std::vector<JunitCase>& cases);

/// Writes JunitXml(...) to `path` (replacing it atomically).
absl::Status WriteJunit(const std::string& path, const std::string& suite,
                        const std::vector<JunitCase>& cases);

}  // namespace vigil::cli
