// The Fleet API's logic, without gRPC: each method answers one call from the store, the
// node registry, the policy set and the EAR signer. The RPC handlers are in
// fleet_service_rpc.cc.

#include "verifier/fleet_service.h"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/digest.h"
#include "common/policy/engine.h"
#include "common/policy/parser.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"
#include "verifier/results/oscal_export.h"

namespace vigil::verifier {
namespace {

bool IsNodeId(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

absl::Status CheckNodeId(const std::string& node_id) {
  if (IsNodeId(node_id)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      "node_id must be the lowercase hex SHA-256 of the EK public area (64 characters)");
}

// "AFFIRMING" for TRUST_AFFIRMING, as vigilctl prints statuses.
std::string StatusText(v1::TrustStatus status) {
  if (status == v1::TRUST_STATUS_UNSPECIFIED) return "UNSPECIFIED";
  std::string name = v1::TrustStatus_Name(status);
  return name.rfind("TRUST_", 0) == 0 ? name.substr(6) : name;
}

// Whole seconds, rounded down, for reasons ("stale by 75s").
std::string Seconds(absl::Duration d) { return absl::StrCat(absl::ToInt64Seconds(d), "s"); }

// One line per rule outcome that is not affirming: "rule seccomp-denies-ptrace failed
// (CONTRAINDICATED): ptrace allowed [NIST-800-53r5:AC-6(10), SOC2:CC6.1]". Outcomes that
// read the same (one rule broken alike by several processes of a workload) give one line.
void AddFailedRules(const google::protobuf::RepeatedPtrField<v1::RuleOutcome>& rules,
                    std::vector<std::string>* reasons) {
  for (const v1::RuleOutcome& r : rules) {
    if (r.status() == v1::TRUST_AFFIRMING || r.status() == v1::TRUST_STATUS_UNSPECIFIED) continue;
    std::string line = absl::StrCat("rule ", r.rule_id(), " failed (", StatusText(r.status()), ")");
    if (!r.reason().empty()) absl::StrAppend(&line, ": ", r.reason());
    if (r.controls_size() > 0) {
      absl::StrAppend(&line, " [controls ", absl::StrJoin(r.controls(), ", "), "]");
    }
    if (std::find(reasons->begin(), reasons->end(), line) == reasons->end()) {
      reasons->push_back(std::move(line));
    }
  }
}

// "evidence is REJECTED (NONCE_EXPIRED, QUOTE_SIGNATURE_INVALID)".
std::string EvidenceReason(const v1::Verdict& v) {
  std::string line = absl::StrCat("evidence is ", StatusText(v.status()));
  if (v.reasons_size() > 0) {
    std::vector<std::string> names;
    for (int r : v.reasons()) names.push_back(v1::AppraisalReason_Name(r));
    absl::StrAppend(&line, " (", absl::StrJoin(names, ", "), ")");
  }
  return line;
}

bool EvidenceVerified(v1::TrustStatus status) {
  return status != v1::TRUST_STATUS_UNSPECIFIED && status != v1::TRUST_UNVERIFIED &&
         status != v1::TRUST_REJECTED;
}

}  // namespace

FleetService::FleetService(FleetServiceOptions options)
    : options_(std::move(options)), store_(options_.store) {}

FleetService::~FleetService() = default;

absl::Status FleetService::Audit(const std::string& actor, const std::string& action,
                                 const std::string& target, const std::string& detail) {
  v1::AuditRecord record;
  record.set_actor(actor);
  record.set_action(action);
  record.set_target(target);
  record.set_detail(detail);
  return store_->AppendAudit(record);
}

namespace {

// What the store holds of a node, into its summary (the caller sets the node id).
void SetStored(NodeResultSummary&& s, v1::NodeSummary& n) {
  n.set_hostname(std::move(s.hostname));
  n.set_connected(s.connected);
  *n.mutable_latest_verdict() = std::move(s.latest_verdict);
  n.set_last_seen_unix_nano(s.last_seen_unix_nano);
  n.set_revoked(s.revoked);
}

}  // namespace

v1::ListNodesResponse FleetService::ListNodes() const {
  std::map<std::string, v1::NodeSummary> nodes;
  for (NodeResultSummary& s : store_->ListNodes()) {
    v1::NodeSummary& n = nodes[s.node_id];
    n.set_node_id(s.node_id);
    SetStored(std::move(s), n);
  }
  if (options_.registry != nullptr) {
    // Enrolled nodes that never reported are listed too.
    for (std::string& id : options_.registry->NodeIds()) {
      v1::NodeSummary& n = nodes[id];
      n.set_node_id(std::move(id));
      n.set_enrolled(true);
    }
  }
  v1::ListNodesResponse out;
  for (auto& [id, n] : nodes) *out.add_nodes() = std::move(n);
  return out;
}

absl::StatusOr<v1::ListNodesResponse> FleetService::ListNodes(
    const v1::ListNodesRequest& request) const {
  constexpr uint32_t kDefaultPage = 500;
  constexpr uint32_t kMaxPage = 1000;
  constexpr size_t kMaxTokenBytes = 1024;
  if (request.page_token().size() > kMaxTokenBytes) {
    return absl::InvalidArgumentError("page_token is not one this verifier issued");
  }
  const int limit = static_cast<int>(
      request.page_size() == 0 ? kDefaultPage : std::min(request.page_size(), kMaxPage));
  const std::map<std::string, KnownNode> known = KnownNodes();
  auto it = known.upper_bound(request.page_token());
  v1::ListNodesResponse out;
  size_t bytes = 0;
  for (; it != known.end() && out.nodes_size() < limit; ++it) {
    v1::NodeSummary n;
    n.set_node_id(it->first);
    if (std::optional<NodeResultSummary> s = store_->FindNode(it->first); s.has_value()) {
      SetStored(*std::move(s), n);
    }
    n.set_enrolled(it->second.enrolled);
    if (!JoinsPage(n.ByteSizeLong(), options_.max_page_bytes, bytes)) break;
    *out.add_nodes() = std::move(n);
  }
  if (it != known.end()) out.set_next_page_token(out.nodes(out.nodes_size() - 1).node_id());
  return out;
}

std::map<std::string, FleetService::KnownNode> FleetService::KnownNodes() const {
  std::map<std::string, KnownNode> known;
  for (NodeName& n : store_->NodeNames()) known[n.node_id].hostname = std::move(n.hostname);
  if (options_.registry != nullptr) {
    for (std::string& id : options_.registry->NodeIds()) known[std::move(id)].enrolled = true;
  }
  return known;
}

std::vector<NodeName> FleetService::NodeNames() const {
  std::vector<NodeName> out;
  for (auto& [id, node] : KnownNodes()) out.push_back({id, std::move(node.hostname)});
  return out;
}

absl::StatusOr<v1::GetNodeResponse> FleetService::GetNode(const std::string& node_id) const {
  RETURN_IF_ERROR(CheckNodeId(node_id));
  std::optional<NodeResultSummary> stored = store_->FindNode(node_id);
  std::shared_ptr<NodeState> enrolled =
      options_.registry != nullptr ? options_.registry->Find(node_id) : nullptr;
  if (!stored.has_value() && enrolled == nullptr) {
    return absl::NotFoundError(absl::StrCat("node ", node_id, " is unknown to this verifier"));
  }
  v1::GetNodeResponse out;
  v1::NodeSummary* n = out.mutable_node();
  n->set_node_id(node_id);
  if (stored.has_value()) {
    n->set_hostname(stored->hostname);
    n->set_connected(stored->connected);
    n->set_last_seen_unix_nano(stored->last_seen_unix_nano);
    n->set_revoked(stored->revoked);
    out.set_policy_digest(stored->latest_verdict.policy_digest());
    *out.mutable_policy_ids() = stored->latest_verdict.policy_ids();
    *n->mutable_latest_verdict() = std::move(stored->latest_verdict);
  }
  if (enrolled != nullptr) {
    n->set_enrolled(true);
    out.set_enrolled_unix_nano(absl::ToUnixNanos(enrolled->node().enrolled));
    // A simulated TPM is said first: whatever else trusts its EK, no TPM holds it.
    out.set_ek_trust(enrolled->node().tpm_simulated           ? "simulated-tpm"
                     : options_.registry->IsApproved(node_id) ? "approved"
                                                              : options_.unapproved_ek_trust);
  }
  return out;
}

absl::StatusOr<v1::GetLatestEvidenceResponse> FleetService::GetLatestEvidence(
    const std::string& node_id) const {
  if (node_id.empty()) return absl::InvalidArgumentError("node_id is required");
  absl::StatusOr<LatestResult> latest = store_->Latest(node_id);
  if (!latest.ok()) return latest.status();
  v1::GetLatestEvidenceResponse out;
  out.set_node_id(node_id);
  *out.mutable_evidence() = std::move(latest->evidence);
  *out.mutable_verdict() = std::move(latest->verdict);
  if (options_.registry != nullptr) {
    if (std::shared_ptr<NodeState> state = options_.registry->Find(node_id)) {
      out.set_ak_public(state->node().ak_public);
    }
  }
  return out;
}

absl::StatusOr<v1::ListVerdictsResponse> FleetService::ListVerdicts(
    const v1::ListVerdictsRequest& request) const {
  VerdictQuery query;
  query.node_id = request.node_id();
  query.workload = request.workload();
  for (int s : request.statuses()) query.statuses.push_back(static_cast<v1::TrustStatus>(s));
  query.since_unix_nano = request.since_unix_nano();
  query.until_unix_nano = request.until_unix_nano();
  query.page_size = request.page_size();
  query.page_token = request.page_token();
  query.max_bytes = options_.max_page_bytes;
  ASSIGN_OR_RETURN(VerdictPage page, store_->ListVerdicts(query));
  v1::ListVerdictsResponse out;
  for (v1::Verdict& v : page.verdicts) *out.add_verdicts() = std::move(v);
  out.set_next_page_token(std::move(page.next_page_token));
  return out;
}

absl::StatusOr<v1::CheckAdmissionResponse> FleetService::CheckAdmission(
    const v1::CheckAdmissionRequest& request, absl::Time now) const {
  RETURN_IF_ERROR(CheckNodeId(request.node_id()));
  if (request.max_age_ms() < 0)
    return absl::InvalidArgumentError("max_age_ms must not be negative");
  const absl::Duration max_age = request.max_age_ms() > 0 ? absl::Milliseconds(request.max_age_ms())
                                                          : options_.default_admission_max_age;
  v1::CheckAdmissionResponse out;
  std::vector<std::string> reasons;
  std::optional<NodeResultSummary> node = store_->FindNode(request.node_id());
  if (node.has_value() && node->revoked) {
    std::string line = absl::StrCat("node is revoked (by ", node->revoked_by);
    if (!node->revoked_reason.empty()) absl::StrAppend(&line, ": ", node->revoked_reason);
    reasons.push_back(line + ")");
  }
  if (!node.has_value() || node->latest_verdict.status() == v1::TRUST_STATUS_UNSPECIFIED) {
    reasons.push_back(absl::StrCat("node ", request.node_id(),
                                   " is unknown: this verifier holds no result for it"));
    for (std::string& r : reasons) out.add_reasons(std::move(r));
    return out;
  }
  const v1::Verdict& verdict = node->latest_verdict;
  out.set_ear_token(verdict.ear_token());
  out.set_appraised_unix_nano(verdict.appraised_unix_nano());
  const absl::Duration age = now - absl::FromUnixNanos(verdict.appraised_unix_nano());
  if (verdict.appraised_unix_nano() <= 0) {
    reasons.push_back("latest result has no appraisal time");
  } else if (age > max_age) {
    reasons.push_back(absl::StrCat("latest result is stale by ", Seconds(age - max_age),
                                   ": appraised ", Seconds(age), " ago, max age ",
                                   absl::FormatDuration(max_age)));
  }
  if (request.workload().empty()) {
    out.set_status(verdict.status());
    if (verdict.status() != v1::TRUST_AFFIRMING) {
      if (!EvidenceVerified(verdict.status())) {
        reasons.push_back(EvidenceReason(verdict));
      } else {
        reasons.push_back(absl::StrCat("node is ", StatusText(verdict.status())));
      }
      AddFailedRules(verdict.rules(), &reasons);
    }
  } else {
    // Every workload of that id or name must be affirming (a name may select several).
    std::vector<const v1::WorkloadVerdict*> matched;
    for (const v1::WorkloadVerdict& w : verdict.workloads()) {
      if (w.workload_id() == request.workload() || w.identity().name() == request.workload()) {
        matched.push_back(&w);
      }
    }
    if (!EvidenceVerified(verdict.status())) {
      out.set_status(verdict.status());
      reasons.push_back(EvidenceReason(verdict));
    }
    if (matched.empty()) {
      reasons.push_back(
          absl::StrCat("workload ", request.workload(), " is not in the node's latest result"));
    }
    // The worst status among the matches that are not affirming (NONE counts: it affirms
    // nothing), AFFIRMING when all are.
    v1::TrustStatus worst = v1::TRUST_AFFIRMING;
    for (const v1::WorkloadVerdict* w : matched) {
      if (w->status() == v1::TRUST_AFFIRMING) continue;
      worst = worst == v1::TRUST_AFFIRMING ? w->status() : policy::WorseStatus(worst, w->status());
      reasons.push_back(absl::StrCat("workload ", w->identity().name(), " (", w->workload_id(),
                                     ") is ", StatusText(w->status())));
      AddFailedRules(w->rules(), &reasons);
    }
    if (EvidenceVerified(verdict.status())) {
      out.set_status(matched.empty() ? v1::TRUST_STATUS_UNSPECIFIED : worst);
    }
  }
  out.set_allowed(reasons.empty());
  for (std::string& r : reasons) out.add_reasons(std::move(r));
  return out;
}

absl::StatusOr<v1::ExportAssessmentResponse> FleetService::ExportAssessment(
    const v1::ExportAssessmentRequest& request, size_t max_bytes) const {
  if (request.until_unix_nano() <= request.since_unix_nano()) {
    return absl::InvalidArgumentError(
        "the range is empty or reversed: until_unix_nano must be after since_unix_nano");
  }
  ASSIGN_OR_RETURN(std::vector<v1::Verdict> verdicts,
                   VerdictsInRange(*store_, request.since_unix_nano(), request.until_unix_nano(),
                                   options_.max_export_verdicts));
  std::map<std::string, std::string> hostnames;
  std::vector<StoredVerdict> stored;
  stored.reserve(verdicts.size());
  for (v1::Verdict& v : verdicts) {
    auto [it, inserted] = hostnames.try_emplace(v.node_id());
    if (inserted) {
      if (std::optional<NodeResultSummary> n = store_->FindNode(v.node_id())) {
        it->second = n->hostname;
      }
    }
    stored.push_back(StoredVerdict{std::move(v), it->second});
  }
  OscalExportOptions oscal;
  oscal.since = absl::FromUnixNanos(request.since_unix_nano());
  oscal.until = absl::FromUnixNanos(request.until_unix_nano());
  oscal.generated_at = absl::Now();
  v1::ExportAssessmentResponse out;
  out.set_oscal_json(ExportAssessmentResults(stored, oscal).dump(2));
  if (max_bytes != 0 && out.oscal_json().size() > max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the assessment of the ", stored.size(), " verdicts in the range is ",
        out.oscal_json().size(), " bytes, more than this verifier sends in one message (",
        max_bytes, " bytes, from --max-message-bytes); narrow the range"));
  }
  return out;
}

absl::StatusOr<v1::GetJwksResponse> FleetService::GetJwks() const {
  if (options_.signer == nullptr) {
    return absl::FailedPreconditionError("this verifier signs no results");
  }
  absl::StatusOr<std::string> jwks = options_.signer->Jwks();
  if (!jwks.ok()) return jwks.status();
  v1::GetJwksResponse out;
  out.set_jwks_json(*std::move(jwks));
  return out;
}

absl::StatusOr<v1::PutPolicyResponse> FleetService::PutPolicy(const std::string& yaml,
                                                              const std::string& actor) {
  // The whole document is checked; any error refuses it, every error is named.
  policy::ParseResult parse = policy::ParsePolicies(yaml, "");
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
  for (const policy::Diagnostic& d : parse.diagnostics) {
    std::string line = absl::StrCat("line ", d.line, ", column ", d.column, ": ", d.message);
    (d.severity == policy::Diagnostic::Severity::kError ? errors : warnings)
        .push_back(std::move(line));
  }
  if (!errors.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the policy is refused: ", absl::StrJoin(errors, "; ")));
  }
  if (parse.policies.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("the policy is refused: PutPolicy takes exactly one RuntimePolicy document, "
                     "this has ",
                     parse.policies.size()));
  }
  std::optional<policy::Policy> parsed = std::move(parse.policies.front());
  if (options_.policies != nullptr) {
    // Refuse before storing what the running set could not take.
    for (const policy::Policy& p : options_.policies->Current()->policies) {
      if (p.name == parsed->name && p.revision >= parsed->revision) {
        return absl::FailedPreconditionError(absl::StrCat("policy ", p.name, " is at revision ",
                                                          p.revision,
                                                          " here; a new revision must be greater"));
      }
    }
  }
  v1::PolicyInfo info;
  info.set_name(parsed->name);
  info.set_revision(parsed->revision);
  info.set_sha256(HexEncode(Sha256(yaml)));
  info.set_updated_by(actor);
  info.set_yaml(yaml);
  ASSIGN_OR_RETURN(v1::PolicyInfo stored, store_->PutPolicy(info));
  const std::string id = parsed->Id();
  if (options_.policies != nullptr) {
    if (absl::Status st = options_.policies->Put(*std::move(parsed)); !st.ok()) {
      // Another change raced this one; the stored revision is loaded at the next start.
      return absl::Status(
          st.code(), absl::StrCat("policy ", id, " was stored but not installed: ", st.message()));
    }
  }
  RETURN_IF_ERROR(Audit(actor, "policy.put", id, absl::StrCat("sha256 ", stored.sha256())));
  spdlog::info("policy {} stored by {}", id, actor);
  v1::PutPolicyResponse out;
  *out.mutable_policy() = std::move(stored);
  for (std::string& w : warnings) out.add_warnings(std::move(w));
  return out;
}

absl::StatusOr<v1::ListPoliciesResponse> FleetService::ListPolicies() const {
  ASSIGN_OR_RETURN(std::vector<v1::PolicyInfo> policies, store_->ListPolicies());
  v1::ListPoliciesResponse out;
  for (v1::PolicyInfo& p : policies) *out.add_policies() = std::move(p);
  return out;
}

absl::Status FleetService::ApproveNode(const std::string& node_id, const std::string& actor) {
  RETURN_IF_ERROR(CheckNodeId(node_id));
  if (options_.registry == nullptr) {
    return absl::FailedPreconditionError("this verifier has no node registry");
  }
  RETURN_IF_ERROR(options_.registry->Approve(node_id));
  // An approval re-admits a revoked node.
  RETURN_IF_ERROR(store_->ClearRevocation(node_id));
  RETURN_IF_ERROR(Audit(actor, "node.approve", node_id, ""));
  spdlog::info("node {} approved for enrollment by {}", node_id, actor);
  return absl::OkStatus();
}

absl::Status FleetService::RevokeNode(const std::string& node_id, const std::string& reason,
                                      const std::string& actor) {
  RETURN_IF_ERROR(CheckNodeId(node_id));
  const bool known =
      store_->FindNode(node_id).has_value() ||
      (options_.registry != nullptr &&
       (options_.registry->Find(node_id) != nullptr || options_.registry->IsApproved(node_id)));
  if (!known) {
    return absl::NotFoundError(absl::StrCat("node ", node_id,
                                            " is unknown: it never enrolled, reported or was "
                                            "approved"));
  }
  RETURN_IF_ERROR(store_->RevokeNode(node_id, actor, reason));
  // Without its approval the node can neither enroll again nor (where approval is the
  // only way in) renew its certificate.
  if (options_.registry != nullptr) RETURN_IF_ERROR(options_.registry->Revoke(node_id));
  spdlog::warn("node {} revoked by {}", node_id, actor);
  // The node is shut out before the audit write, which could fail.
  if (options_.on_revoked) options_.on_revoked(node_id);
  return Audit(actor, "node.revoke", node_id, reason);
}

absl::StatusOr<v1::ListAuditResponse> FleetService::ListAudit(
    const v1::ListAuditRequest& request) const {
  ASSIGN_OR_RETURN(AuditPage page, store_->ListAudit(request.page_size(), request.page_token()));
  v1::ListAuditResponse out;
  for (v1::AuditRecord& r : page.records) *out.add_records() = std::move(r);
  out.set_next_page_token(std::move(page.next_page_token));
  return out;
}

}  // namespace vigil::verifier
