#include "verifier/results/ear_claims.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/ear_verify.h"

namespace vigil::verifier {
namespace {

// Severity order of the EAR tiers, so "worst of" is a max.
enum class Tier { kNone = 0, kAffirming = 1, kWarning = 2, kContraindicated = 3 };

std::string_view TierName(Tier tier) {
  switch (tier) {
    case Tier::kAffirming:
      return "affirming";
    case Tier::kWarning:
      return "warning";
    case Tier::kContraindicated:
      return "contraindicated";
    case Tier::kNone:
      break;
  }
  return "none";
}

Tier StatusTier(v1::TrustStatus status) {
  switch (status) {
    case v1::TRUST_AFFIRMING:
      return Tier::kAffirming;
    case v1::TRUST_WARNING:
    case v1::TRUST_UNVERIFIED:
      return Tier::kWarning;
    case v1::TRUST_CONTRAINDICATED:
    case v1::TRUST_REJECTED:
      return Tier::kContraindicated;
    default:
      return Tier::kNone;
  }
}

// The AR4SI tier of one claim value: 0 no claim, 2-31 affirming, 32-95 warning, 96-127
// contraindicated. Values the verifier could not appraise (negative) or outside the
// defined ranges count as warnings: they never affirm.
Tier ClaimTier(int value) {
  if (value == 0) return Tier::kNone;
  if (value >= 2 && value <= 31) return Tier::kAffirming;
  if (value >= 96 && value <= 127) return Tier::kContraindicated;
  return Tier::kWarning;
}

}  // namespace

int Ar4siStatusCode(v1::TrustStatus status) {
  switch (StatusTier(status)) {
    case Tier::kAffirming:
      return 2;
    case Tier::kWarning:
      return 32;
    case Tier::kContraindicated:
      return 96;
    case Tier::kNone:
      break;
  }
  return 0;
}

int WorseAr4siClaim(int a, int b) { return ClaimTier(b) > ClaimTier(a) ? b : a; }

std::string_view RuleKindClaim(std::string_view kind) {
  if (kind == "seccomp" || kind == "user_namespaces" || kind == "memory") return "runtime-opaque";
  if (kind == "read_only_root") return "file-system";
  if (kind == "events") return "sourced-data";
  return "";
}

namespace {

nlohmann::json WorkloadSubmod(const v1::WorkloadVerdict& workload) {
  nlohmann::json vector = nlohmann::json::object();
  if (int code = Ar4siStatusCode(workload.status()); code != 0) vector["configuration"] = code;
  for (const v1::RuleOutcome& rule : workload.rules()) {
    std::string_view claim = RuleKindClaim(rule.kind());
    int code = Ar4siStatusCode(rule.status());
    if (claim.empty() || code == 0) continue;
    std::string key(claim);
    vector[key] = std::max(vector.value(key, 0), code);
  }
  nlohmann::json submod{
      {"ear.status", TierName(StatusTier(workload.status()))},
      {"ear.trustworthiness-vector", std::move(vector)},
      {"vigil.workload-id", workload.workload_id()},
  };
  if (!workload.policy_id().empty()) submod["ear.appraisal-policy-id"] = workload.policy_id();
  return submod;
}

nlohmann::json NodeSubmod(const v1::Verdict& verdict) {
  nlohmann::json vector = TrustVectorClaims(verdict.trust_vector());
  Tier tier = Tier::kNone;
  for (const auto& [name, value] : vector.items())
    tier = std::max(tier, ClaimTier(value.get<int>()));
  // The evidence's own fate bounds what the vector may say.
  if (verdict.status() == v1::TRUST_REJECTED || verdict.status() == v1::TRUST_UNVERIFIED) {
    tier = std::max(tier, StatusTier(verdict.status()));
  }
  nlohmann::json submod{
      {"ear.status", TierName(tier)},
      {"ear.trustworthiness-vector", std::move(vector)},
  };
  if (!verdict.policy_digest().empty()) {
    submod["ear.appraisal-policy-id"] = absl::StrCat("sha256:", verdict.policy_digest());
  }
  return submod;
}

}  // namespace

std::string_view EarStatusName(v1::TrustStatus status) { return TierName(StatusTier(status)); }

nlohmann::json TrustVectorClaims(const v1::TrustVector& v) {
  nlohmann::json claims = nlohmann::json::object();
  const std::pair<const char*, int> all[] = {
      {"instance-identity", v.instance_identity()},
      {"configuration", v.configuration()},
      {"executables", v.executables()},
      {"file-system", v.file_system()},
      {"hardware", v.hardware()},
      {"runtime-opaque", v.runtime_opaque()},
      {"storage-opaque", v.storage_opaque()},
      {"sourced-data", v.sourced_data()},
  };
  for (const auto& [name, value] : all) {
    if (value != 0) claims[name] = value;
  }
  return claims;
}

nlohmann::json BuildEarClaims(const v1::Verdict& verdict, const EarVerifierId& verifier_id,
                              absl::Time issued_at) {
  // Workloads that share a policy name (or take the node's own name) are told apart by a
  // prefix of their stable id.
  std::map<std::string, int> name_count;
  for (const v1::WorkloadVerdict& w : verdict.workloads()) ++name_count[w.identity().name()];

  nlohmann::json submods = nlohmann::json::object();
  submods[std::string(kNodeSubmod)] = NodeSubmod(verdict);
  for (const v1::WorkloadVerdict& w : verdict.workloads()) {
    std::string key = w.identity().name();
    if (key.empty() || key == kNodeSubmod || name_count[key] > 1) {
      key = absl::StrCat(key, "#", w.workload_id().substr(0, 12));
      if (submods.contains(key)) key = absl::StrCat(w.identity().name(), "#", w.workload_id());
    }
    submods[key] = WorkloadSubmod(w);
  }

  nlohmann::json claims{
      {"eat_profile", std::string(kEarProfile)},
      {"iat", absl::ToUnixSeconds(issued_at)},
      {"ear.verifier-id", {{"developer", verifier_id.developer}, {"build", verifier_id.build}}},
      {"submods", std::move(submods)},
      {"vigil.node-id", verdict.node_id()},
      {"vigil.evidence-sha256", verdict.evidence_sha256()},
      {"vigil.report-sequence", verdict.report_sequence()},
  };
  // A simulated TPM's evidence: said outright, beside the absent hardware claim.
  if (verdict.tpm_simulated()) claims["vigil.tpm-simulated"] = true;
  return claims;
}

}  // namespace vigil::verifier
