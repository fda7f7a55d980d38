#include "common/enrollment_exchange.h"

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace vigil {
namespace {

absl::Status FromGrpc(const grpc::Status& s, std::string_view what) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(std::string(what), ": ", s.error_message()));
}

}  // namespace

v1::BeginEnrollmentRequest BeginEnrollmentRequestFor(const EnrollmentTpm& tpm,
                                                     std::string_view csr_pem) {
  v1::BeginEnrollmentRequest begin;
  begin.set_ek_public(tpm.ek_public());
  begin.set_ek_certificate(tpm.ek_certificate_der());
  begin.set_ak_public(tpm.ak_public());
  begin.set_ak_name(tpm.ak_name());
  begin.set_srk_public(tpm.srk_public());
  begin.set_csr_pem(std::string(csr_pem));
  return begin;
}

absl::StatusOr<std::string> ExchangeEnrollment(v1::Enrollment::StubInterface& stub,
                                               EnrollmentTpm& tpm, std::string_view csr_pem,
                                               std::string_view enroll_address,
                                               absl::Duration rpc_timeout) {
  auto deadline = [&] {
    return std::chrono::system_clock::now() +
           std::chrono::nanoseconds(absl::ToInt64Nanoseconds(rpc_timeout));
  };

  const v1::BeginEnrollmentRequest begin = BeginEnrollmentRequestFor(tpm, csr_pem);
  v1::BeginEnrollmentResponse challenge;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    grpc::Status s = stub.BeginEnrollment(&ctx, begin, &challenge);
    if (!s.ok())
      return FromGrpc(s, absl::StrCat("BeginEnrollment at ", std::string(enroll_address)));
  }
  if (challenge.node_id() != tpm.node_id()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "verifier derived node_id ", challenge.node_id(), " but the TPM's is ", tpm.node_id()));
  }
  ASSIGN_OR_RETURN(std::string secret, tpm.ActivateCredential(challenge.credential_blob(),
                                                              challenge.encrypted_secret()));
  v1::CompleteEnrollmentRequest complete;
  complete.set_enrollment_id(challenge.enrollment_id());
  complete.set_activated_secret(secret);
  v1::CompleteEnrollmentResponse issued;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    grpc::Status s = stub.CompleteEnrollment(&ctx, complete, &issued);
    if (!s.ok()) return FromGrpc(s, "CompleteEnrollment");
  }
  return std::move(*issued.mutable_certificate_chain_pem());
}

}  // namespace vigil
