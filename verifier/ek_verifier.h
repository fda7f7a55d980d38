#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/openssl_util.h"
#include "common/tpm/tpm_public.h"
#include "verifier/node_registry.h"

namespace vigil::verifier {

/// Why the verifier trusts an EK.
enum class EkTrust {
  /// Its certificate chains to the configured CA bundle and certifies exactly this key.
  kCertificate,
  /// An operator approved its node_id (`vigilctl nodes approve`).
  kOperatorApproved,
  /// Trust-on-first-use, which the operator switched on explicitly.
  kTrustOnFirstUse,
  /// Its certificate chains to the simulated-TPM CA (--accept-simulated-tpm): a software key
  /// of the fleet simulator, not a TPM. Such a node never makes a hardware claim.
  kSimulated,
};

/// Human-readable name of an EkTrust ("certificate", "operator-approved", "tofu",
/// "simulated-tpm").
std::string_view EkTrustName(EkTrust trust);

/// Decides whether an endorsement key may enroll: its certificate chains to a CA bundle (TPM
/// vendors' roots and intermediates) and certifies the same public key; or the operator
/// approved its node_id; or trust-on-first-use is configured. Thread-safe.
class EkVerifier {
 public:
  struct Options {
    /// PEM file of CA certificates (roots and intermediates) that sign EK certificates;
    /// empty for none.
    std::string ca_bundle_path;
    /// Accept any EK. Only for labs and demos: anyone who can reach the enrollment
    /// listener with a TPM (or a software TPM) gets a node identity.
    bool trust_on_first_use = false;
    /// PEM file of the CA that signs the EK certificates of simulated TPMs (the fleet
    /// simulator's software keys); empty: no simulated TPM may enroll. An EK whose
    /// certificate chains to this CA alone enrolls as EkTrust::kSimulated, checked before the
    /// other ways, so a simulated EK never counts as a real one.
    std::string simulated_ca_path = {};
  };

  /// Loads the CA bundle. `registry` (for approvals) must outlive the verifier.
  static absl::StatusOr<std::unique_ptr<EkVerifier>> Create(const Options& options,
                                                            const NodeRegistry* registry);

  /// How `ek` (with DER certificate `ek_certificate_der`, possibly empty) is trusted, or
  /// FAILED_PRECONDITION saying why each way to trust it failed. kSimulated comes first:
  /// an EK certified by the simulated-TPM CA is simulated whatever else would trust it.
  absl::StatusOr<EkTrust> Check(const tpm::TpmPublic& ek, std::string_view ek_certificate_der,
                                const std::string& node_id) const;

  /// Checks only the certificate path: chain to the bundle, then the key matches.
  absl::Status CheckCertificate(const tpm::TpmPublic& ek,
                                std::string_view ek_certificate_der) const;

 private:
  EkVerifier(Options options, const NodeRegistry* registry, X509StorePtr store,
             X509StorePtr simulated_store)
      : options_(std::move(options)),
        registry_(registry),
        store_(std::move(store)),
        simulated_store_(std::move(simulated_store)) {}

  const Options options_;
  const NodeRegistry* const registry_;
  const X509StorePtr store_;            // null without a bundle
  const X509StorePtr simulated_store_;  // null without --accept-simulated-tpm
};

}  // namespace vigil::verifier
