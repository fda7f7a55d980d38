// The scope rule (docs/scope.md, "Findings"): a workload's observed scope against its
// declared scope.

#include <fnmatch.h>

#include <algorithm>
#include <functional>
#include <set>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/policy/engine.h"
#include "common/policy/scope.h"

namespace vigil::policy {
namespace {

// Node-reported text (paths, addresses, names) as it may appear in an outcome.
std::string Quoted(absl::string_view s) { return absl::StrCat("'", absl::CHexEscape(s), "'"); }

bool Glob(const std::string& pattern, const std::string& text) {
  return fnmatch(pattern.c_str(), text.c_str(), 0) == 0;
}

// The first of `patterns` that matches `text` (index), or -1.
int FirstMatch(const std::vector<std::string>& patterns, const std::string& text) {
  for (size_t i = 0; i < patterns.size(); ++i) {
    if (Glob(patterns[i], text)) return static_cast<int>(i);
  }
  return -1;
}

std::string QuotedList(const std::vector<std::string>& items) {
  if (items.empty()) return "nothing";
  std::vector<std::string> q;
  for (const std::string& i : items) q.push_back(Quoted(i));
  return absl::StrJoin(q, ", ");
}

std::string PortsText(const std::vector<std::pair<uint32_t, uint32_t>>& ports) {
  if (ports.empty()) return "any port";
  std::vector<std::string> out;
  for (const auto& [lo, hi] : ports)
    out.push_back(lo == hi ? absl::StrCat(lo) : absl::StrCat(lo, "-", hi));
  return absl::StrCat("port ", absl::StrJoin(out, ","));
}

std::string EndpointText(const DeclaredEndpoint& e) {
  return absl::StrCat(e.direction, " ", e.protocol.empty() ? "any" : e.protocol, " ", e.address,
                      " ", PortsText(e.ports));
}

bool EndpointMatches(const DeclaredEndpoint& d, const v1::ScopeEndpoint& o) {
  if (d.direction != o.direction()) return false;
  // "tcp" covers "tcp6": the family is the address's business.
  if (!d.protocol.empty() && d.protocol != o.protocol() && d.protocol + "6" != o.protocol()) {
    return false;
  }
  if (d.cidr) {
    std::optional<IpAddress> ip = ParseIpAddress(o.address());
    if (!ip || !d.cidr->Contains(*ip)) return false;
  } else if (!Glob(d.address, o.address())) {
    return false;
  }
  if (d.ports.empty()) return true;
  return std::any_of(d.ports.begin(), d.ports.end(),
                     [&](const auto& r) { return o.port() >= r.first && o.port() <= r.second; });
}

bool InLibraryRoot(const std::vector<std::string>& roots, const std::string& path, int* which) {
  for (size_t i = 0; i < roots.size(); ++i) {
    const std::string prefix = roots[i] == "/" ? "/" : roots[i] + "/";
    if (absl::StartsWith(path, prefix)) {
      *which = static_cast<int>(i);
      return true;
    }
  }
  return false;
}

class ScopeOutcomes {
 public:
  ScopeOutcomes(const Rule& rule, size_t max_findings, std::vector<v1::RuleOutcome>* out)
      : rule_(rule), max_(max_findings), out_(out) {}

  void Add(v1::TrustStatus status, std::string reason, std::string observed, std::string expected) {
    v1::RuleOutcome& o = out_->emplace_back();
    o.set_rule_id(rule_.id);
    o.set_kind(RuleKindName(rule_.kind));
    o.set_status(status);
    o.set_reason(std::move(reason));
    o.set_observed(std::move(observed));
    o.set_expected(std::move(expected));
    for (const std::string& c : rule_.controls) o.add_controls(c);
  }

  // An observed item outside the declared scope, at the rule's grade.
  void Finding(std::string reason, std::string observed, std::string expected) {
    ++findings_;
    if (findings_ <= max_) {
      Add(GradeStatus(rule_.grade), std::move(reason), std::move(observed), std::move(expected));
    }
  }

  void Informational(std::string what, std::string expected) {
    Add(v1::TRUST_AFFIRMING, absl::StrCat("informational: declared ", what, " was not observed"),
        "not observed", std::move(expected));
  }

  // The summary of findings past the cap; true when there was any finding at all.
  bool Finish() {
    if (findings_ > max_) {
      Add(GradeStatus(rule_.grade), absl::StrCat(findings_ - max_, " more findings of this rule"),
          absl::StrCat(findings_, " items outside the declared scope in all"), "");
    }
    return findings_ > 0;
  }

 private:
  const Rule& rule_;
  size_t max_;
  std::vector<v1::RuleOutcome>* out_;
  size_t findings_ = 0;
};

// The declared items of one category and which of them were observed.
struct Declared {
  Declared(const char* what, std::vector<std::string> items)
      : what(what), items(std::move(items)), seen(this->items.size(), false) {}
  const char* what;
  std::vector<std::string> items;
  std::vector<bool> seen;

  void Mark(int i) {
    if (i >= 0) seen[i] = true;
  }
  void Report(const std::string& expected, ScopeOutcomes* out) const {
    for (size_t i = 0; i < items.size(); ++i) {
      if (!seen[i]) out->Informational(absl::StrCat(what, " ", Quoted(items[i])), expected);
    }
  }
};

}  // namespace

void EvaluateScopeRule(const Rule& rule, const WorkloadEvidence& evidence, size_t max_findings,
                       std::vector<v1::RuleOutcome>* out) {
  ScopeOutcomes outcomes(rule, max_findings, out);
  const DeclaredScope empty;
  const DeclaredScope& d =
      evidence.workload != nullptr && evidence.workload->scope ? *evidence.workload->scope : empty;
  const std::string component = absl::StrCat("the declared scope of ", Quoted(d.component_title));
  if (evidence.scopes.empty()) {
    outcomes.Add(v1::TRUST_WARNING,
                 evidence.report_has_scopes
                     ? "the report carries no observed scope for this workload: its boundary "
                       "cannot be stated"
                     : "the node reported no workload scope (a node without scope observation): "
                       "the boundary cannot be stated",
                 "no observed scope", component);
    return;
  }

  std::vector<std::string> endpoint_texts;
  for (const DeclaredEndpoint& e : d.endpoints) endpoint_texts.push_back(EndpointText(e));
  Declared executables("executable", d.executables);
  Declared interpreters("interpreter", d.interpreters);
  Declared libraries("library root", d.library_roots);
  Declared storage("storage path", d.storage);
  Declared endpoints("endpoint", endpoint_texts);
  Declared config("config path", d.config);
  Declared secrets("secret path", d.secrets);

  const std::string expect_exe = absl::StrCat("executables: ", QuotedList(d.executables));
  const std::string expect_interp = absl::StrCat(
      "interpreters: ", d.interpreters.empty() ? "none" : absl::StrJoin(d.interpreters, ", "));
  const std::string expect_lib = absl::StrCat("library roots: ", QuotedList(d.library_roots));
  const std::string expect_storage = absl::StrCat("storage: ", QuotedList(d.storage));
  const std::string expect_endpoints = absl::StrCat(
      "endpoints: ", endpoint_texts.empty() ? "none" : absl::StrJoin(endpoint_texts, "; "));
  const std::string expect_config = absl::StrCat("config: ", QuotedList(d.config));
  const std::string expect_secrets = absl::StrCat("secrets: ", QuotedList(d.secrets));

  size_t observed_items = 0;
  for (const v1::WorkloadScope* s : evidence.scopes) {
    for (const auto& [category, count] : s->truncated()) {
      if (count == 0) continue;
      outcomes.Finding(
          absl::StrCat("the node left out ", count, " ", Quoted(category),
                       " item(s) at its bound: the workload's boundary cannot be stated"),
          absl::StrCat(count, " ", Quoted(category), " item(s) not recorded"),
          "a complete observed scope");
    }
    for (const std::string& gap : s->gaps()) {
      outcomes.Add(v1::TRUST_WARNING,
                   absl::StrCat("the node could not observe part of the scope: ", Quoted(gap)),
                   Quoted(gap), "a complete observed scope");
    }
    for (const v1::ScopeExecutable& e : s->executables()) {
      ++observed_items;
      const int m = FirstMatch(d.executables, e.path());
      executables.Mark(m);
      if (m >= 0) continue;
      const std::string what = absl::StrCat(
          Quoted(e.path()), " (", PackageText(e.package(), e.has_package()), ", ", e.exec_count(),
          " exec(s), sha256 ", e.sha256().empty() ? "unknown" : absl::CHexEscape(e.sha256()), ")");
      outcomes.Finding(
          absl::StrCat("the workload runs an executable outside its declared scope: ", what), what,
          expect_exe);
    }
    for (const v1::ScopeInterpreter& i : s->interpreters()) {
      ++observed_items;
      auto it = std::find(d.interpreters.begin(), d.interpreters.end(), i.kind());
      if (it != d.interpreters.end()) {
        interpreters.Mark(static_cast<int>(it - d.interpreters.begin()));
        continue;
      }
      std::vector<std::string> scripts;
      for (const std::string& sc : i.scripts()) scripts.push_back(Quoted(sc));
      const std::string what = absl::StrCat(
          Quoted(i.kind()), " interpreter ", Quoted(i.executable()), " (",
          PackageText(i.package(), i.has_package()), ", recognised by ", Quoted(i.recognised_by()),
          scripts.empty() ? "" : absl::StrCat(", ran ", absl::StrJoin(scripts, ", ")), ")");
      outcomes.Finding(
          absl::StrCat("the workload drives an interpreter outside its declared scope: ", what),
          what, expect_interp);
    }
    for (const v1::ScopeLibrary& l : s->libraries()) {
      ++observed_items;
      int root = -1;
      if (InLibraryRoot(d.library_roots, l.path(), &root)) {
        libraries.Mark(root);
        continue;
      }
      const std::string what =
          absl::StrCat(Quoted(l.path()), " (", PackageText(l.package(), l.has_package()), ")");
      outcomes.Finding(
          absl::StrCat("the workload maps a library from outside its declared roots: ", what), what,
          expect_lib);
    }
    for (const v1::ScopeStorage& st : s->storage()) {
      ++observed_items;
      std::vector<std::string> outside;
      auto check = [&](const std::string& path) {
        const int m = FirstMatch(d.storage, path);
        storage.Mark(m);
        if (m < 0) outside.push_back(path);
      };
      if (st.files().empty()) {
        check(st.directory());
      } else {
        const std::string dir =
            absl::EndsWith(st.directory(), "/") ? st.directory() : st.directory() + "/";
        for (const std::string& f : st.files()) check(dir + f);
      }
      if (outside.empty()) continue;
      std::vector<std::string> shown;
      for (const std::string& p : outside) {
        if (shown.size() == 8) break;
        shown.push_back(Quoted(p));
      }
      std::vector<std::string> dbs;
      for (const v1::SqliteDatabase& db : st.sqlite_databases()) {
        dbs.push_back(absl::StrCat(
            Quoted(db.name()), db.companions().empty()
                                   ? ""
                                   : absl::StrCat(" with ", absl::StrJoin(db.companions(), ", "))));
      }
      const std::string what =
          absl::StrCat("directory ", Quoted(st.directory()), ": ", outside.size(),
                       " path(s) written outside: ", absl::StrJoin(shown, ", "),
                       outside.size() > shown.size() ? ", ..." : "",
                       dbs.empty() ? "" : absl::StrCat("; SQLite ", absl::StrJoin(dbs, "; ")));
      outcomes.Finding(absl::StrCat("the workload writes outside its declared storage: ", what),
                       what, expect_storage);
    }
    for (const v1::ScopeEndpoint& e : s->endpoints()) {
      ++observed_items;
      int m = -1;
      for (size_t i = 0; i < d.endpoints.size() && m < 0; ++i) {
        if (EndpointMatches(d.endpoints[i], e)) m = static_cast<int>(i);
      }
      endpoints.Mark(m);
      if (m >= 0) continue;
      const std::string what =
          absl::StrCat(Quoted(e.direction()), " ", Quoted(e.protocol()), " ", Quoted(e.address()),
                       " port ", e.port(), " (", e.count(), " time(s))");
      outcomes.Finding(
          absl::StrCat("the workload uses an endpoint outside its declared scope: ", what), what,
          expect_endpoints);
    }
    for (const v1::ScopeFileRead& f : s->files_read()) {
      ++observed_items;
      const bool secret = f.classification() == "secret";
      const int m = FirstMatch(secret ? d.secrets : d.config, f.path());
      (secret ? secrets : config).Mark(m);
      if (m >= 0) continue;
      const std::string what = absl::StrCat(secret ? "secret " : "config ", Quoted(f.path()),
                                            " (mode ", absl::StrFormat("%04o", f.mode()), ", ",
                                            Quoted(f.reason()), ", ", f.count(), " read(s))");
      outcomes.Finding(absl::StrCat("the workload reads a ", secret ? "secret" : "config file",
                                    " outside its declared scope: ", what),
                       what, secret ? expect_secrets : expect_config);
    }
  }
  for (const Declared* category :
       {&executables, &interpreters, &libraries, &storage, &endpoints, &config, &secrets}) {
    category->Report(component, &outcomes);
  }
  if (!outcomes.Finish()) {
    outcomes.Add(v1::TRUST_AFFIRMING, "every observed item is within the declared scope",
                 absl::StrCat(observed_items, " observed item(s), all declared"), component);
  }
}

}  // namespace vigil::policy
