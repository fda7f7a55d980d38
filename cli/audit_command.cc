#include "cli/audit_command.h"

#include <iostream>
#include <map>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/audit_compare.h"
#include "cli/audit_manifests.h"
#include "cli/audit_output.h"
#include "cli/fleet_client.h"
#include "cli/fleet_format.h"
#include "cli/table.h"
#include "cli/time_flags.h"
#include "common/escape.h"
#include "common/pki.h"
#include "common/policy/parser.h"
#include "nlohmann/json.hpp"

namespace vigil::cli {

int RunAuditLog(const FleetConnectionOptions& connection, uint32_t limit, bool json,
                std::ostream& out, std::ostream& err) {
  std::unique_ptr<FleetClient> client = FleetClient::Connect(connection, err);
  if (client == nullptr) return kExitUsage;
  v1::ListAuditResponse all;
  const grpc::Status st = client->CollectPages(
      &v1::Fleet::Stub::ListAudit, v1::ListAuditRequest(), limit,
      [](v1::ListAuditResponse& r) { return r.mutable_records(); }, &all);
  if (!st.ok()) return client->Fail(err, "ListAudit", st);
  if (json) {
    out << ProtoJson(all, /*pretty=*/true) << "\n";
    return kExitOk;
  }
  Table table({"TIME", "ACTOR", "ACTION", "TARGET", "DETAIL"});
  for (const v1::AuditRecord& r : all.records()) {
    table.AddRow({FormatUnixNano(r.time_unix_nano()), r.actor(), r.action(),
                  r.target().empty() ? "-" : r.target(), r.detail().empty() ? "-" : r.detail()});
  }
  table.Render(out, /*color=*/false);
  return kExitOk;
}

namespace {

// The policies of --policy, or none.
absl::StatusOr<std::vector<policy::Policy>> LoadPolicyFile(const std::string& path) {
  if (path.empty()) return std::vector<policy::Policy>{};
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  return policy::ParsePoliciesOrError(*text, path);
}

std::string Location(const Finding& f) { return absl::StrCat(f.file, ":", f.line); }

Color SeverityColor(Severity s) { return s == Severity::kHigh ? Color::kRed : Color::kYellow; }

nlohmann::json FindingJson(const Finding& f, const DeclaredContainer& c) {
  return {{"file", f.file},
          {"line", f.line},
          {"kind", c.kind},
          {"name", c.name},
          {"namespace", c.namespace_name},
          {"container", f.container},
          {"container_list", c.container_list},
          {"check", f.check},
          {"rule", f.rule},
          {"severity", SeverityName(f.severity)},
          {"message", f.message},
          {"controls", f.controls}};
}

}  // namespace

int RunAuditManifests(const ManifestAuditOptions& options, std::ostream& out, std::ostream& err) {
  absl::StatusOr<std::vector<policy::Policy>> policies = LoadPolicyFile(options.policy_file);
  if (!policies.ok()) {
    err << "vigilctl: " << policies.status().message() << "\n";
    return kExitUsage;
  }
  absl::StatusOr<ManifestSet> manifests = LoadManifests(options.paths);
  if (!manifests.ok()) {
    err << "vigilctl: " << manifests.status().message() << "\n";
    return kExitUsage;
  }
  const PolicyExpectations expectations = ExpectationsOf(*policies);

  std::vector<std::pair<const DeclaredContainer*, Finding>> findings;
  std::vector<JunitCase> cases;
  int counts[3] = {0, 0, 0};
  for (const DeclaredContainer& c : manifests->containers) {
    std::vector<Finding> own = AuditContainer(c, expectations);
    for (const std::string& check : ManifestChecks()) {
      JunitCase tc;
      tc.classname = absl::StrCat(c.file, ":", c.ObjectName());
      tc.name = absl::StrCat(c.container, ": ", check);
      for (const Finding& f : own) {
        if (f.check == check)
          tc.failures.emplace_back(f.rule, absl::StrCat(Location(f), ": ", f.message));
      }
      cases.push_back(std::move(tc));
    }
    for (Finding& f : own) {
      ++counts[static_cast<int>(f.severity)];
      findings.emplace_back(&c, std::move(f));
    }
  }

  if (!options.junit_path.empty()) {
    if (absl::Status st = WriteJunit(options.junit_path, "vigilctl audit manifests", cases);
        !st.ok()) {
      err << "vigilctl: --junit: " << st.message() << "\n";
      return kExitUsage;
    }
  }

  std::map<std::string, int> skipped_kinds;
  for (const SkippedObject& s : manifests->skipped) {
    ++skipped_kinds[s.kind.empty() ? "(no kind)" : s.kind];
  }
  if (options.json) {
    nlohmann::json doc;
    doc["files"] = manifests->files;
    doc["findings"] = nlohmann::json::array();
    for (const auto& [c, f] : findings) doc["findings"].push_back(FindingJson(f, *c));
    doc["skipped"] = nlohmann::json::array();
    for (const SkippedObject& s : manifests->skipped) {
      doc["skipped"].push_back({{"file", s.file}, {"line", s.line}, {"kind", s.kind}});
    }
    doc["summary"] = {{"files", manifests->files.size()},
                      {"objects", manifests->objects},
                      {"containers", manifests->containers.size()},
                      {"skipped", manifests->skipped.size()},
                      {"findings", findings.size()},
                      {"high", counts[static_cast<int>(Severity::kHigh)]},
                      {"medium", counts[static_cast<int>(Severity::kMedium)]},
                      {"low", counts[static_cast<int>(Severity::kLow)]}};
    out << doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    const bool color = &out == &std::cout && ShouldColor(1);
    if (!findings.empty()) {
      Table table({"LOCATION", "OBJECT", "CONTAINER", "RULE", "SEVERITY", "MESSAGE", "CONTROLS"});
      for (const auto& [c, f] : findings) {
        // Names and values come from the manifests: no control bytes reach the terminal.
        table.AddRow({EscapeUntrusted(Location(f)), EscapeUntrusted(f.object),
                      EscapeUntrusted(f.container), f.rule,
                      Cell(SeverityName(f.severity), SeverityColor(f.severity)),
                      EscapeUntrusted(f.message), absl::StrJoin(f.controls, " ")});
      }
      table.Render(out, color);
    }
    out << manifests->files.size() << " file(s), " << manifests->objects << " object(s), "
        << manifests->containers.size() << " container(s): " << findings.size() << " finding(s) ("
        << counts[static_cast<int>(Severity::kHigh)] << " high, "
        << counts[static_cast<int>(Severity::kMedium)] << " medium, "
        << counts[static_cast<int>(Severity::kLow)] << " low); " << manifests->skipped.size()
        << " object(s) skipped";
    if (!skipped_kinds.empty()) {
      std::vector<std::string> parts;
      for (const auto& [kind, n] : skipped_kinds) parts.push_back(absl::StrCat(kind, " x", n));
      out << " (kinds without a pod template: " << absl::StrJoin(parts, ", ") << ")";
    }
    out << "\n";
  }
  return findings.empty() ? kExitOk : kExitFailed;
}

void RegisterAuditCommands(CLI::App& app, int* exit_code) {
  CLI::App* audit = app.add_subcommand(
      "audit",
      "Operators' actions (log), Kubernetes manifest audit (manifests) and its comparison "
      "with the runtime (compare)");
  audit->require_subcommand(1);
  struct Options {
    FleetConnectionOptions connection;
    uint32_t limit = 50;
    bool json = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* log = audit->add_subcommand(
      "log", "Operators' actions, newest first: who approved, revoked, stored policies");
  log->add_option("--limit", options->limit, "at most this many records (pages are followed)")
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();
  log->add_flag("--json", options->json,
                "print one ListAuditResponse as proto3 JSON (see docs/vigilctl.md)");
  AddFleetConnectionFlags(log, &options->connection);
  log->callback([options, exit_code] {
    *exit_code =
        RunAuditLog(options->connection, options->limit, options->json, std::cout, std::cerr);
  });

  auto manifests = std::make_shared<ManifestAuditOptions>();
  CLI::App* m = audit->add_subcommand(
      "manifests",
      "Static audit of Kubernetes manifests (Pod, Deployment, StatefulSet, DaemonSet, "
      "ReplicaSet, Job, CronJob, List): seccomp profile, capabilities, privilege escalation, "
      "read-only root, privileged, host namespaces, procMount. Exit 0 no finding, 1 findings, "
      "2 usage or YAML errors");
  m->add_option("paths", manifests->paths,
                "manifest files, or directories walked for *.yaml and *.yml (sorted)")
      ->required();
  m->add_option("--policy", manifests->policy_file,
                "RuntimePolicy file: its seccomp deny lists judge RuntimeDefault, its "
                "capabilities rules make added capabilities high severity, its controls are "
                "reported");
  m->add_flag("--json", manifests->json, "print the findings and summary as one JSON document");
  m->add_option("--junit", manifests->junit_path,
                "also write JUnit XML: one testcase per container per check");
  m->callback(
      [manifests, exit_code] { *exit_code = RunAuditManifests(*manifests, std::cout, std::cerr); });

  auto compare = std::make_shared<CompareOptions>();
  CLI::App* c = audit->add_subcommand(
      "compare",
      "Compare the manifests' declared security settings with the processes the nodes' latest "
      "evidence shows (capabilities, seccomp, read-only root, no_new_privs, privileged, host "
      "namespaces). Exit 0 all agree, 1 a disagreement or nothing paired, 2 usage errors");
  c->add_option("--manifests", compare->manifests,
                "manifest files or directories (as `audit manifests`); repeatable")
      ->required();
  c->add_option("--pair", compare->pairs,
                "[NAMESPACE/]NAME/CONTAINER=SELECTOR: pair a declared container with the "
                "processes a node selector (exe=, cgroup=, container=, comm=, pid=) matches; "
                "repeatable. Without one, exported Pods pair by status container id or by "
                "metadata.uid in the kubepods cgroup path");
  c->add_option("--node", compare->node_id, "only this node's evidence (default: every node)");
  c->add_flag("--json", compare->json, "print the comparisons and summary as one JSON document");
  c->add_option("--junit", compare->junit_path,
                "also write JUnit XML: one testcase per paired container per check");
  c->add_option("--oscal", compare->oscal_path,
                "also write the comparisons as OSCAL 1.1 assessment-results (JSON)");
  AddFleetConnectionFlags(c, &compare->connection);
  c->callback(
      [compare, exit_code] { *exit_code = RunAuditCompare(*compare, std::cout, std::cerr); });
}

}  // namespace vigil::cli
