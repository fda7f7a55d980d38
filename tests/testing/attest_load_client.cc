#include "tests/testing/attest_load_client.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/digest.h"
#include "tests/testing/verifier_fixture.h"
#include "vigil/v1/attestation.grpc.pb.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::testing {
namespace {

// A stream lives at most this long; only keeps a broken verifier from hanging a test.
constexpr absl::Duration kStreamBound = absl::Seconds(60);

}  // namespace

AttestLoadClient::AttestLoadClient(std::string node_id, CertAndKey identity, std::string ca_pem,
                                   std::vector<std::string> addresses)
    : node_id_(std::move(node_id)),
      identity_(std::move(identity)),
      ca_pem_(std::move(ca_pem)),
      addresses_(std::move(addresses)) {}

void AttestLoadClient::Start() {
  thread_ = std::thread([this] { Run(); });
}

void AttestLoadClient::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    if (ctx_ != nullptr) ctx_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

size_t AttestLoadClient::acknowledged() const {
  absl::MutexLock lock(&mu_);
  return acked_.size();
}

std::vector<std::string> AttestLoadClient::acked() const {
  absl::MutexLock lock(&mu_);
  return acked_;
}

std::vector<std::string> AttestLoadClient::problems() const {
  absl::MutexLock lock(&mu_);
  return problems_;
}

std::string AttestLoadClient::last_acknowledged_by() const {
  absl::MutexLock lock(&mu_);
  return last_acknowledged_by_;
}

void AttestLoadClient::Run() {
  uint64_t sequence = 0;
  for (size_t attempt = 0;; ++attempt) {
    const std::string& address = addresses_[attempt % addresses_.size()];
    auto stub =
        v1::Attestation::NewStub(MakeChannel(address, ClientCredentials(ca_pem_, identity_)));
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + kStreamBound));
    {
      absl::MutexLock lock(&mu_);
      if (stop_) return;
      ctx_ = &ctx;
    }
    auto stream = stub->Attest(&ctx);
    std::string in_flight;  // evidence_sha256 of the evidence awaiting its acknowledgement
    v1::VerifierMessage m;
    while (stream->Read(&m)) {
      if (m.has_acknowledgement()) {
        const std::string& sha = m.acknowledgement().verdict().evidence_sha256();
        absl::MutexLock lock(&mu_);
        if (in_flight.empty() || sha != in_flight) {
          problems_.push_back(absl::StrCat("acknowledgement for ", sha, " while ",
                                           in_flight.empty() ? "nothing" : in_flight,
                                           " was in flight"));
        } else {
          acked_.push_back(sha);
          last_acknowledged_by_ = address;
        }
        in_flight.clear();
      } else if (m.has_challenge()) {
        v1::RuntimeReport report;
        report.set_node_id(node_id_);
        report.set_sequence(++sequence);
        report.set_hostname(absl::StrCat("load-", node_id_.substr(56), "-", sequence));
        v1::NodeMessage evidence;
        evidence.mutable_evidence()->set_nonce(m.challenge().nonce());
        evidence.mutable_evidence()->set_payload(report.SerializeAsString());
        in_flight = HexEncode(Sha256(evidence.evidence().payload()));
        if (!stream->Write(evidence)) break;
      }
      // Other messages (renewals, policy updates) are not this client's concern.
    }
    stream->Finish();
    {
      absl::MutexLock lock(&mu_);
      ctx_ = nullptr;
      if (stop_) return;
    }
    // The verifier is down or restarting: the next address, shortly.
    absl::SleepFor(absl::Milliseconds(20));
  }
}

}  // namespace vigil::testing
