#include "verifier/runtime_appraiser.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstddef>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/digest.h"
#include "common/policy/node_self.h"
#include "google/protobuf/arena.h"
#include "verifier/results/ear_claims.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::verifier {
namespace {

constexpr int32_t kAffirming = 2;
constexpr int32_t kWarning = 32;
constexpr int32_t kContraindicated = 96;

uint64_t DroppedEvents(const v1::RuntimeReport& report) {
  uint64_t dropped = 0;
  for (const auto& [reason, count] : report.probes().dropped_events()) dropped += count;
  return dropped;
}

// The first block of the arena a report is parsed into: on the stack, large enough for a
// typical report, so most appraisals parse without a heap allocation (a larger report grows the
// arena on the heap).
constexpr size_t kReportArenaBlock = 16 * 1024;

}  // namespace

v1::TrustVector RejectionTrustVector(v1::AppraisalReason reason) {
  v1::TrustVector v;
  switch (reason) {
    case v1::AK_UNKNOWN:
    case v1::NODE_MISMATCH:
    case v1::NODE_REVOKED:
    case v1::SIGNATURE_INVALID:
    case v1::QUALIFIED_SIGNER_MISMATCH:
      v.set_instance_identity(kContraindicated);
      break;
    case v1::EVIDENCE_UNQUOTED:
    case v1::ATTEST_MAGIC_INVALID:
    case v1::ATTEST_TYPE_INVALID:
    case v1::QUOTE_MALFORMED:
    case v1::CLOCK_NOT_ADVANCED:
    case v1::RESET_COUNT_DECREASED:
    case v1::RESTART_COUNT_DECREASED:
      v.set_hardware(kContraindicated);
      break;
    case v1::PCR_SELECTION_MISMATCH:
    case v1::PCR_DIGEST_MISMATCH:
    case v1::LOG_REPLAY_MISMATCH:
    case v1::UNKNOWN_MEASUREMENT:
    case v1::LOG_DISCONTINUOUS:
    case v1::NODE_LOG_MISMATCH:
    case v1::MEASUREMENT_MISSING:
    case v1::MEASUREMENT_OUT_OF_ORDER:
    case v1::BOOT_PCR_MISMATCH:
    case v1::POLICY_DIGEST_MISMATCH:
      v.set_executables(kContraindicated);
      break;
    case v1::NONCE_UNKNOWN:
    case v1::NONCE_REUSED:
    case v1::NONCE_EXPIRED:
    case v1::EXTRA_DATA_MISMATCH:
    case v1::PAYLOAD_MALFORMED:
    case v1::SPOOL_BATCH_UNMEASURED:
      v.set_sourced_data(kContraindicated);
      break;
    default:
      break;
  }
  return v;
}

RuntimeAppraiser::RuntimeAppraiser(EvidenceAppraiser* inner, Options options)
    : inner_(inner), options_(std::move(options)) {}

uint64_t RuntimeAppraiser::LogEntriesAcknowledged(const std::string& node_id) const {
  return inner_->LogEntriesAcknowledged(node_id);
}

v1::Verdict RuntimeAppraiser::Appraise(const AppraisalInput& input) {
  // The payload is parsed once, here, for every stage; its messages and strings live in an
  // arena freed in one go.
  alignas(std::max_align_t) char block[kReportArenaBlock];
  google::protobuf::ArenaOptions arena_options;
  arena_options.initial_block = block;
  arena_options.initial_block_size = sizeof(block);
  google::protobuf::Arena arena(arena_options);
  auto* report = google::protobuf::Arena::CreateMessage<v1::RuntimeReport>(&arena);
  const bool parsed =
      input.evidence != nullptr && report->ParseFromString(input.evidence->payload());
  AppraisalInput parsed_input{input.node_id, input.challenge, input.evidence,
                              parsed ? report : nullptr};

  v1::Verdict verdict;
  if (options_.is_revoked && options_.is_revoked(input.node_id)) {
    verdict.set_status(v1::TRUST_REJECTED);
    verdict.add_reasons(v1::NODE_REVOKED);
    verdict.set_detail("an operator revoked this node; it is refused until approved again");
    if (input.evidence != nullptr) {
      verdict.set_evidence_sha256(HexEncode(Sha256(input.evidence->payload())));
    }
    verdict.set_appraised_unix_nano(absl::ToUnixNanos(absl::Now()));
  } else {
    verdict = inner_->Appraise(parsed_input);
  }
  verdict.set_node_id(input.node_id);
  if (parsed) verdict.set_report_sequence(report->sequence());

  if (verdict.status() == v1::TRUST_REJECTED) {
    *verdict.mutable_trust_vector() = RejectionTrustVector(
        verdict.reasons().empty() ? v1::APPRAISAL_REASON_UNSPECIFIED
                                  : static_cast<v1::AppraisalReason>(verdict.reasons(0)));
  } else if (parsed) {
    AppraiseRuntime(*report, verdict);
    AppraiseNodeSelf(*report, verdict);
  }

  if (options_.is_tpm_simulated && options_.is_tpm_simulated(input.node_id)) {
    MarkTpmSimulated(verdict);
  }

  if (options_.signer != nullptr) {
    absl::StatusOr<std::string> token = options_.signer->SignVerdict(verdict);
    if (token.ok()) {
      verdict.set_ear_token(*std::move(token));
    } else {
      spdlog::error("could not sign the verdict for node {}: {}", input.node_id.substr(0, 12),
                    std::string(token.status().message()));
    }
  }
  return verdict;
}

void RuntimeAppraiser::AppraiseNodeSelf(const v1::RuntimeReport& report,
                                        v1::Verdict& verdict) const {
  if (!report.has_node_self() && !options_.require_node_self_protection) return;
  v1::RuleOutcome outcome = policy::EvaluateNodeSelf(report, options_.require_node_self_protection
                                                                 ? v1::TRUST_CONTRAINDICATED
                                                                 : v1::TRUST_WARNING);
  const v1::TrustStatus rule_status = outcome.status();
  verdict.mutable_rules()->Add(std::move(outcome));
  // First, before the workloads' outcomes: it speaks about the node, not a workload.
  std::rotate(verdict.mutable_rules()->rbegin(), verdict.mutable_rules()->rbegin() + 1,
              verdict.mutable_rules()->rend());
  if (rule_status == v1::TRUST_AFFIRMING) return;
  v1::TrustVector& vector = *verdict.mutable_trust_vector();
  vector.set_configuration(WorseAr4siClaim(vector.configuration(), Ar4siStatusCode(rule_status)));
  verdict.set_status(policy::WorseStatus(verdict.status(), rule_status));
  verdict.add_reasons(v1::POLICY_VIOLATION);
  absl::StrAppend(verdict.mutable_detail(), verdict.detail().empty() ? "" : "; ",
                  "rule not met: ", policy::kNodeSelfRuleId, " (", verdict.rules(0).reason(), ")");
}

void RuntimeAppraiser::AppraiseRuntime(const v1::RuntimeReport& report,
                                       v1::Verdict& verdict) const {
  v1::TrustVector& vector = *verdict.mutable_trust_vector();
  const bool quoted = verdict.status() != v1::TRUST_UNVERIFIED;
  // The evidence's own trust: identity, hardware and measurements were verified by the
  // inner appraiser for quoted evidence; unquoted evidence affirms none of them.
  if (quoted) {
    vector.set_instance_identity(kAffirming);
    vector.set_hardware(options_.hardware_claim);
    vector.set_executables(kAffirming);
  }
  uint64_t dropped = DroppedEvents(report);
  if (report.has_probes()) vector.set_sourced_data(dropped > 0 ? kWarning : kAffirming);

  v1::TrustStatus status = verdict.status();
  if (dropped > 0) {
    status = policy::WorseStatus(status, v1::TRUST_WARNING);
    absl::StrAppend(verdict.mutable_detail(), verdict.detail().empty() ? "" : "; ",
                    "the probes lost ", dropped, " events since the node started");
  }

  // The quote appraisal's binding check let through only a bundle this verifier sent on the
  // stream (findable here) or the node's own measured bundle (a reference value, whose
  // policies this verifier does not hold: nothing to evaluate).
  std::shared_ptr<const PolicySnapshot> snapshot;
  if (options_.policies != nullptr) {
    snapshot = options_.policies->Find(report.policy_digest());
    if (snapshot == nullptr) {
      absl::StrAppend(verdict.mutable_detail(), verdict.detail().empty() ? "" : "; ",
                      "measured under the node's own policy bundle ",
                      report.policy_digest().substr(0, 12),
                      ", which this verifier does not hold: the runtime state is not appraised");
    }
  }
  if (snapshot == nullptr || snapshot->policies.empty()) {
    verdict.set_status(status);
    return;
  }
  verdict.set_policy_digest(snapshot->bundle.sha256());
  verdict.mutable_policy_ids()->CopyFrom(snapshot->bundle.policy_ids());

  std::vector<v1::WorkloadVerdict> workloads =
      policy::Evaluate(snapshot->policies, report, options_.evaluate);
  v1::TrustStatus runtime = policy::OverallStatus(workloads);
  int32_t configuration = 0;
  std::vector<std::string> failed;
  int outcomes = verdict.rules_size();
  for (const v1::WorkloadVerdict& w : workloads) outcomes += w.rules_size();
  verdict.mutable_rules()->Reserve(outcomes);
  verdict.mutable_workloads()->Reserve(static_cast<int>(workloads.size()));
  for (v1::WorkloadVerdict& w : workloads) {
    configuration = WorseAr4siClaim(configuration, Ar4siStatusCode(w.status()));
    for (const v1::RuleOutcome& rule : w.rules()) {
      *verdict.add_rules() = rule;
      int32_t code = Ar4siStatusCode(rule.status());
      std::string_view claim = RuleKindClaim(rule.kind());
      if (claim == "runtime-opaque") {
        vector.set_runtime_opaque(WorseAr4siClaim(vector.runtime_opaque(), code));
      } else if (claim == "file-system") {
        vector.set_file_system(WorseAr4siClaim(vector.file_system(), code));
      } else if (claim == "sourced-data") {
        vector.set_sourced_data(WorseAr4siClaim(vector.sourced_data(), code));
      }
      if (rule.kind() == "memory")
        vector.set_storage_opaque(WorseAr4siClaim(vector.storage_opaque(), code));
      if (rule.status() == v1::TRUST_WARNING || rule.status() == v1::TRUST_CONTRAINDICATED) {
        failed.push_back(absl::StrCat(w.identity().name(), "/", rule.rule_id()));
      }
    }
    *verdict.add_workloads() = std::move(w);
  }
  vector.set_configuration(configuration);
  if (runtime == v1::TRUST_NONE) {
    verdict.set_status(v1::TRUST_NONE);
    absl::StrAppend(verdict.mutable_detail(), verdict.detail().empty() ? "" : "; ",
                    "no workload the policies select was observed");
    return;
  }
  // Unquoted evidence is never affirmed, whatever its workloads show.
  if (status != v1::TRUST_UNVERIFIED || runtime == v1::TRUST_WARNING ||
      runtime == v1::TRUST_CONTRAINDICATED) {
    status = policy::WorseStatus(status, runtime);
  }
  if (!failed.empty()) {
    verdict.add_reasons(v1::POLICY_VIOLATION);
    std::sort(failed.begin(), failed.end());
    failed.erase(std::unique(failed.begin(), failed.end()), failed.end());
    absl::StrAppend(verdict.mutable_detail(), verdict.detail().empty() ? "" : "; ",
                    "rules not met: ", absl::StrJoin(failed, ", "));
  }
  verdict.set_status(status);
}

}  // namespace vigil::verifier
