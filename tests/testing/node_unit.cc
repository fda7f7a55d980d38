#include "tests/testing/node_unit.h"

#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/testing/build_paths.h"
#include "tests/testing/program_run.h"

namespace vigil::testing {

std::vector<std::string> NodeUnitCapabilities() {
  std::istringstream unit(ReadWholeFile(SourceDir() + "/deploy/systemd/vigil-node.service"));
  std::vector<std::string> caps;
  for (std::string line; std::getline(unit, line);) {
    if (!absl::StartsWith(line, "CapabilityBoundingSet=")) continue;
    for (absl::string_view c :
         absl::StrSplit(line.substr(line.find('=') + 1), ' ', absl::SkipEmpty())) {
      std::string name = absl::AsciiStrToLower(c);
      if (absl::StartsWith(name, "cap_")) name = name.substr(4);
      caps.push_back(name);
    }
  }
  return caps;
}

std::vector<std::string> CapabilitiesOnlyTheSplitNeeds() { return {"bpf", "perfmon", "setpcap"}; }

std::vector<std::string> SetprivWithCapabilities(const std::vector<std::string>& caps) {
  std::string set = "-all";
  for (const std::string& c : caps) absl::StrAppend(&set, ",+", c);
  return {"/usr/bin/setpriv", "--bounding-set=" + set, "--no-new-privs"};
}

}  // namespace vigil::testing
