#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "tests/testing/temp_dir.h"

namespace vigil::testing {

/// A software TPM (swtpm) for one test: its own state directory, its own loopback ports,
/// stopped in the destructor; its directory (state, swtpm.log, scratch) is a TestTempDir,
/// kept when the test failed.
///
/// The TPM is manufactured by `swtpm_setup` with an RSA 2048 EK (certificate at NV
/// 0x01C00002), an ECC P-384 high-range EK (certificate at 0x01C00016) and a platform
/// certificate, all signed by swtpm's local CA under /var/lib/swtpm-localca (created on
/// first use). Manufacturing costs about a second, so a manufactured state is cached on disk
/// (keyed by the local CA's issuer certificate) and copied per fixture: fixtures started
/// with the defaults share one EK, i.e. one node_id. Ask for `fresh_tpm` to get a TPM with
/// its own EK (a second node).
///
/// Typical use:
///   ASSERT_OK_AND_ASSIGN(auto tpm, SwtpmFixture::Start());
///   config.tcti = tpm->tcti();
class SwtpmFixture {
 public:
  struct Options {
    /// Manufacture a new TPM (new EK) instead of copying the cached one.
    bool fresh_tpm = false;
  };

  /// Manufactures (or copies) a TPM state, starts swtpm on free loopback ports and waits
  /// until it accepts connections.
  static absl::StatusOr<std::unique_ptr<SwtpmFixture>> Start(Options options);
  static absl::StatusOr<std::unique_ptr<SwtpmFixture>> Start() { return Start(Options{}); }

  SwtpmFixture(const SwtpmFixture&) = delete;
  SwtpmFixture& operator=(const SwtpmFixture&) = delete;
  /// Stops swtpm (SIGTERM, then SIGKILL) and reaps it; the directory goes as TestTempDir says.
  ~SwtpmFixture();

  /// tpm2-tss TCTI configuration string: "swtpm:host=127.0.0.1,port=P".
  std::string tcti() const;
  /// Same TPM in tpm2-tools' TPM2TOOLS_TCTI syntax ("swtpm:host=127.0.0.1,port=P").
  std::string tools_tcti() const { return tcti(); }
  /// PEM bundle of swtpm's local CA certificates (root, then the issuer that signs EK
  /// certificates). Feed it to an EK certificate check as the trust anchors.
  const std::string& ek_ca_path() const { return ek_ca_path_; }
  /// A scratch directory owned by this fixture (removed with it), for tests' own files.
  const std::string& scratch_dir() const { return scratch_dir_; }
  /// The TPM server port (the control port is port() + 1).
  int port() const { return port_; }

  /// Stops swtpm and starts it again on the same state: a power cycle of the machine.
  /// NV contents, persistent keys and the EK survive; PCRs reset, resetCount increments.
  absl::Status Restart();

 private:
  SwtpmFixture() = default;
  absl::Status Launch();
  void Stop();

  TestTempDir root_;
  std::string root_dir_;
  std::string state_dir_;
  std::string scratch_dir_;
  std::string ek_ca_path_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace vigil::testing
