#pragma once

#include <string>
#include <vector>

namespace vigil::node {

/// Which BPF hook kinds this kernel accepts, found by loading and attaching a trivial
/// program of each kind (a program that returns 0 and is detached at once).
struct HookSupport {
  bool lsm = false;
  bool fentry = false;
  /// One line per refused kind, with the errno name: "lsm: EPERM", "fentry: EPERM".
  std::vector<std::string> refused;
};

/// Probes BPF LSM (attached to bpf_lsm_file_mprotect) and fentry (on
/// security_file_mprotect). Tracepoints are the baseline and are not probed here: a missing
/// tracepoint is found per program by the loader.
HookSupport DetectHookSupport();

}  // namespace vigil::node
