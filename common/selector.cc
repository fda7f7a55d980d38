#include "common/selector.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace vigil {

absl::StatusOr<Selector> ParseSelector(const std::string& text) {
  Selector s;
  s.name = text;
  if (text.empty()) return absl::InvalidArgumentError("empty selector");
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    std::pair<std::string, std::string> kv = absl::StrSplit(part, absl::MaxSplits('=', 1));
    const auto& [key, value] = kv;
    if (value.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("selector '", text, "': '", part, "' is not key=value"));
    }
    if (key == "pid") {
      int pid = 0;
      if (!absl::SimpleAtoi(value, &pid) || pid <= 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("selector '", text, "': pid '", value, "' is not a positive integer"));
      }
      s.pid = pid;
    } else if (key == "exe") {
      s.exe_glob = value;
    } else if (key == "comm") {
      if (value.size() > 15) {
        return absl::InvalidArgumentError(absl::StrCat("selector '", text, "': comm '", value,
                                                       "' is longer than the kernel's 15 bytes"));
      }
      s.comm = value;
    } else if (key == "cgroup") {
      s.cgroup_glob = value;
    } else if (key == "container") {
      if (value.size() < 12 || value.size() > 64 ||
          value.find_first_not_of("0123456789abcdef") != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat("selector '", text, "': container id '",
                                                       value,
                                                       "' must be 12 to 64 lowercase hex digits"));
      }
      s.container_id = value;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("selector '", text, "': unknown key '", key,
                                                     "' (pid, exe, comm, cgroup, container)"));
    }
  }
  return s;
}

}  // namespace vigil
