#pragma once

// Verdicts, a controllable clock, temporary directories and subprocesses for the tests of
// verifier/results.

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/time/time.h"
#include "vigil/v1/attestation.pb.h"

namespace vigil::testing {

/// A time source the test moves by hand.
class ManualClock {
 public:
  explicit ManualClock(absl::Time start) : now_(start) {}
  absl::Time Now() const { return now_; }
  void Advance(absl::Duration d) { now_ += d; }

 private:
  absl::Time now_;
};

/// A workload verdict with one rule outcome of `kind` and `status` evidencing `controls`.
inline v1::WorkloadVerdict MakeWorkload(const std::string& name, const std::string& id,
                                        v1::TrustStatus status, const std::string& rule_id,
                                        const std::string& kind,
                                        std::initializer_list<std::string> controls) {
  v1::WorkloadVerdict w;
  w.set_workload_id(id);
  w.mutable_identity()->set_name(name);
  w.mutable_identity()->set_exe_path("/usr/bin/" + name);
  w.set_status(status);
  w.set_policy_id(name + "-policy@3");
  w.add_pids(4242);
  v1::RuleOutcome* rule = w.add_rules();
  rule->set_rule_id(rule_id);
  rule->set_kind(kind);
  rule->set_status(status);
  rule->set_reason(status == v1::TRUST_AFFIRMING ? "as the policy requires" : "breaks the rule");
  rule->set_workload_id(id);
  for (const std::string& c : controls) rule->add_controls(c);
  return w;
}

/// A verified verdict for node-1 with one passing ("api") and one failing ("worker")
/// workload.
inline v1::Verdict MakeVerdict(absl::Time appraised) {
  v1::Verdict v;
  v.set_node_id("node-1");
  v.set_status(v1::TRUST_CONTRAINDICATED);
  v.set_evidence_sha256(std::string(64, 'a'));
  v.set_appraised_unix_nano(absl::ToUnixNanos(appraised));
  v.set_policy_digest(std::string(64, 'b'));
  v.add_policy_ids("api-policy@3");
  v.add_policy_ids("worker-policy@3");
  v.set_report_sequence(17);
  v.mutable_trust_vector()->set_instance_identity(2);
  v.mutable_trust_vector()->set_executables(2);
  v.mutable_trust_vector()->set_configuration(96);
  *v.add_workloads() = MakeWorkload(
      "api", std::string(64, '1'), v1::TRUST_AFFIRMING, "seccomp-denies-ptrace", "seccomp",
      {"NIST-800-53r5:AC-6(10)", "ISO27001:2022:A.8.2", "ISO27001:2013:A.9.2.3"});
  *v.add_workloads() =
      MakeWorkload("worker", std::string(64, '2'), v1::TRUST_CONTRAINDICATED, "no-cap-sys-admin",
                   "capabilities", {"NIST-800-53r5:AC-6", "SOC2:CC6.1"});
  for (const auto& w : v.workloads()) {
    for (const auto& r : w.rules()) *v.add_rules() = r;
  }
  return v;
}

/// Debian's interpreter, which python3-jwt and python3-jsonschema install into.
inline constexpr char kSystemPython[] = "/usr/bin/python3";

/// The exit status and standard output of `command` run by /bin/sh (arguments must not
/// need quoting).
struct CommandResult {
  int exit_code = -1;
  std::string out;
};
inline CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) result.out.append(buf, n);
  int status = pclose(pipe);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

/// A fresh directory under $TMPDIR (or /tmp), removed with everything in it when this goes.
class ScopedTempDir {
 public:
  explicit ScopedTempDir(const std::string& tag) {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/vigil-" + tag + "-XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~ScopedTempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  /// Empty when the directory could not be made.
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
}

}  // namespace vigil::testing
