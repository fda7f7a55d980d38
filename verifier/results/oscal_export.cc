#include "verifier/results/oscal_export.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/digest.h"
#include "common/policy/node_self.h"
#include "verifier/results/ear_claims.h"

namespace vigil::verifier {
namespace {

// Namespace of Vigil's own OSCAL props, and of its name-based UUIDs (the latter is
// uuid5(NAMESPACE_URL, kPropNs)).
constexpr char kPropNs[] = "https://vigil.invalid/ns/oscal";
constexpr char kNistFramework[] = "NIST-800-53r5";

using Uuid = std::array<uint8_t, 16>;

Uuid Uuid5(const Uuid& ns, std::string_view name) {
  std::string input(reinterpret_cast<const char*>(ns.data()), ns.size());
  input.append(name.data(), name.size());
  unsigned char sha1[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(input.data(), input.size(), sha1, &len, EVP_sha1(), nullptr);
  Uuid out;
  std::copy_n(sha1, out.size(), out.begin());
  out[6] = static_cast<uint8_t>((out[6] & 0x0f) | 0x50);  // version 5
  out[8] = static_cast<uint8_t>((out[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return out;
}

std::string UuidText(const Uuid& u) {
  std::string hex = HexEncode(std::string_view(reinterpret_cast<const char*>(u.data()), u.size()));
  return absl::StrCat(hex.substr(0, 8), "-", hex.substr(8, 4), "-", hex.substr(12, 4), "-",
                      hex.substr(16, 4), "-", hex.substr(20));
}

const Uuid& VigilNamespace() {
  // RFC 4122 appendix C's URL namespace, 6ba7b811-9dad-11d1-80b4-00c04fd430c8.
  static const Uuid kUrlNamespace = {0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1,
                                     0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};
  static const Uuid kVigil = Uuid5(kUrlNamespace, kPropNs);
  return kVigil;
}

}  // namespace

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone());
}

// OSCAL prop values are non-empty strings without surrounding whitespace: such values are
// left out rather than sent malformed.
void AddProp(nlohmann::json& props, const char* name, std::string value,
             const std::string& prop_class) {
  absl::string_view trimmed = absl::StripAsciiWhitespace(value);
  if (trimmed.empty()) return;
  nlohmann::json prop{{"name", name}, {"ns", kPropNs}, {"value", std::string(trimmed)}};
  if (!prop_class.empty()) prop["class"] = prop_class;
  props.push_back(std::move(prop));
}

namespace {

// An OSCAL token (letters, digits, '.', '-', '_', starting with a letter or '_') from
// free text.
std::string Tokenize(std::string_view text) {
  std::string out;
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (absl::ascii_isalnum(u) || c == '.' || c == '_' || c == '-') {
      out += static_cast<char>(absl::ascii_tolower(u));
    } else if (c == '(') {
      out += '.';
    } else if (c != ')') {
      out += '-';
    }
  }
  if (out.empty() || !(absl::ascii_isalpha(static_cast<unsigned char>(out[0])) || out[0] == '_')) {
    out = "_" + out;
  }
  return out;
}

// "06" -> "6" ("AC-06" is a common way to write AC-6), "0" stays.
std::string StripLeadingZeros(const std::string& digits) {
  size_t nz = digits.find_first_not_of('0');
  return nz == std::string::npos ? "0" : digits.substr(nz);
}

bool Satisfies(v1::TrustStatus s) { return s == v1::TRUST_AFFIRMING; }
bool Fails(v1::TrustStatus s) {
  return s == v1::TRUST_WARNING || s == v1::TRUST_CONTRAINDICATED || s == v1::TRUST_REJECTED ||
         s == v1::TRUST_UNVERIFIED;
}

std::string RuleLine(const v1::RuleOutcome& r) {
  std::string line = absl::StrCat("- rule ", r.rule_id(), " (", r.kind(),
                                  "): ", std::string(EarStatusName(r.status())));
  if (r.pid() != 0) absl::StrAppend(&line, ", pid ", r.pid());
  if (!r.reason().empty()) absl::StrAppend(&line, ": ", r.reason());
  if (!r.observed().empty()) absl::StrAppend(&line, "; observed ", r.observed());
  if (!r.expected().empty()) absl::StrAppend(&line, "; expected ", r.expected());
  return line;
}

// What the findings gather about one control.
struct ControlTally {
  ControlRef ref;
  int satisfied = 0;
  int failed = 0;
  int other = 0;
  std::vector<std::string> observation_uuids;  // in document order, no repeats
};

class Exporter {
 public:
  explicit Exporter(const OscalExportOptions& options) : options_(options) {}

  void Add(const StoredVerdict& stored) {
    const v1::Verdict& v = stored.verdict;
    absl::Time appraised = absl::FromUnixNanos(v.appraised_unix_nano());
    std::string node_key =
        absl::StrCat(v.node_id(), "|", v.evidence_sha256(), "|", v.appraised_unix_nano());
    std::string node_obs = NameUuid(absl::StrCat("observation|", node_key));
    if (!seen_.insert(node_obs).second) return;  // the same verdict twice
    absl::StrAppend(&content_, node_key, "\n");

    std::string item = InventoryItem(v.node_id(), stored.hostname);
    nlohmann::json evidence = Evidence(v);
    std::string name = stored.hostname.empty() ? v.node_id() : stored.hostname;

    nlohmann::json props = nlohmann::json::array();
    AddProp(props, "node-id", v.node_id());
    AddProp(props, "trust-status", std::string(EarStatusName(v.status())));
    AddProp(props, "report-sequence", absl::StrCat(v.report_sequence()));
    AddProp(props, "policy-digest", v.policy_digest());
    if (v.tpm_simulated()) AddProp(props, "tpm-simulated", "true");
    nlohmann::json vector = TrustVectorClaims(v.trust_vector());
    for (const auto& [claim, value] : vector.items()) {
      AddProp(props, "trust-vector", absl::StrCat(value.get<int>()), claim);
    }
    std::string description =
        absl::StrCat("Appraisal of report ", v.report_sequence(), " of node ", v.node_id(), " (",
                     name, "): evidence ", std::string(EarStatusName(v.status())), ".");
    if (!v.detail().empty()) absl::StrAppend(&description, " ", v.detail());
    // The node's own rule (vigil.node.self) speaks about the node, beside any workload.
    std::vector<const v1::RuleOutcome*> node_rules;
    for (const auto& r : v.rules()) {
      if (v.workloads_size() == 0 || r.rule_id() == policy::kNodeSelfRuleId) {
        node_rules.push_back(&r);
      }
    }
    for (const auto* r : node_rules) absl::StrAppend(&description, "\n", RuleLine(*r));
    observations_.push_back(Observation(node_obs, absl::StrCat("Node ", name, " attestation"),
                                        description, std::move(props), item, "inventory-item",
                                        evidence, appraised));
    for (const auto* r : node_rules) Tally(*r, node_obs);

    for (const v1::WorkloadVerdict& w : v.workloads()) {
      std::string obs = NameUuid(absl::StrCat("observation|", node_key, "|", w.workload_id()));
      if (!seen_.insert(obs).second) continue;
      std::string component = Component(v.node_id(), w);
      nlohmann::json wprops = nlohmann::json::array();
      AddProp(wprops, "node-id", v.node_id());
      AddProp(wprops, "workload-id", w.workload_id());
      AddProp(wprops, "trust-status", std::string(EarStatusName(w.status())));
      AddProp(wprops, "policy-id", w.policy_id());
      std::string wdesc =
          absl::StrCat("Runtime rules of workload ", w.identity().name(), " on node ", name, ": ",
                       std::string(EarStatusName(w.status())), ".");
      for (const auto& r : w.rules()) absl::StrAppend(&wdesc, "\n", RuleLine(r));
      observations_.push_back(
          Observation(obs, absl::StrCat("Workload ", w.identity().name(), " on ", name), wdesc,
                      std::move(wprops), component, "component", evidence, appraised));
      for (const auto& r : w.rules()) Tally(r, obs);
    }
  }

  nlohmann::json Finish() {
    std::string doc_uuid =
        NameUuid(absl::StrCat("assessment-results|", absl::ToUnixNanos(options_.since), "|",
                              absl::ToUnixNanos(options_.until), "|", HexEncode(Sha256(content_))));
    std::string result_uuid = NameUuid(absl::StrCat("result|", doc_uuid));

    nlohmann::json include = nlohmann::json::array();
    nlohmann::json other_controls = nlohmann::json::array();
    nlohmann::json findings = nlohmann::json::array();
    for (auto& [control, tally] : controls_) {
      const ControlRef& ref = tally.ref;
      std::string state = tally.failed == 0 && tally.satisfied > 0 ? "satisfied" : "not-satisfied";
      nlohmann::json target{
          {"type", "objective-id"},
          {"target-id", ref.oscal_control_id.empty()
                            ? absl::StrCat(Tokenize(ref.framework), "_", Tokenize(ref.id))
                            : absl::StrCat(ref.oscal_control_id, "_obj")},
          {"status", {{"state", state}}},
      };
      if (tally.failed == 0 && tally.satisfied == 0) {
        target["status"]["reason"] = "other";
        target["status"]["remarks"] =
            "No rule outcome in the range affirmed or broke this control.";
      }
      nlohmann::json props = nlohmann::json::array();
      AddProp(props, "control", control, ref.framework);
      if (ref.oscal_control_id.empty()) {
        AddProp(other_controls, "control", control, ref.framework);
      } else {
        include.push_back({{"control-id", ref.oscal_control_id}});
      }
      nlohmann::json related = nlohmann::json::array();
      for (const std::string& o : tally.observation_uuids)
        related.push_back({{"observation-uuid", o}});
      findings.push_back({
          {"uuid", NameUuid(absl::StrCat("finding|", result_uuid, "|", control))},
          {"title", absl::StrCat(ref.framework, " ", ref.id)},
          {"description",
           absl::StrFormat("%d rule outcome(s) evidencing %s affirmed it and %d broke it in the "
                           "assessed range.",
                           tally.satisfied, control, tally.failed)},
          {"props", std::move(props)},
          {"target", std::move(target)},
          {"related-observations", std::move(related)},
      });
    }

    nlohmann::json selection = nlohmann::json::object();
    if (include.empty()) {
      selection["description"] = "No NIST SP 800-53 rev5 control was evidenced in the range.";
    } else {
      selection["include-controls"] = std::move(include);
    }
    nlohmann::json reviewed{{"control-selections", nlohmann::json::array({selection})}};
    if (!other_controls.empty()) {
      reviewed["props"] = std::move(other_controls);
      reviewed["remarks"] =
          "Controls of frameworks without an OSCAL catalog here (ISO/IEC 27001, SOC 2) are "
          "listed as props whose class names the framework.";
    }

    nlohmann::json local = nlohmann::json::object();
    if (!components_.empty()) local["components"] = std::move(components_);
    if (!inventory_.empty()) local["inventory-items"] = std::move(inventory_);

    nlohmann::json result{
        {"uuid", result_uuid},
        {"title", "Runtime attestation results"},
        {"description",
         absl::StrFormat("Vigil appraised %d node report(s) between %s and %s: TPM-quoted "
                         "evidence of each node and the runtime rules of its workloads.",
                         reports_, Rfc3339(options_.since), Rfc3339(options_.until))},
        {"start", Rfc3339(options_.since)},
        {"end", Rfc3339(options_.until)},
        {"reviewed-controls", std::move(reviewed)},
    };
    if (!local.empty()) result["local-definitions"] = std::move(local);
    if (!observations_.empty()) result["observations"] = std::move(observations_);
    if (!findings.empty()) result["findings"] = std::move(findings);

    return nlohmann::json{{"assessment-results",
                           {
                               {"uuid", doc_uuid},
                               {"metadata",
                                {
                                    {"title", options_.title},
                                    {"last-modified", Rfc3339(options_.generated_at)},
                                    {"version", options_.version},
                                    {"oscal-version", "1.1.2"},
                                }},
                               {"import-ap", {{"href", options_.import_ap_href}}},
                               {"results", nlohmann::json::array({std::move(result)})},
                           }}};
  }

 private:
  std::string InventoryItem(const std::string& node_id, const std::string& hostname) {
    std::string uuid = NameUuid(absl::StrCat("inventory-item|", node_id));
    if (inventory_uuids_.insert(uuid).second) {
      nlohmann::json props = nlohmann::json::array();
      AddProp(props, "node-id", node_id);
      if (!hostname.empty()) {
        props.push_back({{"name", "fqdn"}, {"value", hostname}});
      }
      inventory_.push_back({{"uuid", uuid},
                            {"description", absl::StrCat("Vigil node ", node_id)},
                            {"props", std::move(props)}});
    }
    return uuid;
  }

  std::string Component(const std::string& node_id, const v1::WorkloadVerdict& w) {
    std::string uuid = NameUuid(absl::StrCat("component|", node_id, "|", w.workload_id()));
    if (component_uuids_.insert(uuid).second) {
      nlohmann::json props = nlohmann::json::array();
      AddProp(props, "workload-id", w.workload_id());
      AddProp(props, "exe-path", w.identity().exe_path());
      AddProp(props, "exe-sha256", w.identity().exe_sha256());
      AddProp(props, "container-id", w.identity().container_id());
      std::string title = w.identity().name().empty() ? w.workload_id() : w.identity().name();
      components_.push_back(
          {{"uuid", uuid},
           {"type", "software"},
           {"title", title},
           {"description", absl::StrCat("Workload ", title, " on node ", node_id)},
           {"props", std::move(props)},
           {"status", {{"state", "operational"}}}});
    }
    return uuid;
  }

  nlohmann::json Evidence(const v1::Verdict& v) {
    nlohmann::json props = nlohmann::json::array();
    AddProp(props, "evidence-sha256", v.evidence_sha256());
    AddProp(props, "ear-token", v.ear_token());
    nlohmann::json evidence{
        {"description", v.ear_token().empty()
                            ? "The TPM-quoted runtime report, by SHA-256."
                            : "The TPM-quoted runtime report, by SHA-256, and the verifier's "
                              "signed EAR (JWT, ES256) for its appraisal."}};
    // A report that could not be parsed has no digest to point at.
    if (!props.empty()) evidence["props"] = std::move(props);
    return nlohmann::json::array({std::move(evidence)});
  }

  nlohmann::json Observation(const std::string& uuid, std::string title, std::string description,
                             nlohmann::json props, const std::string& subject,
                             const char* subject_type, const nlohmann::json& evidence,
                             absl::Time collected) {
    nlohmann::json o{
        {"uuid", uuid},
        {"title", std::move(title)},
        {"description", std::move(description)},
        {"methods", {"TEST"}},
        {"types", {"finding"}},
        {"subjects", {{{"subject-uuid", subject}, {"type", subject_type}}}},
        {"relevant-evidence", evidence},
        {"collected", Rfc3339(collected)},
    };
    if (!props.empty()) o["props"] = std::move(props);
    if (std::string_view(subject_type) == "inventory-item") ++reports_;
    return o;
  }

  void Tally(const v1::RuleOutcome& rule, const std::string& observation) {
    for (const std::string& control : rule.controls()) {
      auto ref = ParseControl(control);
      if (!ref.ok()) continue;  // not "<framework>:<id>": nothing to file it under
      auto [it, inserted] = controls_.try_emplace(control);
      ControlTally& tally = it->second;
      if (inserted) tally.ref = *std::move(ref);
      if (Satisfies(rule.status())) {
        ++tally.satisfied;
      } else if (Fails(rule.status())) {
        ++tally.failed;
      } else {
        ++tally.other;
      }
      if (tally.observation_uuids.empty() || tally.observation_uuids.back() != observation) {
        tally.observation_uuids.push_back(observation);
      }
    }
  }

  const OscalExportOptions& options_;
  std::string content_;  // what the document uuid is derived from
  std::set<std::string> seen_;
  std::set<std::string> inventory_uuids_, component_uuids_;
  nlohmann::json inventory_ = nlohmann::json::array();
  nlohmann::json components_ = nlohmann::json::array();
  nlohmann::json observations_ = nlohmann::json::array();
  std::map<std::string, ControlTally> controls_;  // by control text, so findings sort
  int reports_ = 0;
};

}  // namespace

absl::StatusOr<ControlRef> ParseControl(std::string_view control) {
  size_t colon = control.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == control.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("control \"", std::string(control), "\" is not <framework>:<id>"));
  }
  ControlRef ref;
  ref.framework = std::string(control.substr(0, colon));
  ref.id = std::string(control.substr(colon + 1));
  if (ref.framework == kNistFramework) {
    // FAMILY-N or FAMILY-N(M): two letters, a number, an optional enhancement number.
    std::string_view id = ref.id;
    size_t dash = id.find('-');
    bool ok = dash == 2 && absl::ascii_isalpha(static_cast<unsigned char>(id[0])) &&
              absl::ascii_isalpha(static_cast<unsigned char>(id[1]));
    std::string base, enhancement;
    size_t i = dash + 1;
    while (ok && i < id.size() && absl::ascii_isdigit(static_cast<unsigned char>(id[i]))) {
      base += id[i++];
    }
    if (ok && i < id.size() && id[i] == '(') {
      ++i;
      while (i < id.size() && absl::ascii_isdigit(static_cast<unsigned char>(id[i]))) {
        enhancement += id[i++];
      }
      ok = !enhancement.empty() && i + 1 == id.size() && id[i] == ')';
      i = id.size();
    }
    ok = ok && !base.empty() && i == id.size();
    if (ok) {
      ref.oscal_control_id = absl::StrCat(absl::AsciiStrToLower(std::string(id.substr(0, 2))), "-",
                                          StripLeadingZeros(base));
      if (!enhancement.empty()) {
        absl::StrAppend(&ref.oscal_control_id, ".", StripLeadingZeros(enhancement));
      }
    }
  }
  return ref;
}

std::string NameUuid(std::string_view name) { return UuidText(Uuid5(VigilNamespace(), name)); }

nlohmann::json ExportAssessmentResults(const std::vector<StoredVerdict>& verdicts,
                                       const OscalExportOptions& options) {
  std::vector<const StoredVerdict*> in_range;
  int64_t since = absl::ToUnixNanos(options.since);
  int64_t until = absl::ToUnixNanos(options.until);
  for (const StoredVerdict& s : verdicts) {
    int64_t t = s.verdict.appraised_unix_nano();
    if (t >= since && t < until) in_range.push_back(&s);
  }
  // Document order does not depend on the order the store returned the verdicts in.
  std::stable_sort(in_range.begin(), in_range.end(), [](const auto* a, const auto* b) {
    return std::forward_as_tuple(a->verdict.appraised_unix_nano(), a->verdict.node_id(),
                                 a->verdict.evidence_sha256()) <
           std::forward_as_tuple(b->verdict.appraised_unix_nano(), b->verdict.node_id(),
                                 b->verdict.evidence_sha256());
  });
  Exporter exporter(options);
  for (const StoredVerdict* s : in_range) exporter.Add(*s);
  return exporter.Finish();
}

}  // namespace vigil::verifier
