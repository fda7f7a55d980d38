#include "node/commands/check_verifier.h"

#include <grpcpp/grpcpp.h>

#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/escape.h"
#include "common/policy/bundle.h"
#include "common/status_macros.h"
#include "node/agent/attest_client.h"
#include "node/agent/node_runner.h"
#include "node/agent/policy_applier.h"
#include "node/agent/tpm_sealer.h"
#include "vigil/v1/attestation.grpc.pb.h"

namespace vigil::node {
namespace {

// After the acknowledgement, how long the verifier has to end the half-closed stream.
constexpr absl::Duration kCloseGrace = absl::Seconds(2);
// Bytes of the verifier's error message kept (it is printed and stored in the report).
constexpr size_t kMaxErrorBytes = 400;

// How a stream that ended without an acknowledgement counts: unavailable (never reached,
// timed out, went away) or refused (any other status the verifier ended it with).
VerifierResult Ended(VerifierResult r, const grpc::Status& status, const std::string& when) {
  const grpc::StatusCode code = status.error_code();
  r.outcome = code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED
                  ? VerifierOutcome::kUnreachable
                  : VerifierOutcome::kRefused;
  r.error =
      absl::StrCat("the stream ended ", when, ": ",
                   status.ok() ? "without an error status"
                               : EscapeUntrusted(status.error_message(), kMaxErrorBytes),
                   status.ok() ? "" : absl::StrCat(" (gRPC code ", static_cast<int>(code), ")"));
  if (status.ok()) r.outcome = VerifierOutcome::kRefused;
  return r;
}

}  // namespace

std::string PolicyDigest(const policy::Policy& policy) {
  absl::StatusOr<v1::PolicyBundle> alone = policy::BuildBundle({policy});
  return alone.ok() ? alone->sha256() : "";
}

absl::StatusOr<std::unique_ptr<CheckAttestation>> CheckAttestation::Open(
    const NodeConfig& config, std::unique_ptr<StateDirLock> lock) {
  std::unique_ptr<CheckAttestation> a(new CheckAttestation());
  a->config_ = config;
  a->config_.policy_path.clear();  // the node's own bundle: none, the verifier's comes later
  a->lock_ = std::move(lock);
  ASSIGN_OR_RETURN(a->sealer_, MakeSealer(a->config_));
  return a;
}

absl::Status CheckAttestation::MeasureStart(const BpfEventSource& probes) {
  auto* tpm_sealer = dynamic_cast<TpmEvidenceSealer*>(sealer_.get());
  if (tpm_sealer == nullptr) return absl::OkStatus();  // --tcti none: nothing is measured
  return MeasureStartSequence(tpm_sealer->measurer(), &probes, config_.policy_path);
}

VerifierResult CheckAttestation::Attest(v1::RuntimeReport report, ProcessMatcher* matcher,
                                        Snapshotter* snapshotter, BpfEventSource* probes) {
  VerifierResult result;
  result.address = config_.verifier_address;
  result.outcome = VerifierOutcome::kUnreachable;
  absl::StatusOr<NodeInfo> info = ReadNodeInfo(config_);
  if (!info.ok()) {
    result.error =
        absl::StrCat("nothing sent: the node identity is unusable: ", info.status().message());
    return result;
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      MakeNodeChannelCredentials(config_.ca_cert_path, EffectiveCertPath(config_),
                                 EffectiveKeyPath(config_));
  if (!credentials.ok()) {
    result.error = absl::StrCat("nothing sent: the node credentials are unusable: ",
                                credentials.status().message());
    return result;
  }
  // The verifier's bundles are applied as `run` applies them: measured, then observed.
  ReportBuilder builder(*info, matcher, snapshotter, nullptr);
  PolicyTargets targets;
  targets.matcher = matcher;
  targets.snapshotter = snapshotter;
  targets.builder = &builder;
  targets.probes = probes;
  if (auto* tpm_sealer = dynamic_cast<TpmEvidenceSealer*>(sealer_.get()); tpm_sealer != nullptr) {
    targets.measurer = &tpm_sealer->measurer();
  }
  PolicyApplier applier(targets, "");

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(config_.max_message_bytes);
  args.SetMaxSendMessageSize(config_.max_message_bytes);
  auto stub = v1::Attestation::NewStub(
      grpc::CreateCustomChannel(config_.verifier_address, *credentials, args));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + kCheckVerifierTimeout));
  auto stream = stub->Attest(&ctx);

  // Up to the first challenge: the bundles sent before it are the ones it accepts.
  v1::VerifierMessage message;
  std::optional<v1::Challenge> challenge;
  while (!challenge.has_value() && stream->Read(&message)) {
    if (message.has_challenge()) {
      challenge = message.challenge();
    } else if (message.has_policy()) {
      result.bundle_sha256 = message.policy().sha256();
      result.bundle_policy_ids.assign(message.policy().policy_ids().begin(),
                                      message.policy().policy_ids().end());
      result.bundle_policy_digests.clear();
      if (absl::StatusOr<std::vector<policy::Policy>> policies =
              policy::ParseBundle(message.policy());
          policies.ok()) {
        for (const policy::Policy& p : *policies) {
          result.bundle_policy_digests.push_back(PolicyDigest(p));
        }
      }
      if (absl::Status st = applier.Apply(message.policy()); !st.ok()) {
        ctx.TryCancel();
        stream->Finish();
        result.outcome = VerifierOutcome::kRefused;
        result.error = absl::StrCat("the verifier's policy bundle was not applied: ", st.message());
        return result;
      }
    }
  }
  if (!challenge.has_value())
    return Ended(std::move(result), stream->Finish(), "before a challenge");

  SetNodeFields(*info, 1, &report);
  report.set_policy_digest(applier.running_sha256());
  absl::StatusOr<v1::Evidence> evidence =
      sealer_->Seal(report.SerializeAsString(), *challenge, /*log_from_recnum=*/0);
  if (!evidence.ok()) {
    ctx.TryCancel();
    stream->Finish();
    // The TPM could not quote: like a TPM that cannot be opened, the check could not run.
    result.outcome = VerifierOutcome::kUnreachable;
    result.error =
        absl::StrCat("the TPM could not quote the report: ", evidence.status().message());
    return result;
  }
  v1::NodeMessage out;
  *out.mutable_evidence() = *std::move(evidence);
  if (!stream->Write(out))
    return Ended(std::move(result), stream->Finish(), "before the report was sent");

  // Later bundles and challenges are not answered: this node reports once.
  std::optional<v1::Acknowledgement> ack;
  while (!ack.has_value() && stream->Read(&message)) {
    if (message.has_acknowledgement()) ack = message.acknowledgement();
  }
  if (!ack.has_value())
    return Ended(std::move(result), stream->Finish(), "before an acknowledgement");
  result.outcome = VerifierOutcome::kAcknowledged;
  result.verdict = ack->verdict();

  // Half-close and let the verifier end the stream; cancel if it does not soon.
  stream->WritesDone();
  absl::Notification closed;
  std::thread canceller([&] {
    if (!closed.WaitForNotificationWithTimeout(kCloseGrace)) ctx.TryCancel();
  });
  while (stream->Read(&message)) {
  }
  closed.Notify();
  canceller.join();
  stream->Finish();
  return result;
}

}  // namespace vigil::node
