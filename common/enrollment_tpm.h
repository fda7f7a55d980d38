#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace vigil {

/// A TPM as the enrollment exchange (common/enrollment_exchange.h) sees it: the identity it
/// presents in BeginEnrollment and TPM2_ActivateCredential. vigil-node's TPM (ESAPI) and the
/// fleet simulator's software TPM implement it.
class EnrollmentTpm {
 public:
  virtual ~EnrollmentTpm() = default;

  /// Lowercase hex SHA-256 of the EK's marshalled TPMT_PUBLIC: the node_id the verifier must
  /// derive from ek_public().
  virtual const std::string& node_id() const = 0;
  /// Marshalled TPM2B_PUBLIC of the EK.
  virtual const std::string& ek_public() const = 0;
  /// DER EK certificate ("" when the TPM has none).
  virtual const std::string& ek_certificate_der() const = 0;
  /// Marshalled TPM2B_PUBLIC of the AK.
  virtual const std::string& ak_public() const = 0;
  /// Marshalled TPM2B_NAME of the AK (with its size prefix).
  virtual const std::string& ak_name() const = 0;
  /// Marshalled TPM2B_PUBLIC of the SRK the AK is a child of.
  virtual const std::string& srk_public() const = 0;
  /// TPM2_ActivateCredential with the EK and the AK: the secret the verifier wrapped.
  virtual absl::StatusOr<std::string> ActivateCredential(std::string_view credential_blob,
                                                         std::string_view encrypted_secret) = 0;
};

}  // namespace vigil
