#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "node/agent/config.h"
#include "node/tpm/node_tpm.h"

namespace vigil::node {

/// Where the node's TLS identity lives once enrolled.
struct NodeIdentity {
  std::string node_id;
  /// PEM node certificate chain (the node certificate, then the CA).
  std::string cert_path;
  /// PEM private key of the node certificate (0600).
  std::string key_path;
  /// True when this call ran the enrollment protocol; false when a valid certificate for
  /// this node and its current AK was already there.
  bool enrolled_now = false;
};

/// Makes sure the node holds a certificate from the verifier's CA for its TPM identity.
///
/// A node whose AK was loaded from the state directory (not newly created) and that holds
/// a certificate which verifies against NodeConfig.ca_cert_path, is not expired and names
/// this node_id in its SPIFFE URI does not enroll again. Otherwise it enrolls over
/// server-authenticated TLS to NodeConfig.enroll_address (the verifier checked against
/// ca_cert_path): a fresh TLS key and CSR, BeginEnrollment with the EK (and its
/// certificate) and AK, TPM2_ActivateCredential, CompleteEnrollment; then writes node.crt
/// and node.key (0600) under NodeConfig.state_dir (or cert_path/key_path when set).
absl::StatusOr<NodeIdentity> EnsureEnrolled(const NodeConfig& config, tpm::NodeTpm& tpm,
                                            absl::Duration rpc_timeout = absl::Seconds(30));

/// The certificate paths EnsureEnrolled uses for `config`.
std::string NodeCertPath(const NodeConfig& config);
std::string NodeKeyPath(const NodeConfig& config);

}  // namespace vigil::node
