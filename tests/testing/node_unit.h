#pragma once

// deploy/systemd/vigil-node.service's capability bounding set, and how the tests run the real
// vigil-node under it (setpriv(1), as systemd gives it to a root service with
// NoNewPrivileges=yes).

#include <string>
#include <vector>

namespace vigil::testing {

/// The capabilities of the unit's CapabilityBoundingSet= line, lowercase without "cap_", as
/// setpriv(1) names them ("sys_admin").
std::vector<std::string> NodeUnitCapabilities();

/// The unit's capabilities that only `vigil-node run`, split by privilege, needs: CAP_BPF and
/// CAP_PERFMON (the single-process commands load the probes with CAP_SYS_ADMIN, which grants
/// what they grant) and CAP_SETPCAP (to drop the rest from each process's bounding set).
/// tests/integration/node_privsep_test.cc shows `run` needs each.
std::vector<std::string> CapabilitiesOnlyTheSplitNeeds();

/// The command line that runs a program with exactly `caps` in its bounding set and
/// no_new_privs: setpriv --bounding-set=-all,+cap... --no-new-privs.
std::vector<std::string> SetprivWithCapabilities(const std::vector<std::string>& caps);

}  // namespace vigil::testing
