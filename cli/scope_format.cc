// `vigilctl scope show` and `scope export --format yaml`: the readable forms of a scope.

#include <yaml-cpp/yaml.h>

#include <map>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "cli/fleet_format.h"
#include "cli/scope_command.h"
#include "common/policy/scope.h"

namespace vigil::cli {
namespace {

// Node-reported text, escaped so that a hostile path cannot move the terminal's cursor.
std::string Esc(absl::string_view s) { return absl::CHexEscape(s); }

std::string Time(int64_t unix_nano) {
  if (unix_nano == 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixNanos(unix_nano),
                          absl::UTCTimeZone());
}

std::string Range(int64_t first, int64_t last) {
  return absl::StrCat(Time(first), " .. ", Time(last));
}

std::string Package(const v1::PackageRef& p, bool has) {
  std::string text = policy::PackageText(p, has);
  if (has && !p.architecture().empty()) absl::StrAppend(&text, " (", Esc(p.architecture()), ")");
  return text;
}

uint64_t TruncatedTotal(const v1::WorkloadScope& s) {
  uint64_t total = 0;
  for (const auto& [category, count] : s.truncated()) total += count;
  return total;
}

}  // namespace

std::string BoundaryStatement(const ScopeEvidence& e) {
  const v1::WorkloadScope& s = e.scope;
  int unpackaged = 0;
  for (const v1::ScopeExecutable& x : s.executables()) unpackaged += x.has_package() ? 0 : 1;
  std::vector<std::string> kinds;
  for (const v1::ScopeInterpreter& i : s.interpreters()) kinds.push_back(Esc(i.kind()));
  int secrets = 0;
  for (const v1::ScopeFileRead& f : s.files_read()) secrets += f.classification() == "secret";
  std::string text = absl::StrCat(
      "From ", Time(s.first_seen_unix_nano()), " to ", Time(s.last_seen_unix_nano()), ", node ",
      e.hostname.empty() ? e.node_id : absl::StrCat(Esc(e.hostname), " (", e.node_id, ")"),
      " observed workload '", Esc(e.workload_name), "' (root ", Esc(s.root_exe_path()),
      ") from outside it: ", s.processes_size(), " process(es), ", s.executables_size(),
      " executable(s) (", unpackaged, " unpackaged), ",
      kinds.empty() ? std::string("no interpreter")
                    : absl::StrCat("interpreter(s) ", absl::StrJoin(kinds, ", ")),
      ", ", s.libraries_size(), " shared librar", s.libraries_size() == 1 ? "y" : "ies", ", ",
      s.storage_size(), " director", s.storage_size() == 1 ? "y" : "ies", " written, ",
      s.endpoints_size(), " endpoint(s), ", s.files_read_size() - secrets,
      " configuration file(s) and ", secrets, " secret(s) read. ");
  std::vector<std::string> limits;
  if (TruncatedTotal(s) > 0) {
    std::vector<std::string> parts;
    for (const auto& [category, count] : s.truncated()) {
      if (count > 0) parts.push_back(absl::StrCat(count, " ", Esc(category)));
    }
    limits.push_back(
        absl::StrCat("the node reached its bound and left out ", absl::StrJoin(parts, ", ")));
  }
  if (!e.probes_present) {
    limits.push_back(
        "the node ran without probes, so file and network activity between its snapshots was "
        "not observed");
  }
  for (const std::string& gap : s.gaps()) {
    limits.push_back(absl::StrCat("the node could not observe: ", Esc(gap)));
  }
  if (!EvidenceVerified(e)) {
    limits.push_back(absl::StrCat("the evidence is not verified (verdict ",
                                  StatusName(e.verdict_status),
                                  "): this is the node's claim, not attested evidence"));
  }
  if (limits.empty()) {
    absl::StrAppend(&text,
                    "This is the whole boundary the workload exercised in that time, as "
                    "evidenced by report sha256:",
                    e.evidence_sha256, ", quoted by the node's TPM and verified (verdict ",
                    StatusName(e.verdict_status), ").");
  } else {
    absl::StrAppend(&text, "The boundary cannot be stated in full: ", absl::StrJoin(limits, "; "),
                    ". Evidence: report sha256:", e.evidence_sha256, ".");
  }
  return text;
}

void PrintScopeTree(const ScopeEvidence& e, std::ostream& out) {
  const v1::WorkloadScope& s = e.scope;
  out << "workload " << Esc(e.workload_name) << " (" << e.workload_id << ") on node "
      << (e.hostname.empty() ? e.node_id : absl::StrCat(Esc(e.hostname), " ", e.node_id)) << "\n";
  out << "  policy " << e.policy_id << "; root " << Esc(s.root_exe_path())
      << (s.root_pid() > 0 ? absl::StrCat(" pid ", s.root_pid()) : " (not running)") << "\n";
  out << "  observed " << Range(s.first_seen_unix_nano(), s.last_seen_unix_nano()) << "\n";
  out << "  evidence sha256:" << e.evidence_sha256 << " (verdict " << StatusName(e.verdict_status)
      << ", collected " << Time(e.collected_unix_nano) << ")\n";

  out << "processes (" << s.processes_size() << ")\n";
  for (const v1::ScopeProcess& p : s.processes()) {
    std::vector<std::string> lineage;
    for (const std::string& l : p.exec_lineage()) lineage.push_back(Esc(l));
    std::vector<std::string> argv;
    for (const std::string& a : p.cmdline()) argv.push_back(Esc(a));
    out << "  pid " << p.pid() << " ppid " << p.ppid() << " " << Esc(p.exe_path())
        << (p.exited_unix_nano() != 0 ? " (exited)" : "") << "\n";
    if (!lineage.empty()) out << "    lineage " << absl::StrJoin(lineage, " -> ") << "\n";
    if (!argv.empty()) out << "    argv " << absl::StrJoin(argv, " ") << "\n";
  }
  out << "executables (" << s.executables_size() << ")\n";
  for (const v1::ScopeExecutable& x : s.executables()) {
    out << "  " << Esc(x.path()) << "  " << Package(x.package(), x.has_package()) << "  x"
        << x.exec_count() << "  sha256:" << (x.sha256().empty() ? "unknown" : Esc(x.sha256()))
        << "\n";
  }
  out << "interpreters (" << s.interpreters_size() << ")\n";
  for (const v1::ScopeInterpreter& i : s.interpreters()) {
    out << "  " << Esc(i.kind()) << "  " << Esc(i.executable()) << "  "
        << Package(i.package(), i.has_package()) << "  (" << Esc(i.recognised_by()) << ")\n";
    for (const std::string& sc : i.scripts()) out << "    script " << Esc(sc) << "\n";
  }
  out << "libraries (" << s.libraries_size() << ")\n";
  for (const v1::ScopeLibrary& l : s.libraries()) {
    out << "  " << Esc(l.path()) << "  " << Package(l.package(), l.has_package()) << "\n";
  }
  out << "storage (" << s.storage_size() << " directories)\n";
  for (const v1::ScopeStorage& st : s.storage()) {
    out << "  " << Esc(st.directory()) << "/  " << st.write_count() << " write(s)\n";
    for (const std::string& f : st.files()) out << "    " << Esc(f) << "\n";
    for (const v1::SqliteDatabase& db : st.sqlite_databases()) {
      std::vector<std::string> comp;
      for (const std::string& c : db.companions()) comp.push_back(Esc(c));
      out << "    sqlite " << Esc(db.name())
          << (comp.empty() ? "" : absl::StrCat(" with ", absl::StrJoin(comp, ", "))) << "\n";
    }
  }
  out << "endpoints (" << s.endpoints_size() << ")\n";
  for (const v1::ScopeEndpoint& ep : s.endpoints()) {
    out << "  " << Esc(ep.direction()) << " " << Esc(ep.protocol()) << " " << Esc(ep.address())
        << (ep.port() != 0 ? absl::StrCat(" port ", ep.port()) : "") << "  x" << ep.count() << "\n";
  }
  out << "config and secrets read (" << s.files_read_size() << ")\n";
  for (const v1::ScopeFileRead& f : s.files_read()) {
    out << "  " << Esc(f.classification()) << " " << Esc(f.path())
        << absl::StrFormat("  mode %04o  ", f.mode()) << Esc(f.reason()) << "  x" << f.count()
        << "\n";
  }
  if (TruncatedTotal(s) > 0) {
    out << "truncated\n";
    for (const auto& [category, count] : s.truncated()) {
      if (count > 0) out << "  " << Esc(category) << ": " << count << " left out\n";
    }
  } else {
    out << "truncated: nothing\n";
  }
  if (s.gaps_size() > 0) {
    out << "gaps\n";
    for (const std::string& g : s.gaps()) out << "  " << Esc(g) << "\n";
  }
  if (!e.scope_outcomes.empty()) {
    out << "against the declared scope\n";
    for (const v1::RuleOutcome& r : e.scope_outcomes) {
      out << "  " << StatusName(r.status()) << "  " << r.reason() << "\n";
    }
  }
  out << "boundary: " << BoundaryStatement(e) << "\n";
}

std::string ScopeYaml(const ScopeEvidence& e) {
  const v1::WorkloadScope& s = e.scope;
  YAML::Emitter y;
  y << YAML::EscapeNonAscii;  // node-reported paths may hold any byte
  y << YAML::BeginMap;
  y << YAML::Key << "component" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "title" << YAML::Value
    << (e.declared && !e.declared->component_title.empty() ? e.declared->component_title
                                                           : e.workload_name);
  y << YAML::Key << "description" << YAML::Value
    << (e.declared && !e.declared->component_description.empty()
            ? e.declared->component_description
            : absl::StrCat("Agent workload '", e.workload_name, "' (", s.root_exe_path(), ")"));
  y << YAML::Key << "type" << YAML::Value << "software";
  y << YAML::EndMap;
  y << YAML::Key << "boundary" << YAML::Value << BoundaryStatement(e);
  y << YAML::Key << "evidence" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "node_id" << YAML::Value << e.node_id;
  if (!e.hostname.empty()) y << YAML::Key << "hostname" << YAML::Value << e.hostname;
  y << YAML::Key << "workload" << YAML::Value << e.workload_name;
  y << YAML::Key << "workload_id" << YAML::Value << e.workload_id;
  y << YAML::Key << "policy" << YAML::Value << e.policy_id;
  y << YAML::Key << "report_sha256" << YAML::Value << e.evidence_sha256;
  y << YAML::Key << "verdict" << YAML::Value << StatusName(e.verdict_status);
  y << YAML::Key << "observed_from" << YAML::Value << Time(s.first_seen_unix_nano());
  y << YAML::Key << "observed_to" << YAML::Value << Time(s.last_seen_unix_nano());
  y << YAML::Key << "complete" << YAML::Value
    << (TruncatedTotal(s) == 0 && e.probes_present && s.gaps_size() == 0 && EvidenceVerified(e));
  y << YAML::EndMap;

  y << YAML::Key << "executables" << YAML::Value << YAML::BeginSeq;
  for (const v1::ScopeExecutable& x : s.executables()) {
    y << YAML::BeginMap << YAML::Key << "path" << YAML::Value << x.path();
    y << YAML::Key << "package" << YAML::Value << policy::PackageText(x.package(), x.has_package());
    if (!x.sha256().empty()) y << YAML::Key << "sha256" << YAML::Value << x.sha256();
    y << YAML::EndMap;
  }
  y << YAML::EndSeq;
  y << YAML::Key << "interpreters" << YAML::Value << YAML::BeginSeq;
  for (const v1::ScopeInterpreter& i : s.interpreters()) {
    y << YAML::BeginMap << YAML::Key << "kind" << YAML::Value << i.kind();
    y << YAML::Key << "executable" << YAML::Value << i.executable();
    y << YAML::Key << "package" << YAML::Value << policy::PackageText(i.package(), i.has_package());
    if (i.scripts_size() > 0) {
      y << YAML::Key << "scripts" << YAML::Value << YAML::Flow << YAML::BeginSeq;
      for (const std::string& sc : i.scripts()) y << sc;
      y << YAML::EndSeq;
    }
    y << YAML::EndMap;
  }
  y << YAML::EndSeq;
  y << YAML::Key << "libraries" << YAML::Value << YAML::BeginSeq;
  for (const v1::ScopeLibrary& l : s.libraries()) {
    y << YAML::BeginMap << YAML::Key << "path" << YAML::Value << l.path();
    y << YAML::Key << "package" << YAML::Value << policy::PackageText(l.package(), l.has_package());
    y << YAML::EndMap;
  }
  y << YAML::EndSeq;
  y << YAML::Key << "storage" << YAML::Value << YAML::BeginSeq;
  for (const v1::ScopeStorage& st : s.storage()) {
    y << YAML::BeginMap << YAML::Key << "directory" << YAML::Value << st.directory();
    if (st.sqlite_databases_size() > 0) {
      y << YAML::Key << "sqlite" << YAML::Value << YAML::Flow << YAML::BeginSeq;
      for (const v1::SqliteDatabase& db : st.sqlite_databases()) y << db.name();
      y << YAML::EndSeq;
    }
    y << YAML::EndMap;
  }
  y << YAML::EndSeq;
  y << YAML::Key << "endpoints" << YAML::Value << YAML::BeginSeq;
  for (const v1::ScopeEndpoint& ep : s.endpoints()) {
    y << YAML::Flow << YAML::BeginMap << YAML::Key << "direction" << YAML::Value << ep.direction()
      << YAML::Key << "protocol" << YAML::Value << ep.protocol() << YAML::Key << "address"
      << YAML::Value << ep.address() << YAML::Key << "port" << YAML::Value << ep.port()
      << YAML::EndMap;
  }
  y << YAML::EndSeq;
  for (const char* classification : {"config", "secret"}) {
    y << YAML::Key << (std::string(classification) == "config" ? "config_read" : "secrets_read")
      << YAML::Value << YAML::BeginSeq;
    for (const v1::ScopeFileRead& f : s.files_read()) {
      if (f.classification() == classification) y << f.path();
    }
    y << YAML::EndSeq;
  }
  y << YAML::EndMap;
  return std::string(y.c_str()) + "\n";
}

}  // namespace vigil::cli
