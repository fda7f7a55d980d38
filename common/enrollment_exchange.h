#pragma once

// The client side of enrollment by credential activation, for vigil-node and the fleet
// simulator alike.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/enrollment_tpm.h"
#include "vigil/v1/enrollment.grpc.pb.h"

namespace vigil {

/// The BeginEnrollment request for `tpm`: its EK (and EK certificate), AK, AK name and SRK,
/// with `csr_pem`.
v1::BeginEnrollmentRequest BeginEnrollmentRequestFor(const EnrollmentTpm& tpm,
                                                     std::string_view csr_pem);

/// Enrolls `tpm` through `stub`: BeginEnrollment (BeginEnrollmentRequestFor); checks the verifier
/// derived tpm.node_id(); recovers the secret with tpm.ActivateCredential; CompleteEnrollment with
/// it. Each RPC has `rpc_timeout`. Returns the issued PEM certificate chain (node certificate, then
/// CA), unchecked. `enroll_address` names the verifier in errors only.
absl::StatusOr<std::string> ExchangeEnrollment(v1::Enrollment::StubInterface& stub,
                                               EnrollmentTpm& tpm, std::string_view csr_pem,
                                               std::string_view enroll_address,
                                               absl::Duration rpc_timeout);

}  // namespace vigil
