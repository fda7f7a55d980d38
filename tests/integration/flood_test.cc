// Abuse resistance end to end: while an honest vigil-node (real swtpm, real binary) reports
// to a real vigil-verifier, three floods hit the same verifier at once: enrollments begun and
// never completed (with a genuine, chaining EK certificate, which is public data), junk
// evidence from an enrolled but misbehaving node certificate, and oversized messages on both
// listeners. Each flood must be refused (and each refusal is observed by the flooder as a gRPC
// status), and the honest node must keep getting affirming verdicts on its one stream
// throughout: every report it sent acknowledged, its stream never dropped.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/pki.h"
#include "tests/testing/fabric_fixture.h"
#include "tests/testing/tpm2_tools_node.h"
#include "tests/testing/verifier_fixture.h"
#include "vigil/v1/attestation.grpc.pb.h"
#include "vigil/v1/enrollment.grpc.pb.h"

namespace vigil {
namespace {

using testing::Fabric;

// Only keeps a broken fabric from hanging the suite; no assertion depends on speed.
constexpr absl::Duration kProgressBound = absl::Seconds(90);
// Affirming verdicts the honest node must collect while the floods run.
constexpr int kHonestVerdicts = 6;
constexpr char kJunkNodeId[] = "f100df100df100df100df100df100df100df100df100df100df100df100df100";
constexpr char kOversizedNodeId[] =
    "0b1600b1600b1600b1600b1600b1600b1600b1600b1600b1600b1600b1600b16";

// What one flood saw.
struct FloodCounts {
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> refused{0};  // refusals of the kind the flood is about
  absl::Mutex mu;
  std::string last_status ABSL_GUARDED_BY(mu);  // for failure messages
};

// Runs `one` (one flood call; returns its status) until `stop`, counting the statuses that
// `is_refusal` says are the refusal the flood is after.
std::thread Flood(const std::atomic<bool>& stop, FloodCounts& counts,
                  std::function<grpc::Status()> one,
                  std::function<bool(const grpc::Status&)> is_refusal) {
  return std::thread([&stop, &counts, one = std::move(one), is_refusal = std::move(is_refusal)] {
    while (!stop.load()) {
      ++counts.sent;
      grpc::Status status = one();
      if (is_refusal(status)) ++counts.refused;
      absl::MutexLock lock(&counts.mu);
      counts.last_status = absl::StrCat(status.error_code(), " ", status.error_message());
    }
  });
}

bool NotOk(const grpc::Status& status) { return !status.ok(); }

bool ResourceExhausted(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED;
}

// gRPC's own refusal of a message over the receiver's limit.
bool TooLarge(const grpc::Status& status) {
  return ResourceExhausted(status) && absl::StrContains(status.error_message(), "larger than max");
}

std::string Describe(FloodCounts& counts) {
  absl::MutexLock lock(&counts.mu);
  return absl::StrCat(counts.refused.load(), " of ", counts.sent.load(),
                      " refused; last status: ", counts.last_status);
}

// The honest node's verdicts appraised at or after `since`, oldest first.
absl::StatusOr<std::vector<v1::Verdict>> VerdictsSince(v1::Fleet::Stub& fleet,
                                                       const std::string& node_id, int64_t since) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  v1::ListVerdictsRequest request;
  request.set_node_id(node_id);
  request.set_since_unix_nano(since);
  request.set_page_size(1000);
  v1::ListVerdictsResponse response;
  grpc::Status s = fleet.ListVerdicts(&ctx, request, &response);
  if (!s.ok()) return absl::UnavailableError(absl::StrCat("ListVerdicts: ", s.error_message()));
  return std::vector<v1::Verdict>(response.verdicts().begin(), response.verdicts().end());
}

TEST(FloodTest, HonestNodeKeepsGettingVerdictsWhileFloodsAreRefused) {
  // A small total of pending enrollments, so the begun-and-abandoned flood hits the cap.
  Fabric::Options options;
  options.verifier_args = {"--max-pending-enrollments", "2", "--max-pending-enrollments-per-ek",
                           "4"};
  absl::StatusOr<std::unique_ptr<Fabric>> fabric = Fabric::Start(options);
  ASSERT_TRUE(fabric.ok()) << fabric.status();
  Fabric& f = **fabric;
  ASSERT_TRUE(f.StartNode().ok());
  absl::StatusOr<std::string> honest = f.AwaitVerdict(v1::TRUST_AFFIRMING);
  ASSERT_TRUE(honest.ok()) << honest.status();

  // The enrollment flood's material: a TPM of the same manufacture (its EK certificate
  // chains to the verifier's EK CA bundle) with a genuine restricted AK.
  absl::StatusOr<std::unique_ptr<testing::ToolsNode>> tools = testing::ToolsNode::Create("rsa");
  ASSERT_TRUE(tools.ok()) << tools.status();
  absl::StatusOr<KeyAndCsr> csr = MakeKeyAndCsr("flood");
  ASSERT_TRUE(csr.ok()) << csr.status();
  v1::BeginEnrollmentRequest begin;
  begin.set_ek_public((*tools)->ek_public());
  begin.set_ek_certificate((*tools)->ek_certificate());
  begin.set_ak_public((*tools)->ak_public());
  begin.set_ak_name((*tools)->ak_tpm2b_name());
  begin.set_csr_pem(csr->csr_pem);
  v1::BeginEnrollmentRequest oversized_begin;
  oversized_begin.set_ek_certificate(std::string(256 << 10, 'x'));

  const std::string ca_pem = f.pki().ca_cert_pem();
  absl::StatusOr<CertAndKey> junk_identity = f.pki().IssueNode(kJunkNodeId);
  ASSERT_TRUE(junk_identity.ok()) << junk_identity.status();
  auto enroll_stub = v1::Enrollment::NewStub(
      testing::MakeChannel(f.enroll_address(), testing::ClientCredentials(ca_pem, CertAndKey{})));
  auto attest_channel = testing::MakeChannel(
      f.verifier_address(), testing::ClientCredentials(ca_pem, *junk_identity), 8 << 20);
  auto attest_stub = v1::Attestation::NewStub(attest_channel);

  // The oversized messages come from another enrolled identity, with a rate of its own.
  absl::StatusOr<CertAndKey> oversized_identity = f.pki().IssueNode(kOversizedNodeId);
  ASSERT_TRUE(oversized_identity.ok()) << oversized_identity.status();
  auto oversized_stub = v1::Attestation::NewStub(testing::MakeChannel(
      f.verifier_address(), testing::ClientCredentials(ca_pem, *oversized_identity), 8 << 20));

  std::atomic<bool> stop = false;
  FloodCounts enrollments, junk, oversized_evidence, oversized_enrollments;
  std::vector<std::thread> floods;
  // Enrollments begun with a real EK and AK, never completed.
  floods.push_back(Flood(
      stop, enrollments,
      [&] {
        grpc::ClientContext ctx;
        ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
        v1::BeginEnrollmentResponse response;
        return enroll_stub->BeginEnrollment(&ctx, begin, &response);
      },
      NotOk));
  // Junk evidence (nonces never issued) as fast as the stream takes it, reconnecting at once
  // whenever the verifier ends the stream. One call per stream.
  floods.push_back(Flood(
      stop, junk,
      [&] {
        grpc::ClientContext ctx;
        ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
        auto stream = attest_stub->Attest(&ctx);
        v1::NodeMessage evidence;
        evidence.mutable_evidence()->set_nonce(std::string(32, 'j'));
        evidence.mutable_evidence()->set_payload("junk");
        v1::VerifierMessage m;
        while (!stop.load() && stream->Read(&m)) {
          if (m.has_challenge() && !stream->Write(evidence)) break;
        }
        if (stop.load()) ctx.TryCancel();  // else the verifier ended the stream
        grpc::Status status = stream->Finish();
        // Reconnects at once but for a breath, to leave the shared test machine some CPU.
        absl::SleepFor(absl::Milliseconds(5));
        return status;
      },
      ResourceExhausted));
  // A NodeMessage beyond the verifier's 4 MiB message limit.
  floods.push_back(Flood(
      stop, oversized_evidence,
      [&] {
        grpc::ClientContext ctx;
        ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
        auto stream = oversized_stub->Attest(&ctx);
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
      TooLarge));
  // An enrollment request beyond the enrollment listener's 64 KiB limit.
  floods.push_back(Flood(
      stop, oversized_enrollments,
      [&] {
        grpc::ClientContext ctx;
        ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
        v1::BeginEnrollmentResponse response;
        return enroll_stub->BeginEnrollment(&ctx, oversized_begin, &response);
      },
      TooLarge));

  // The floods run until the honest node collected its verdicts, all of them after the
  // floods began.
  const int64_t flood_start = absl::ToUnixNanos(absl::Now());
  std::vector<v1::Verdict> during;
  absl::Time deadline = absl::Now() + kProgressBound;
  while (absl::Now() < deadline) {
    absl::StatusOr<std::vector<v1::Verdict>> got = VerdictsSince(f.fleet(), *honest, flood_start);
    ASSERT_TRUE(got.ok()) << got.status();
    during = *std::move(got);
    if (during.size() >= kHonestVerdicts && enrollments.refused > 0 && junk.refused > 0 &&
        oversized_evidence.refused > 0 && oversized_enrollments.refused > 0) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  stop = true;
  for (std::thread& t : floods) t.join();

  EXPECT_GE(during.size(), kHonestVerdicts) << f.Logs();
  for (const v1::Verdict& v : during) {
    EXPECT_EQ(v.status(), v1::TRUST_AFFIRMING) << v.DebugString();
  }
  EXPECT_GT(enrollments.refused, 0u) << Describe(enrollments);
  EXPECT_GT(junk.refused, 0u) << Describe(junk);
  EXPECT_GT(oversized_evidence.refused, 0u) << Describe(oversized_evidence);
  EXPECT_GT(oversized_enrollments.refused, 0u) << Describe(oversized_enrollments);
  // The honest node never lost its stream: no reconnection, so every report it sent was
  // answered on it.
  EXPECT_FALSE(absl::StrContains(f.NodeLog(), "attest stream to")) << f.Logs();
  EXPECT_TRUE(f.StopNode().ok());
}

}  // namespace
}  // namespace vigil
