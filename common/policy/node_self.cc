#include "common/policy/node_self.h"

#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/policy/controls.h"
#include "common/policy/parser.h"

namespace vigil::policy {
namespace {

// Every capability set of `caps` that holds something it may not, as "effective set holds
// CAP_SYS_ADMIN" lines: the effective, permitted and bounding sets nothing outside
// `allowed`, the inheritable and ambient sets nothing at all.
void CheckSets(const std::string& who, const v1::Capabilities& caps, uint64_t allowed,
               std::vector<std::string>* failures) {
  const std::tuple<const char*, uint64_t, uint64_t> sets[] = {
      {"effective", caps.effective(), allowed},
      {"permitted", caps.permitted(), allowed},
      {"bounding", caps.bounding(), allowed},
      {"inheritable", caps.inheritable(), 0},
      {"ambient", caps.ambient(), 0}};
  for (const auto& [name, mask, may_hold] : sets) {
    if (uint64_t extra = mask & ~may_hold; extra != 0) {
      failures->push_back(absl::StrCat(who, " ", name, " set holds ", CapabilityNames(extra)));
    }
  }
}

std::string Describe(const v1::NodeProcessState& p) {
  return absl::StrCat("pid ", p.pid(), " CapEff ", CapabilityNames(p.capabilities().effective()),
                      " CapBnd ", CapabilityNames(p.capabilities().bounding()), " NoNewPrivs ",
                      p.seccomp().no_new_privs() ? 1 : 0, " Seccomp ", p.seccomp().mode(),
                      " filters ", p.seccomp().filter_count());
}

std::vector<std::string> Controls() {
  std::vector<std::string> out;
  for (const char* nist : {"AC-6", "AC-6(10)"}) {
    if (auto c = NistControl(nist); c.ok()) out.push_back(*c);
  }
  if (auto iso = IsoControls("A.8.2"); iso.ok()) out.insert(out.end(), iso->begin(), iso->end());
  if (auto soc = Soc2Control("CC6.1"); soc.ok()) out.push_back(*soc);
  return out;
}

}  // namespace

std::string CapabilityNames(uint64_t mask) {
  std::vector<std::string> names;
  for (int i = 0; i < 64; ++i) {
    if ((mask & CapabilityBit(i)) != 0) names.push_back(CapabilityName(i));
  }
  return names.empty() ? "none" : absl::StrJoin(names, ",");
}

v1::RuleOutcome EvaluateNodeSelf(const v1::RuntimeReport& report, v1::TrustStatus failure_status) {
  v1::RuleOutcome out;
  out.set_rule_id(kNodeSelfRuleId);
  out.set_kind(kNodeSelfRuleKind);
  for (std::string& c : Controls()) out.add_controls(std::move(c));
  out.set_expected(absl::StrCat("split by privilege; main process capabilities within ",
                                CapabilityNames(kNodeMainCapabilities),
                                ", no_new_privs, a seccomp filter; privileged "
                                "process capabilities within ",
                                CapabilityNames(kNodePrivilegedCapabilities),
                                ", no_new_privs; no inheritable or ambient capability"));
  if (!report.has_node_self()) {
    out.set_status(failure_status);
    out.set_observed("not reported");
    out.set_reason("the report does not carry the node's own security state");
    return out;
  }
  const v1::NodeSelfState& self = report.node_self();
  out.set_pid(self.main().pid());
  std::vector<std::string> failures;
  if (!self.privilege_separated() || !self.has_privileged()) {
    failures.push_back("the node runs as one process");
  }
  const v1::NodeProcessState& main = self.main();
  if (!main.read_error().empty()) {
    failures.push_back(absl::StrCat("main process state unreadable: ", main.read_error()));
  } else {
    CheckSets("main process", main.capabilities(), kNodeMainCapabilities, &failures);
    if (!main.seccomp().no_new_privs()) failures.push_back("main process lacks no_new_privs");
    if (main.seccomp().mode() != 2 || main.seccomp().filter_count() == 0) {
      failures.push_back("main process has no seccomp filter");
    }
  }
  std::string observed = absl::StrCat("main: ", Describe(main));
  if (self.has_privileged()) {
    const v1::NodeProcessState& priv = self.privileged();
    absl::StrAppend(&observed, "; privileged: ", Describe(priv));
    if (!priv.read_error().empty()) {
      failures.push_back(absl::StrCat("privileged process state unreadable: ", priv.read_error()));
    } else {
      CheckSets("privileged process", priv.capabilities(), kNodePrivilegedCapabilities, &failures);
      if (!priv.seccomp().no_new_privs()) {
        failures.push_back("privileged process lacks no_new_privs");
      }
    }
  }
  out.set_observed(observed);
  if (failures.empty()) {
    out.set_status(v1::TRUST_AFFIRMING);
    out.set_reason("the node runs split by privilege with its documented capability sets");
  } else {
    out.set_status(failure_status);
    out.set_reason(absl::StrJoin(failures, "; "));
  }
  return out;
}

}  // namespace vigil::policy
