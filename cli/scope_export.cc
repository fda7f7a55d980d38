// `vigilctl scope export --format oscal|cyclonedx` (docs/scope.md, "Exports").

#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/fleet_format.h"
#include "cli/scope_command.h"
#include "common/policy/engine.h"
#include "common/policy/scope.h"
#include "verifier/results/oscal_export.h"

namespace vigil::cli {
namespace {

using verifier::AddProp;
using verifier::NameUuid;
using verifier::Rfc3339;

constexpr char kNistCatalog[] =
    "https://raw.githubusercontent.com/usnistgov/oscal-content/main/nist.gov/SP800-53/rev5/json/"
    "NIST_SP-800-53_rev5_catalog.json";

std::string Time(int64_t unix_nano) { return Rfc3339(absl::FromUnixNanos(unix_nano)); }

bool IsSha256(const std::string& hex) {
  return hex.size() == 64 && hex.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
}

// Every byte but the purl spec's unreserved characters, as %XX.
std::string PercentEncode(absl::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '.' || c == '-' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "%%%02X", c);
    }
  }
  return out;
}

// An item of a scope with a file behind it.
struct FileItem {
  const char* role;  // "executable", "interpreter", "library"
  const std::string* path;
  const std::string* sha256;
  const v1::PackageRef* package;
  bool has_package;
  int64_t first_seen;
  int64_t last_seen;
};

std::vector<FileItem> FileItems(const v1::WorkloadScope& s) {
  std::vector<FileItem> items;
  static const std::string kNone;
  for (const v1::ScopeExecutable& x : s.executables()) {
    items.push_back({"executable", &x.path(), &x.sha256(), &x.package(), x.has_package(),
                     x.first_seen_unix_nano(), x.last_seen_unix_nano()});
  }
  for (const v1::ScopeInterpreter& i : s.interpreters()) {
    // The interpreter's digest is its executable's, when the workload ran it.
    const std::string* sha256 = &kNone;
    for (const v1::ScopeExecutable& x : s.executables()) {
      if (x.path() == i.executable()) sha256 = &x.sha256();
    }
    items.push_back({"interpreter", &i.executable(), sha256, &i.package(), i.has_package(),
                     i.first_seen_unix_nano(), i.last_seen_unix_nano()});
  }
  for (const v1::ScopeLibrary& l : s.libraries()) {
    items.push_back({"library", &l.path(), &l.sha256(), &l.package(), l.has_package(),
                     l.first_seen_unix_nano(), l.last_seen_unix_nano()});
  }
  return items;
}

bool Packaged(const FileItem& f) { return f.has_package && !f.package->name().empty(); }

nlohmann::json ControlImplementation(const ScopeEvidence& e) {
  // The worst status of the scope rule's outcomes for each NIST control they name.
  std::map<std::string, v1::TrustStatus> worst;
  for (const v1::RuleOutcome& r : e.scope_outcomes) {
    for (const std::string& c : r.controls()) {
      absl::StatusOr<verifier::ControlRef> ref = verifier::ParseControl(c);
      if (!ref.ok() || ref->oscal_control_id.empty()) continue;
      auto [it, inserted] = worst.emplace(ref->oscal_control_id, r.status());
      if (!inserted) it->second = policy::WorseStatus(it->second, r.status());
    }
  }
  nlohmann::json requirements = nlohmann::json::array();
  for (const auto& [control, status] : worst) {
    requirements.push_back(
        {{"uuid", NameUuid(absl::StrCat("scope-requirement|", e.workload_id, "|", control))},
         {"control-id", control},
         {"description",
          absl::StrCat("The workload's observed scope appraised against its declared scope "
                       "(policy ",
                       e.policy_id, "): ", StatusName(status), ".")}});
  }
  return {
      {"uuid", NameUuid(absl::StrCat("scope-controls|", e.workload_id, "|", e.evidence_sha256))},
      {"source", kNistCatalog},
      {"description", "Controls the scope rule evidences for this workload."},
      {"implemented-requirements", requirements}};
}

}  // namespace

std::string DebianPurl(const v1::PackageRef& package) {
  std::string purl = absl::StrCat("pkg:deb/debian/", PercentEncode(package.name()));
  if (!package.version().empty()) absl::StrAppend(&purl, "@", PercentEncode(package.version()));
  if (!package.architecture().empty()) {
    absl::StrAppend(&purl, "?arch=", PercentEncode(package.architecture()));
  }
  return purl;
}

nlohmann::json ScopeOscal(const ScopeEvidence& e, absl::Time generated_at) {
  const v1::WorkloadScope& s = e.scope;
  const std::string key = absl::StrCat(e.node_id, "|", e.workload_id, "|", e.evidence_sha256);
  auto common_props = [&](nlohmann::json& props, int64_t first, int64_t last) {
    AddProp(props, "evidence-sha256", e.evidence_sha256);
    if (first != 0) AddProp(props, "observed-from", Time(first));
    if (last != 0) AddProp(props, "observed-to", Time(last));
  };

  nlohmann::json props = nlohmann::json::array();
  AddProp(props, "node-id", e.node_id);
  AddProp(props, "hostname", e.hostname);
  AddProp(props, "workload", e.workload_name);
  AddProp(props, "workload-id", e.workload_id);
  AddProp(props, "policy", e.policy_id);
  AddProp(props, "root-executable", s.root_exe_path());
  AddProp(props, "verdict", StatusName(e.verdict_status));
  common_props(props, s.first_seen_unix_nano(), s.last_seen_unix_nano());
  for (const v1::ScopeStorage& st : s.storage()) {
    AddProp(props, "storage-directory", st.directory());
    for (const v1::SqliteDatabase& db : st.sqlite_databases()) {
      AddProp(props, "sqlite-database", absl::StrCat(st.directory(), "/", db.name()));
    }
  }
  for (const v1::ScopeEndpoint& ep : s.endpoints()) {
    AddProp(props, "endpoint",
            absl::StrCat(ep.direction(), " ", ep.protocol(), " ", ep.address(),
                         ep.port() != 0 ? absl::StrCat(" port ", ep.port()) : ""));
  }
  for (const v1::ScopeFileRead& f : s.files_read()) {
    AddProp(props, f.classification() == "secret" ? "secret-read" : "config-read", f.path());
  }
  for (const auto& [category, count] : s.truncated()) {
    if (count > 0) AddProp(props, "truncated", absl::StrCat(category, ": ", count));
  }
  const std::string title = e.declared && !e.declared->component_title.empty()
                                ? e.declared->component_title
                                : absl::StrCat("Agent workload ", e.workload_name);
  nlohmann::json workload = {{"uuid", NameUuid(absl::StrCat("scope-component|", key))},
                             {"type", "software"},
                             {"title", title},
                             {"description", BoundaryStatement(e)},
                             {"props", props}};
  if (!e.scope_outcomes.empty()) {
    nlohmann::json ci = ControlImplementation(e);
    if (!ci["implemented-requirements"].empty()) workload["control-implementations"] = {ci};
  }
  nlohmann::json components = nlohmann::json::array({workload});
  std::set<std::string> seen;
  for (const FileItem& f : FileItems(s)) {
    if (!seen.insert(absl::StrCat(f.role, "|", *f.path)).second) continue;
    nlohmann::json item_props = nlohmann::json::array();
    AddProp(item_props, "path", *f.path);
    if (IsSha256(*f.sha256)) AddProp(item_props, "sha256", absl::AsciiStrToLower(*f.sha256));
    if (Packaged(f)) {
      AddProp(item_props, "package-name", f.package->name());
      AddProp(item_props, "package-version", f.package->version());
      AddProp(item_props, "package-architecture", f.package->architecture());
      AddProp(item_props, "purl", DebianPurl(*f.package));
    } else {
      AddProp(item_props, "package", "unpackaged");
    }
    AddProp(item_props, "workload-id", e.workload_id);
    common_props(item_props, f.first_seen, f.last_seen);
    components.push_back(
        {{"uuid", NameUuid(absl::StrCat("scope-item|", key, "|", f.role, "|", *f.path))},
         {"type", "software"},
         {"title",
          Packaged(f) ? absl::StrCat(f.package->name(), " ", f.package->version()) : *f.path},
         {"description",
          absl::StrCat("The ", f.role, " ", *f.path, " (",
                       policy::PackageText(*f.package, f.has_package),
                       ") in the observed scope of workload ", e.workload_name, ".")},
         {"props", item_props}});
  }
  return {{"component-definition",
           {{"uuid", NameUuid(absl::StrCat("scope-component-definition|", key))},
            {"metadata",
             {{"title", absl::StrCat("Observed scope of workload ", e.workload_name, " on node ",
                                     e.hostname.empty() ? e.node_id : e.hostname)},
              {"last-modified", Rfc3339(generated_at)},
              {"version", e.evidence_sha256.substr(0, 12)},
              {"oscal-version", "1.1.2"}}},
            {"components", components}}}};
}

nlohmann::json ScopeCycloneDx(const ScopeEvidence& e, absl::Time generated_at) {
  const v1::WorkloadScope& s = e.scope;
  const std::string workload_ref = absl::StrCat("workload:", e.workload_id);
  auto file_component = [](const FileItem& f) {
    nlohmann::json c = {
        {"type", "file"}, {"bom-ref", absl::StrCat("file:", *f.path)}, {"name", *f.path}};
    if (IsSha256(*f.sha256)) {
      c["hashes"] = {{{"alg", "SHA-256"}, {"content", absl::AsciiStrToLower(*f.sha256)}}};
    }
    c["properties"] = {{{"name", "vigil:role"}, {"value", f.role}}};
    return c;
  };
  // Packages by purl, each with the files of it the workload used.
  std::map<std::string, nlohmann::json> packages;
  std::map<std::string, nlohmann::json> unpackaged;
  std::set<std::string> files_seen;
  for (const FileItem& f : FileItems(s)) {
    if (!files_seen.insert(*f.path).second) continue;
    if (!Packaged(f)) {
      unpackaged.emplace(*f.path, file_component(f));
      continue;
    }
    const std::string purl = DebianPurl(*f.package);
    auto [it, inserted] = packages.emplace(purl, nlohmann::json());
    if (inserted) {
      it->second = {{"type", std::string(f.role) == "library" ? "library" : "application"},
                    {"bom-ref", purl},
                    {"name", f.package->name()},
                    {"purl", purl},
                    {"components", nlohmann::json::array()}};
      if (!f.package->version().empty()) it->second["version"] = f.package->version();
    }
    it->second["components"].push_back(file_component(f));
  }
  nlohmann::json components = nlohmann::json::array();
  nlohmann::json depends = nlohmann::json::array();
  for (auto& [ref, c] : packages) {
    depends.push_back(ref);
    components.push_back(std::move(c));
  }
  for (auto& [path, c] : unpackaged) {
    depends.push_back(c["bom-ref"]);
    components.push_back(std::move(c));
  }
  nlohmann::json properties = nlohmann::json::array();
  auto property = [&](const char* name, const std::string& value) {
    if (!value.empty()) properties.push_back({{"name", name}, {"value", value}});
  };
  property("vigil:node-id", e.node_id);
  property("vigil:hostname", e.hostname);
  property("vigil:workload", e.workload_name);
  property("vigil:workload-id", e.workload_id);
  property("vigil:policy", e.policy_id);
  property("vigil:evidence-sha256", e.evidence_sha256);
  property("vigil:verdict", StatusName(e.verdict_status));
  if (s.first_seen_unix_nano() != 0)
    property("vigil:observed-from", Time(s.first_seen_unix_nano()));
  if (s.last_seen_unix_nano() != 0) property("vigil:observed-to", Time(s.last_seen_unix_nano()));
  for (const auto& [category, count] : s.truncated()) {
    if (count > 0) property("vigil:truncated", absl::StrCat(category, ": ", count));
  }
  const std::string serial =
      NameUuid(absl::StrCat("cyclonedx|", e.node_id, "|", e.workload_id, "|", e.evidence_sha256));
  return {{"bomFormat", "CycloneDX"},
          {"specVersion", "1.5"},
          {"serialNumber", absl::StrCat("urn:uuid:", serial)},
          {"version", 1},
          {"metadata",
           {{"timestamp", Rfc3339(generated_at)},
            {"tools", {{"components", {{{"type", "application"}, {"name", "vigilctl"}}}}}},
            {"component",
             {{"type", "application"},
              {"bom-ref", workload_ref},
              {"name", e.workload_name},
              {"description", BoundaryStatement(e)}}},
            {"properties", properties}}},
          {"components", components},
          {"dependencies", {{{"ref", workload_ref}, {"dependsOn", depends}}}}};
}

}  // namespace vigil::cli
