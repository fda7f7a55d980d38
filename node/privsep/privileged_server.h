#pragma once

#include "node/seccomp/seccomp_inspector.h"

namespace vigil::node::privsep {

/// The privileged process's loop: answers requests on `fd` (protocol.h) one at a time until
/// the main process closes its end, reading filters with `reader`. A malformed request
/// (wrong size, unknown kind, pid outside 1..kMaxPid) gets an InvalidArgument response and
/// changes nothing; the loop goes on. An empty packet cannot be told from a closed channel
/// (recv returns 0 for both) and ends the loop too. Returns 0 when the peer closed the
/// channel (or sent an empty packet), 1 when the channel failed.
int ServeRequests(int fd, const SeccompFilterReader& reader);

}  // namespace vigil::node::privsep
