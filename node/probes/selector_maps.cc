#include "node/probes/selector_maps.h"

#include <fnmatch.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace vigil::node {

absl::StatusOr<vigil_selector> ToKernelSelector(const Selector& selector) {
  vigil_selector k;
  std::memset(&k, 0, sizeof(k));
  if (selector.comm.size() >= VIGIL_COMM_LEN) {
    return absl::InvalidArgumentError(absl::StrCat("selector '", selector.name, "': comm '",
                                                   selector.comm, "' is longer than 15 bytes"));
  }
  if (selector.exe_glob.size() >= VIGIL_GLOB_LEN) {
    return absl::InvalidArgumentError(
        absl::StrCat("selector '", selector.name, "': exe pattern longer than ", VIGIL_GLOB_LEN - 1,
                     " bytes cannot be matched in the kernel"));
  }
  k.match_comm = !selector.comm.empty();
  k.match_exe = !selector.exe_glob.empty();
  k.match_cgroup = !selector.cgroup_glob.empty() || !selector.container_id.empty();
  // A selector with a pid can only ever match that process, which user space seeds; the
  // exec-time matcher cannot check a pid, so such a selector is never active in the kernel
  // (otherwise `pid=N,comm=x` would select every process that execs as x).
  k.active = !selector.pid.has_value() && (k.match_comm || k.match_exe || k.match_cgroup);
  std::memcpy(k.comm, selector.comm.data(), selector.comm.size());
  std::memcpy(k.exe_glob, selector.exe_glob.data(), selector.exe_glob.size());
  return k;
}

std::map<uint64_t, uint32_t> CgroupSelectorMasks(const std::vector<Selector>& selectors,
                                                 const std::string& cgroup_root) {
  std::map<uint64_t, uint32_t> masks;
  bool any = false;
  for (const auto& s : selectors) any |= !s.cgroup_glob.empty() || !s.container_id.empty();
  if (!any) return masks;

  auto visit = [&](const std::filesystem::path& dir) {
    const std::string full = dir.string();
    const size_t root_len = std::min(cgroup_root.size(), full.size());
    const std::string rel =
        full.size() > root_len ? std::string(full.begin() + root_len, full.end()) : "/";
    uint32_t mask = 0;
    for (size_t i = 0; i < selectors.size() && i < VIGIL_MAX_SELECTORS; ++i) {
      const Selector& s = selectors[i];
      if (s.cgroup_glob.empty() && s.container_id.empty()) continue;
      if (!s.cgroup_glob.empty() && fnmatch(s.cgroup_glob.c_str(), rel.c_str(), 0) != 0) continue;
      if (!s.container_id.empty() && rel.find(s.container_id) == std::string::npos) continue;
      mask |= 1u << i;
    }
    if (mask == 0) return;
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0) masks[st.st_ino] = mask;
  };

  std::error_code ec;
  visit(cgroup_root);
  for (std::filesystem::recursive_directory_iterator
           it(cgroup_root, std::filesystem::directory_options::skip_permission_denied, ec),
       end;
       !ec && it != end; it.increment(ec)) {
    // Cgroups vanish while we walk; a vanished one simply is not in the map.
    std::error_code dir_ec;
    if (it->is_directory(dir_ec) && !it->is_symlink(dir_ec)) visit(it->path());
  }
  return masks;
}

}  // namespace vigil::node
