#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <future>
#include <string>
#include <tuple>
#include <vector>

#include "verifier/store/sqlite_store.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::verifier::testing {

/// A temporary directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "vigil-store-XXXXXX").string();
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    if (!path_.empty()) std::filesystem::remove_all(path_);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// Evidence whose payload is a RuntimeReport naming `hostname`.
inline v1::Evidence MakeEvidence(const std::string& hostname, uint64_t sequence) {
  v1::RuntimeReport report;
  report.set_hostname(hostname);
  report.set_sequence(sequence);
  v1::Evidence evidence;
  evidence.set_payload(report.SerializeAsString());
  evidence.mutable_quote()->set_attest("attest-" + std::to_string(sequence));
  return evidence;
}

struct WorkloadSpec {
  std::string id;
  std::string name;
  v1::TrustStatus status;
};

inline v1::Verdict MakeVerdict(const std::string& node_id, v1::TrustStatus status,
                               int64_t appraised_unix_nano,
                               const std::vector<WorkloadSpec>& workloads = {},
                               uint64_t sequence = 0) {
  v1::Verdict v;
  v.set_node_id(node_id);
  v.set_status(status);
  v.set_appraised_unix_nano(appraised_unix_nano);
  v.set_evidence_sha256("sha-" + std::to_string(appraised_unix_nano));
  v.set_policy_digest("policy-digest");
  v.set_report_sequence(sequence);
  for (const WorkloadSpec& w : workloads) {
    v1::WorkloadVerdict* wv = v.add_workloads();
    wv->set_workload_id(w.id);
    wv->mutable_identity()->set_name(w.name);
    wv->set_status(w.status);
  }
  return v;
}

/// `verdict` with rule outcomes as the appraiser writes them: two per workload, each with
/// its controls, observed and expected values, and first a rule about the node itself; the
/// top-level `rules` list the node's rule, then every workload's outcomes in order.
inline v1::Verdict WithRuleOutcomes(v1::Verdict verdict) {
  v1::RuleOutcome* node_rule = verdict.add_rules();
  node_rule->set_rule_id("node-self-protection");
  node_rule->set_status(v1::TRUST_AFFIRMING);
  node_rule->set_reason("the node runs with the least privilege it needs");
  for (v1::WorkloadVerdict& w : *verdict.mutable_workloads()) {
    for (const char* rule_id : {"seccomp-denies-ptrace", "no-admin-capabilities"}) {
      v1::RuleOutcome* r = w.add_rules();
      r->set_rule_id(rule_id);
      r->set_pid(100);
      r->set_status(w.status());
      r->set_reason(std::string(rule_id) + " holds for " + w.identity().name());
      r->add_controls("NIST-800-53r5:AC-6(10)");
      r->add_controls("ISO27001:2022:A.8.2");
      r->set_kind("capabilities");
      r->set_observed("eff=0x0");
      r->set_expected("CAP_SYS_PTRACE absent");
      r->set_workload_id(w.workload_id());
    }
  }
  for (const v1::WorkloadVerdict& w : verdict.workloads()) {
    for (const v1::RuleOutcome& r : w.rules()) *verdict.add_rules() = r;
  }
  return verdict;
}

/// A ListVerdicts query (designated initializers would leave fields unnamed).
inline VerdictQuery Query(std::string node_id = "", std::string workload = "",
                          std::vector<v1::TrustStatus> statuses = {}, int64_t since = 0,
                          int64_t until = 0, uint32_t page_size = 0) {
  VerdictQuery q;
  q.node_id = std::move(node_id);
  q.workload = std::move(workload);
  q.statuses = std::move(statuses);
  q.since_unix_nano = since;
  q.until_unix_nano = until;
  q.page_size = page_size;
  return q;
}

/// Records and waits until the verdict is durable; the status the store reported.
inline absl::Status RecordDurably(Store& store, const std::string& node_id,
                                  const v1::Verdict& verdict) {
  std::promise<absl::Status> done;
  std::future<absl::Status> result = done.get_future();
  store.RecordVerdict(node_id, MakeEvidence("host-" + node_id, verdict.report_sequence()), verdict,
                      [&done](absl::Status st) { done.set_value(std::move(st)); });
  return result.get();
}

/// Every verdict `query` matches, all pages.
inline std::vector<v1::Verdict> AllVerdicts(const Store& store, VerdictQuery query) {
  std::vector<v1::Verdict> out;
  do {
    auto page = store.ListVerdicts(query);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok()) break;
    for (v1::Verdict& v : page->verdicts) out.push_back(std::move(v));
    query.page_token = page->next_page_token;
  } while (!query.page_token.empty());
  return out;
}

}  // namespace vigil::verifier::testing
