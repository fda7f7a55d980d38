#include "verifier/enrollment_service.h"

#include <algorithm>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/digest.h"
#include "common/spiffe.h"
#include "common/status_macros.h"
#include "common/tpm/credential.h"
#include "common/tpm/tpm_public.h"
#include "verifier/peer_identity.h"

namespace vigil::verifier {
namespace {

constexpr size_t kSecretBytes = 32;

absl::StatusOr<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    return absl::InternalError("OpenSSL: no randomness");
  }
  return out;
}

absl::Status CheckCsrSignature(const std::string& csr_pem) {
  BioPtr bio = MemBioOver(csr_pem);
  X509ReqPtr req(bio ? PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (req == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError("csr_pem is not a PEM certificate request");
  }
  EVP_PKEY* key = X509_REQ_get0_pubkey(req.get());
  if (key == nullptr || X509_REQ_verify(req.get(), key) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("the CSR's self-signature does not verify");
  }
  return absl::OkStatus();
}

absl::Status RevokedError(const std::string& node_id) {
  return absl::PermissionDeniedError(
      absl::StrCat("node ", node_id,
                   " is revoked; it may enroll again once an operator approves it "
                   "(vigilctl nodes approve)"));
}

absl::Status Annotate(const absl::Status& st, std::string_view what) {
  return absl::Status(st.code(), absl::StrCat(std::string(what), ": ", st.message()));
}

}  // namespace

Enroller::Enroller(const CaMaterial* ca, NodeRegistry* registry, const EkVerifier* ek_verifier,
                   Options options)
    : ca_(ca),
      registry_(registry),
      ek_verifier_(ek_verifier),
      options_(std::move(options)),
      pending_(registry->pending_enrollments()) {}

PendingLimits Enroller::limits() const {
  return PendingLimits{options_.max_pending, options_.max_pending_per_ek};
}

absl::StatusOr<v1::BeginEnrollmentResponse> Enroller::Begin(
    const v1::BeginEnrollmentRequest& request) {
  auto ek = tpm::ParseTpm2bPublic(request.ek_public());
  if (!ek.ok()) return Annotate(ek.status(), "ek_public");
  const std::string node_id = tpm::NodeIdForEk(*ek);
  if (options_.is_revoked && options_.is_revoked(node_id)) {
    spdlog::warn("enrollment of revoked node {} refused", node_id);
    return RevokedError(node_id);
  }
  // Checked before the costly checks, so a flood of Begins costs a parse, not a certificate
  // chain verification and a credential. Add checks again.
  if (absl::Status room = pending_->CheckRoom(node_id, limits(), options_.clock()); !room.ok()) {
    if (absl::IsResourceExhausted(room)) ++refused_full_;
    return room;
  }
  auto ak = tpm::ParseTpm2bPublic(request.ak_public());
  if (!ak.ok()) return Annotate(ak.status(), "ak_public");
  if (absl::Status st = tpm::CheckAttestationKeyAttributes(*ak); !st.ok()) {
    return Annotate(st, "ak_public");
  }
  if (absl::Status st = tpm::PublicKeyOf(ak->area).status(); !st.ok()) {
    return Annotate(st, "ak_public");
  }
  ASSIGN_OR_RETURN(std::string ak_name, tpm::ComputeName(*ak));
  auto claimed = tpm::UnwrapTpm2bName(request.ak_name());
  if (!claimed.ok()) return Annotate(claimed.status(), "ak_name");
  if (*claimed != ak_name) {
    return absl::InvalidArgumentError("ak_name is not the name of ak_public");
  }
  std::string ak_qualified_name;
  if (!request.srk_public().empty()) {
    // The AK's qualified name from its parent's: every quote's qualifiedSigner must equal it.
    // A node that lies about its SRK only makes its own quotes fail that check.
    auto srk = tpm::ParseTpm2bPublic(request.srk_public());
    if (!srk.ok()) return Annotate(srk.status(), "srk_public");
    if (absl::Status st = tpm::CheckStorageParentAttributes(*srk); !st.ok()) {
      return Annotate(st, "srk_public");
    }
    auto srk_qualified_name = tpm::PrimaryQualifiedName(TPM2_RH_OWNER, *srk);
    if (!srk_qualified_name.ok()) return Annotate(srk_qualified_name.status(), "srk_public");
    ASSIGN_OR_RETURN(ak_qualified_name, tpm::ChildQualifiedName(*srk_qualified_name, *ak));
  }
  RETURN_IF_ERROR(CheckCsrSignature(request.csr_pem()));
  ASSIGN_OR_RETURN(EkTrust trust, ek_verifier_->Check(*ek, request.ek_certificate(), node_id));

  ASSIGN_OR_RETURN(std::string secret, RandomBytes(kSecretBytes));
  auto credential = tpm::MakeCredential(*ek, ak_name, secret);
  if (!credential.ok()) return Annotate(credential.status(), "ek_public");
  ASSIGN_OR_RETURN(std::string id_bytes, RandomBytes(16));
  const std::string enrollment_id = HexEncode(id_bytes);
  const absl::Time now = options_.clock();
  const absl::Time expires = now + options_.pending_ttl;
  // The table keeps the secret's digest, never the secret.
  PendingEnrollment pending{
      enrollment_id,
      EnrolledNode{node_id, request.ek_public(), request.ak_public(), ak_name, absl::Time(),
                   request.srk_public(), std::move(ak_qualified_name),
                   trust == EkTrust::kSimulated},
      request.csr_pem(), Sha256(secret), expires};
  OPENSSL_cleanse(secret.data(), secret.size());
  absl::StatusOr<bool> evicted = pending_->Add(pending, limits(), now);
  if (!evicted.ok()) {
    if (absl::IsResourceExhausted(evicted.status())) ++refused_full_;
    return evicted.status();
  }
  if (*evicted) {
    ++evicted_per_ek_;
    spdlog::warn(
        "node {}: {} enrollments pending for its EK; the oldest was dropped (an EK "
        "certificate is public: repeated Begins for one EK may be someone else's)",
        node_id, options_.max_pending_per_ek);
  }
  spdlog::info("enrollment {} begun for node {} (EK trusted by {})", enrollment_id.substr(0, 8),
               node_id, EkTrustName(trust));
  v1::BeginEnrollmentResponse response;
  response.set_enrollment_id(enrollment_id);
  response.set_credential_blob(credential->credential_blob);
  response.set_encrypted_secret(credential->encrypted_secret);
  response.set_node_id(node_id);
  response.set_expires_unix_nano(absl::ToUnixNanos(expires));
  return response;
}

absl::StatusOr<v1::CompleteEnrollmentResponse> Enroller::Complete(
    const v1::CompleteEnrollmentRequest& request) {
  // One attempt per enrollment: taking it voids it, on every replica.
  ASSIGN_OR_RETURN(PendingEnrollment pending, pending_->Take(request.enrollment_id()));
  if (options_.clock() > pending.expires) return absl::NotFoundError("enrollment expired");
  const Sha256Digest answer = Sha256(request.activated_secret());
  if (!ConstantTimeEquals(
          std::string_view(reinterpret_cast<const char*>(answer.data()), answer.size()),
          std::string_view(reinterpret_cast<const char*>(pending.secret_sha256.data()),
                           pending.secret_sha256.size()))) {
    spdlog::warn("enrollment {} for node {} refused: wrong activation answer",
                 request.enrollment_id().substr(0, 8), pending.node.node_id);
    return absl::PermissionDeniedError("activated secret is wrong");
  }
  // A revocation may have come in since Begin.
  if (options_.is_revoked && options_.is_revoked(pending.node.node_id)) {
    spdlog::warn("enrollment of revoked node {} refused", pending.node.node_id);
    return RevokedError(pending.node.node_id);
  }
  ASSIGN_OR_RETURN(std::string uri, FormatSpiffeId(SpiffeId{ca_->trust_domain, SpiffeRole::kNode,
                                                            pending.node.node_id}));
  const absl::Time now = absl::Now();
  ASSIGN_OR_RETURN(std::string cert_pem,
                   SignCsr(*ca_, pending.csr_pem, uri, options_.node_cert_lifetime));
  pending.node.enrolled = now;
  RETURN_IF_ERROR(registry_->Bind(pending.node));
  spdlog::info("node {} enrolled; certificate for {} valid {}", pending.node.node_id, uri,
               absl::FormatDuration(options_.node_cert_lifetime));
  v1::CompleteEnrollmentResponse response;
  response.set_node_id(pending.node.node_id);
  response.set_certificate_chain_pem(cert_pem + ca_->cert_pem);
  response.set_ca_certificate_pem(ca_->cert_pem);
  response.set_not_after_unix_nano(absl::ToUnixNanos(now + options_.node_cert_lifetime));
  return response;
}

size_t Enroller::refused_full() const { return refused_full_.load(); }

size_t Enroller::evicted_per_ek() const { return evicted_per_ek_.load(); }

size_t Enroller::pending() const {
  absl::StatusOr<size_t> count = pending_->Count();
  if (!count.ok()) {
    spdlog::warn("counting pending enrollments: {}", count.status().ToString());
    return 0;
  }
  return *count;
}

grpc::ServerUnaryReactor* EnrollmentService::BeginEnrollment(
    grpc::CallbackServerContext* context, const v1::BeginEnrollmentRequest* request,
    v1::BeginEnrollmentResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto result = enroller_->Begin(*request);
  if (result.ok()) *response = std::move(*result);
  reactor->Finish(ToGrpcStatus(result.status()));
  return reactor;
}

grpc::ServerUnaryReactor* EnrollmentService::CompleteEnrollment(
    grpc::CallbackServerContext* context, const v1::CompleteEnrollmentRequest* request,
    v1::CompleteEnrollmentResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto result = enroller_->Complete(*request);
  if (result.ok()) *response = std::move(*result);
  reactor->Finish(ToGrpcStatus(result.status()));
  return reactor;
}

}  // namespace vigil::verifier
