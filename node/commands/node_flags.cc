#include "node/commands/node_flags.h"

namespace vigil::node {

CLI::Option* AddNodeIdentityFlags(CLI::App& cmd, NodeConfig& c) {
  cmd.add_option("--enroll-address", c.enroll_address, "Verifier's enrollment address")
      ->capture_default_str();
  CLI::Option* ca =
      cmd.add_option("--ca-cert", c.ca_cert_path, "PEM of the CA that signed the verifier");
  cmd.add_option("--cert", c.cert_path, "Node certificate (default <state-dir>/node.crt)");
  cmd.add_option("--key", c.key_path, "Node private key (default <state-dir>/node.key)");
  cmd.add_option("--state-dir", c.state_dir, "Node state directory")->capture_default_str();
  cmd.add_option("--max-message-bytes", c.max_message_bytes, "Largest gRPC message")
      ->check(CLI::Range(64 << 10, 64 << 20))
      ->capture_default_str();
  cmd.add_option("--tcti", c.tcti, "TPM TCTI, or 'none' to send unquoted evidence")
      ->capture_default_str();
  cmd.add_option("--measurement-pcr", c.measurement_pcr, "PCR the node extends")
      ->check(CLI::Range(0u, 23u))
      ->capture_default_str();
  cmd.add_flag("--allow-resettable-pcr", c.allow_resettable_pcr, "Allow PCR 16 or 23 (tests only)");
  cmd.add_option("--boot-pcrs", c.boot_pcrs, "Boot PCRs quoted beside the measurement PCR")
      ->delimiter(',')
      ->check(CLI::Range(0u, 23u));
  cmd.add_option("--ak-algorithm", c.ak_algorithm, "Attestation key algorithm")
      ->check(CLI::IsMember({"ecc", "rsa"}))
      ->capture_default_str();
  cmd.add_option("--measurement-log", c.measurement_log_path, "Measurement log (CEL JSON)")
      ->capture_default_str();
  return ca;
}

}  // namespace vigil::node
