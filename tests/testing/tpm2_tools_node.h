#pragma once

// A node played by tpm2-tools (the independent peer) on a swtpm fixture: an EK from the
// standard templates with its NV certificate, and an AK under the owner SRK, the way
// vigil-node makes it. Used by the verifier's enrollment and EK tests.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "tests/testing/swtpm_fixture.h"
#include "tests/testing/tpm2_tools_util.h"
#include "vigil/v1/enrollment.pb.h"

namespace vigil::testing {

class ToolsNode {
 public:
  /// `ek_alg` is tpm2_createek's -G: "rsa" (cert at 0x01C00002) or "ecc384" (high range,
  /// cert at 0x01C00016).
  static absl::StatusOr<std::unique_ptr<ToolsNode>> Create(const std::string& ek_alg) {
    auto tpm = SwtpmFixture::Start();
    if (!tpm.ok()) return tpm.status();
    std::unique_ptr<ToolsNode> n(new ToolsNode);
    n->tpm_ = std::move(*tpm);
    n->ek_alg_ = ek_alg;
    const std::string d = n->dir();
    // swtpm provisions certificates for the RSA 2048 and the high-range P-384 EKs.
    std::string read_cert;
    if (ek_alg == "rsa")
      read_cert = absl::StrCat("tpm2_nvread -C o 0x01c00002 -o ", d, "/ek.crt && ");
    if (ek_alg == "ecc384")
      read_cert = absl::StrCat("tpm2_nvread -C o 0x01c00016 -o ", d, "/ek.crt && ");
    auto out = n->Run(absl::StrCat(
        "tpm2_createek -G ", ek_alg, " -c ", d, "/ek.ctx -u ", d, "/ek.pub && ",
        "tpm2_flushcontext -t && ", read_cert, "tpm2_createprimary -C o -g sha256 -G ecc -c ", d,
        "/srk.ctx && ", "tpm2_create -C ", d, "/srk.ctx -G ecc256:ecdsa-sha256:null -g sha256 -a ",
        "'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign' -u ", d,
        "/ak.pub -r ", d, "/ak.priv && tpm2_flushcontext -t && tpm2_load -C ", d, "/srk.ctx -u ", d,
        "/ak.pub -r ", d, "/ak.priv -c ", d, "/ak.ctx -n ", d, "/ak.name && tpm2_flushcontext -t"));
    if (!out.ok()) return out.status();
    return n;
  }

  absl::StatusOr<std::string> Run(const std::string& cmd) {
    return RunTpm2Tool(tpm_->tools_tcti(), cmd);
  }

  std::string dir() const { return tpm_->scratch_dir(); }
  std::string ek_public() const { return ReadBytes(dir() + "/ek.pub"); }
  std::string ek_certificate() const { return ReadBytes(dir() + "/ek.crt"); }
  std::string ak_public() const { return ReadBytes(dir() + "/ak.pub"); }
  /// Marshalled TPM2B_NAME of the AK.
  std::string ak_tpm2b_name() const {
    std::string name = ReadBytes(dir() + "/ak.name");
    return std::string{static_cast<char>(name.size() >> 8), static_cast<char>(name.size() & 0xff)} +
           name;
  }
  const SwtpmFixture& tpm() const { return *tpm_; }

  /// A BeginEnrollment request for this node's EK (with its certificate when
  /// `with_ek_certificate`) and AK, with `csr_pem`.
  v1::BeginEnrollmentRequest BeginRequest(const std::string& csr_pem,
                                          bool with_ek_certificate = true) const {
    v1::BeginEnrollmentRequest r;
    r.set_ek_public(ek_public());
    if (with_ek_certificate) r.set_ek_certificate(ek_certificate());
    r.set_ak_public(ak_public());
    r.set_ak_name(ak_tpm2b_name());
    r.set_csr_pem(csr_pem);
    return r;
  }

  /// The CompleteEnrollment request answering `begin`: the secret this TPM activates.
  absl::StatusOr<v1::CompleteEnrollmentRequest> Answer(const v1::BeginEnrollmentResponse& begin) {
    absl::StatusOr<std::string> secret =
        Activate(begin.credential_blob(), begin.encrypted_secret());
    if (!secret.ok()) return secret.status();
    v1::CompleteEnrollmentRequest complete;
    complete.set_enrollment_id(begin.enrollment_id());
    complete.set_activated_secret(*secret);
    return complete;
  }

  /// TPM2_ActivateCredential with the AK and EK; returns the recovered secret.
  absl::StatusOr<std::string> Activate(const std::string& credential_blob,
                                       const std::string& encrypted_secret) {
    const std::string d = dir();
    if (!WriteBytes(d + "/cred", std::string("\xba\xdc\xc0\xde\x00\x00\x00\x01", 8) +
                                     credential_blob + encrypted_secret)) {
      return absl::InternalError("cannot write the credential");
    }
    std::string cmd;
    if (ek_alg_ == "rsa" || ek_alg_ == "ecc") {
      // Low-range EKs authorize use with PolicySecret(TPM_RH_ENDORSEMENT).
      cmd = absl::StrCat("tpm2_startauthsession --policy-session -S ", d,
                         "/s.ctx && tpm2_policysecret -S ", d, "/s.ctx -c e && ",
                         "tpm2_activatecredential -c ", d, "/ak.ctx -C ", d, "/ek.ctx -i ", d,
                         "/cred -o ", d, "/secret -P session:", d, "/s.ctx; rc=$?; ",
                         "tpm2_flushcontext ", d, "/s.ctx; tpm2_flushcontext -t; exit $rc");
    } else {
      cmd = absl::StrCat("tpm2_activatecredential -c ", d, "/ak.ctx -C ", d, "/ek.ctx -i ", d,
                         "/cred -o ", d, "/secret; rc=$?; tpm2_flushcontext -t; exit $rc");
    }
    auto out = Run(cmd);
    if (!out.ok()) return out.status();
    return ReadBytes(d + "/secret");
  }

 private:
  ToolsNode() = default;
  std::unique_ptr<SwtpmFixture> tpm_;
  std::string ek_alg_;
};

}  // namespace vigil::testing
