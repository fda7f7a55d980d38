#pragma once

// `vigil-node run` split by privilege (docs/node.md, "Privilege separation"): a privileged
// process, forked first, that only reads seccomp filters for the main process over a
// socketpair; the main process then drops to the capabilities it needs, sets no_new_privs
// and installs its own seccomp filter (process_lockdown.h).

#include <sys/types.h>

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "node/privsep/privileged_client.h"
#include "node/procfs/procfs.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::node::privsep {

/// The privileged process's name (comm), to find it in ps(1) and /proc.
inline constexpr char kPrivilegedProcessName[] = "vigil-node-priv";

/// Forks the privileged process over a socketpair(AF_UNIX, SOCK_SEQPACKET). Call before any
/// thread starts. The child is killed when this process dies (PR_SET_PDEATHSIG, then
/// getppid checked against the parent that forked it), keeps only descriptor 2 (standard
/// error; 0 and 1 are /dev/null) and its channel, keeps only
/// policy::kNodePrivilegedCapabilities, sets no_new_privs and PR_SET_DUMPABLE 0, and serves
/// ServeRequests with ReadSeccompFilters until this process closes the channel.
absl::StatusOr<std::unique_ptr<PrivilegedClient>> StartPrivilegedProcess();

/// `vigil-node run`'s start: StartPrivilegedProcess, then `before_lockdown` (what still
/// needs the main process's full privileges, e.g. mounting tracefs), then
/// LockDownMainProcess. Call before any thread starts.
absl::StatusOr<std::unique_ptr<PrivilegedClient>> SplitByPrivilege(
    const std::function<absl::Status()>& before_lockdown);

/// /proc/<pid>/status of `pid`, parsed; the error names the file.
absl::StatusOr<procfs::Status> ReadProcessStatus(pid_t pid);

/// This process's security state and, when `privileged_pid` > 0, the privileged
/// process's, read from /proc/<pid>/status now. A process whose status cannot be read, or
/// that has exited, gets read_error (which fails the verifier's rule vigil.node.self).
v1::NodeSelfState ReadNodeSelfState(pid_t privileged_pid);

}  // namespace vigil::node::privsep
