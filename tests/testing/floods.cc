#include "tests/testing/floods.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/pki.h"
#include "common/status_macros.h"
#include "tests/testing/verifier_fixture.h"
#include "vigil/v1/attestation.grpc.pb.h"
#include "vigil/v1/enrollment.grpc.pb.h"

namespace vigil::testing {
namespace {

constexpr char kJunkNodeId[] = "f100df100df100df100df100df100df100df100df100df100df100df100df100";
constexpr char kOversizedNodeId[] =
    "0b1600b1600b1600b1600b1600b1600b1600b1600b1600b1600b1600b1600b16";

bool ResourceExhausted(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED;
}

// gRPC's own refusal of a message over the receiver's limit.
bool TooLarge(const grpc::Status& status) {
  return ResourceExhausted(status) && absl::StrContains(status.error_message(), "larger than max");
}

std::chrono::system_clock::time_point Deadline() {
  return absl::ToChronoTime(absl::Now() + absl::Seconds(10));
}

}  // namespace

void Floods::Tally::Add(bool refused, std::string last_status) {
  absl::MutexLock lock(&mu_);
  ++counts_.sent;
  if (refused) ++counts_.refused;
  counts_.last_status = std::move(last_status);
}

Floods::Counts Floods::Tally::Get() const {
  absl::MutexLock lock(&mu_);
  return counts_;
}

template <typename Call, typename IsRefusal>
void Floods::Run(Tally* tally, Call one, IsRefusal is_refusal) {
  threads_.emplace_back([this, tally, one = std::move(one), is_refusal] {
    while (!stop_.load()) {
      grpc::Status status = one();
      tally->Add(is_refusal(status),
                 absl::StrCat(status.error_code(), " ", status.error_message()));
    }
  });
}

absl::StatusOr<std::unique_ptr<Floods>> Floods::Start(Fabric& fabric) {
  std::unique_ptr<Floods> floods(new Floods());
  ASSIGN_OR_RETURN(floods->tools_, ToolsNode::Create("rsa"));
  ASSIGN_OR_RETURN(KeyAndCsr csr, MakeKeyAndCsr("flood"));
  const v1::BeginEnrollmentRequest begin = floods->tools_->BeginRequest(csr.csr_pem);
  v1::BeginEnrollmentRequest oversized_begin;
  oversized_begin.set_ek_certificate(std::string(256 << 10, 'x'));

  const std::string ca_pem = fabric.pki().ca_cert_pem();
  ASSIGN_OR_RETURN(CertAndKey junk_identity, fabric.pki().IssueNode(kJunkNodeId));
  ASSIGN_OR_RETURN(CertAndKey oversized_identity, fabric.pki().IssueNode(kOversizedNodeId));
  std::shared_ptr<v1::Enrollment::Stub> enroll = v1::Enrollment::NewStub(
      MakeChannel(fabric.enroll_address(), ClientCredentials(ca_pem, CertAndKey{})));
  std::shared_ptr<v1::Attestation::Stub> junk = v1::Attestation::NewStub(
      MakeChannel(fabric.verifier_address(), ClientCredentials(ca_pem, junk_identity)));
  std::shared_ptr<v1::Attestation::Stub> oversized = v1::Attestation::NewStub(MakeChannel(
      fabric.verifier_address(), ClientCredentials(ca_pem, oversized_identity), 8 << 20));
  const std::atomic<bool>& stop = floods->stop_;

  floods->Run(
      &floods->enrollments_,
      [enroll, begin] {
        grpc::ClientContext ctx;
        ctx.set_deadline(Deadline());
        v1::BeginEnrollmentResponse response;
        return enroll->BeginEnrollment(&ctx, begin, &response);
      },
      [](const grpc::Status& s) { return !s.ok(); });
  floods->Run(
      &floods->junk_,
      [junk, &stop] {
        grpc::ClientContext ctx;
        ctx.set_deadline(Deadline());
        auto stream = junk->Attest(&ctx);
        v1::NodeMessage evidence;
        evidence.mutable_evidence()->set_nonce(std::string(32, 'j'));
        evidence.mutable_evidence()->set_payload("junk");
        v1::VerifierMessage m;
        while (!stop.load() && stream->Read(&m)) {
          if (m.has_challenge() && !stream->Write(evidence)) break;
        }
        if (stop.load()) ctx.TryCancel();  // else the verifier ended the stream
        grpc::Status status = stream->Finish();
        // Reconnects at once but for a breath, to leave a shared machine some CPU.
        absl::SleepFor(absl::Milliseconds(5));
        return status;
      },
      ResourceExhausted);
  floods->Run(
      &floods->oversized_evidence_,
      [oversized] {
        grpc::ClientContext ctx;
        ctx.set_deadline(Deadline());
        auto stream = oversized->Attest(&ctx);
        v1::NodeMessage big;
        big.mutable_evidence()->set_payload(std::string(5 << 20, 'o'));
        stream->Write(big);
        v1::VerifierMessage m;
        while (stream->Read(&m)) {
        }
        grpc::Status status = stream->Finish();
        // Slower than the per-node rate limit, so that each stream reaches the size check.
        absl::SleepFor(absl::Milliseconds(300));
        return status;
      },
      TooLarge);
  floods->Run(
      &floods->oversized_enrollments_,
      [enroll, oversized_begin] {
        grpc::ClientContext ctx;
        ctx.set_deadline(Deadline());
        v1::BeginEnrollmentResponse response;
        return enroll->BeginEnrollment(&ctx, oversized_begin, &response);
      },
      TooLarge);
  return floods;
}

Floods::~Floods() { Stop(); }

void Floods::Stop() {
  stop_ = true;
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

bool Floods::EachRefused() const {
  return enrollments().refused > 0 && junk_evidence().refused > 0 &&
         oversized_evidence().refused > 0 && oversized_enrollments().refused > 0;
}

std::string Floods::Describe() const {
  std::string out;
  for (const auto& [name, c] :
       {std::pair{"enrollments", enrollments()}, std::pair{"junk evidence", junk_evidence()},
        std::pair{"oversized evidence", oversized_evidence()},
        std::pair{"oversized enrollments", oversized_enrollments()}}) {
    absl::StrAppend(&out, name, ": ", c.refused, " of ", c.sent,
                    " refused; last status: ", c.last_status, "\n");
  }
  return out;
}

}  // namespace vigil::testing
