#pragma once

#include "CLI/CLI.hpp"
#include "node/agent/config.h"

namespace vigil::node {

/// The names of the flags AddNodeIdentityFlags adds.
inline constexpr const char* kNodeIdentityFlags[] = {"--enroll-address",
                                                     "--ca-cert",
                                                     "--cert",
                                                     "--key",
                                                     "--state-dir",
                                                     "--max-message-bytes",
                                                     "--tcti",
                                                     "--measurement-pcr",
                                                     "--allow-resettable-pcr",
                                                     "--boot-pcrs",
                                                     "--ak-algorithm",
                                                     "--measurement-log"};

/// Adds the flags that name a node's identity, TPM and verifier connection to `command`,
/// filling `config`: --enroll-address, --ca-cert, --cert, --key, --state-dir,
/// --max-message-bytes, --tcti, --measurement-pcr, --allow-resettable-pcr, --boot-pcrs,
/// --ak-algorithm and --measurement-log. `vigil-node run` and `vigil-node check --verifier`
/// take the same table, so a check acts as the node `run` would be. Returns the --ca-cert
/// option (required by `run`, by `check` only with --verifier).
CLI::Option* AddNodeIdentityFlags(CLI::App& command, NodeConfig& config);

}  // namespace vigil::node
