#include "common/policy/parser.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <functional>
#include <initializer_list>
#include <optional>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/policy/controls.h"
#include "common/policy/scope.h"

namespace vigil::policy {
namespace {

constexpr const char* kCapabilityNames[] = {"CAP_CHOWN",
                                            "CAP_DAC_OVERRIDE",
                                            "CAP_DAC_READ_SEARCH",
                                            "CAP_FOWNER",
                                            "CAP_FSETID",
                                            "CAP_KILL",
                                            "CAP_SETGID",
                                            "CAP_SETUID",
                                            "CAP_SETPCAP",
                                            "CAP_LINUX_IMMUTABLE",
                                            "CAP_NET_BIND_SERVICE",
                                            "CAP_NET_BROADCAST",
                                            "CAP_NET_ADMIN",
                                            "CAP_NET_RAW",
                                            "CAP_IPC_LOCK",
                                            "CAP_IPC_OWNER",
                                            "CAP_SYS_MODULE",
                                            "CAP_SYS_RAWIO",
                                            "CAP_SYS_CHROOT",
                                            "CAP_SYS_PTRACE",
                                            "CAP_SYS_PACCT",
                                            "CAP_SYS_ADMIN",
                                            "CAP_SYS_BOOT",
                                            "CAP_SYS_NICE",
                                            "CAP_SYS_RESOURCE",
                                            "CAP_SYS_TIME",
                                            "CAP_SYS_TTY_CONFIG",
                                            "CAP_MKNOD",
                                            "CAP_LEASE",
                                            "CAP_AUDIT_WRITE",
                                            "CAP_AUDIT_CONTROL",
                                            "CAP_SETFCAP",
                                            "CAP_MAC_OVERRIDE",
                                            "CAP_MAC_ADMIN",
                                            "CAP_SYSLOG",
                                            "CAP_WAKE_ALARM",
                                            "CAP_BLOCK_SUSPEND",
                                            "CAP_AUDIT_READ",
                                            "CAP_PERFMON",
                                            "CAP_BPF",
                                            "CAP_CHECKPOINT_RESTORE"};

// Policies are small; a larger input is refused before the YAML parser sees it.
constexpr size_t kMaxPolicyBytes = 1 << 20;

struct KindInfo {
  const char* name;
  RuleKind kind;
  std::initializer_list<const char*> keys;  // besides the common ones
};

const KindInfo kKinds[] = {
    {"seccomp", RuleKind::kSeccomp, {"deny"}},
    {"capabilities", RuleKind::kCapabilities, {"absent", "ambient_empty"}},
    {"no_new_privs", RuleKind::kNoNewPrivs, {}},
    {"read_only_root", RuleKind::kReadOnlyRoot, {}},
    {"user_namespaces", RuleKind::kUserNamespaces, {}},
    {"memory",
     RuleKind::kMemory,
     {"min_locked_bytes", "forbid_writable_executable", "allow_locked_jit"}},
    {"interpreters", RuleKind::kInterpreters, {"allowed"}},
    {"egress", RuleKind::kEgress, {"allow"}},
    {"listeners", RuleKind::kListeners, {"allow"}},
    {"events", RuleKind::kEvents, {"events"}},
    {"scope", RuleKind::kScope, {}},
};

// One YAML document of the stream, with where it starts in the file.
struct Document {
  std::string text;    // as parsed (the "---" line included, to keep columns)
  std::string stored;  // as kept in Policy::yaml (no markers)
  int first_line = 0;  // 0-based line of `text` in the file
};

bool IsMarker(absl::string_view line, absl::string_view marker) {
  if (!absl::StartsWith(line, marker)) return false;
  return line.size() == marker.size() || line[marker.size()] == ' ' ||
         line[marker.size()] == '\t' || line[marker.size()] == '\r';
}

// Splits a YAML stream at its "---" document markers (and drops "..." end markers), so each
// document's own text can be kept: bundles carry the documents exactly as written.
std::vector<Document> SplitDocuments(absl::string_view text) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();  // the final newline
  std::vector<Document> docs(1);
  int line_number = 0;
  for (absl::string_view line : lines) {
    if (IsMarker(line, "---")) {
      docs.emplace_back();
      docs.back().first_line = line_number;
      docs.back().text = absl::StrCat(line, "\n");
      absl::string_view rest = absl::StripLeadingAsciiWhitespace(line.substr(3));
      if (!rest.empty()) docs.back().stored = absl::StrCat(rest, "\n");
    } else if (IsMarker(line, "...")) {
      docs.back().text += "\n";
    } else {
      absl::StrAppend(&docs.back().text, line, "\n");
      absl::StrAppend(&docs.back().stored, line, "\n");
    }
    ++line_number;
  }
  return docs;
}

// Parses the documents of one file, collecting diagnostics.
class DocumentParser {
 public:
  DocumentParser(std::string file, int first_line, std::vector<Diagnostic>* diagnostics)
      : file_(std::move(file)), first_line_(first_line), diagnostics_(diagnostics) {}

  std::optional<Policy> Parse(const YAML::Node& root, const std::string& stored) {
    const size_t errors_before = ErrorCount();
    Policy policy;
    policy.yaml = stored;
    policy.source = file_;
    if (!CheckMap(root, "the document", {"apiVersion", "kind", "metadata", "spec"}, root)) {
      return std::nullopt;
    }
    if (auto v = RequiredString(root, "apiVersion", root); v && *v != "vigil.dev/v1") {
      Error(root["apiVersion"], absl::StrCat("apiVersion must be vigil.dev/v1, not '", *v, "'"));
    }
    if (auto v = RequiredString(root, "kind", root); v && *v != "RuntimePolicy") {
      Error(root["kind"], absl::StrCat("kind must be RuntimePolicy, not '", *v, "'"));
    }
    ParseMetadata(root["metadata"], root, &policy);
    ParseSpec(root["spec"], root, &policy);
    if (ErrorCount() != errors_before) return std::nullopt;
    return policy;
  }

  void Error(const YAML::Node& at, const std::string& message) {
    Add(Diagnostic::Severity::kError, at.Mark(), message);
  }
  void Error(const YAML::Mark& at, const std::string& message) {
    Add(Diagnostic::Severity::kError, at, message);
  }
  void Warn(const YAML::Node& at, const std::string& message) {
    Add(Diagnostic::Severity::kWarning, at.Mark(), message);
  }

 private:
  size_t ErrorCount() const {
    return std::count_if(diagnostics_->begin(), diagnostics_->end(), [](const Diagnostic& d) {
      return d.severity == Diagnostic::Severity::kError;
    });
  }

  void Add(Diagnostic::Severity severity, const YAML::Mark& mark, const std::string& message) {
    Diagnostic d;
    d.severity = severity;
    d.file = file_;
    d.line = mark.is_null() ? first_line_ + 1 : first_line_ + mark.line + 1;
    d.column = mark.is_null() ? 1 : mark.column + 1;
    d.message = message;
    diagnostics_->push_back(std::move(d));
  }

  void Add(Diagnostic::Severity severity, const SourcePosition& at, const std::string& message) {
    Diagnostic d;
    d.severity = severity;
    d.file = file_;
    d.line = at.line;
    d.column = at.column;
    d.message = message;
    diagnostics_->push_back(std::move(d));
  }

  SourcePosition Position(const YAML::Node& n) const {
    const YAML::Mark m = n.Mark();
    if (m.is_null()) return {first_line_ + 1, 1};
    return {first_line_ + m.line + 1, m.column + 1};
  }

  // Checks that `n` is a map whose keys are all in `keys` and none repeats. `parent` gives
  // the position when `n` is missing.
  bool CheckMap(const YAML::Node& n, const std::string& what,
                std::initializer_list<const char*> keys, const YAML::Node& parent,
                std::initializer_list<const char*> more_keys = {}) {
    if (!n.IsDefined() || n.IsNull()) {
      Error(n.IsDefined() ? n : parent, absl::StrCat(what, " is missing or empty"));
      return false;
    }
    if (!n.IsMap()) {
      Error(n, absl::StrCat(what, " must be a mapping"));
      return false;
    }
    std::set<std::string> seen;
    for (const auto& kv : n) {
      if (!kv.first.IsScalar()) {
        Error(kv.first, absl::StrCat("a key of ", what, " is not a plain string"));
        continue;
      }
      const std::string& key = kv.first.Scalar();
      const bool known =
          std::any_of(keys.begin(), keys.end(), [&](const char* k) { return key == k; }) ||
          std::any_of(more_keys.begin(), more_keys.end(), [&](const char* k) { return key == k; });
      if (!known) {
        std::vector<std::string> names(keys.begin(), keys.end());
        names.insert(names.end(), more_keys.begin(), more_keys.end());
        Error(kv.first, absl::StrCat("unknown key '", key, "' in ", what,
                                     " (expected one of: ", absl::StrJoin(names, ", "), ")"));
      }
      if (!seen.insert(key).second) Error(kv.first, absl::StrCat("duplicate key '", key, "'"));
    }
    return true;
  }

  std::optional<std::string> Scalar(const YAML::Node& n, const std::string& what) {
    if (!n.IsScalar()) {
      Error(n, absl::StrCat(what, " must be a string"));
      return std::nullopt;
    }
    return n.Scalar();
  }

  std::optional<std::string> RequiredString(const YAML::Node& map, const char* key,
                                            const YAML::Node& parent) {
    const YAML::Node n = map[key];
    if (!n.IsDefined() || n.IsNull()) {
      Error(map.Mark().is_null() ? parent : map, absl::StrCat("'", key, "' is required"));
      return std::nullopt;
    }
    auto s = Scalar(n, absl::StrCat("'", key, "'"));
    if (s && s->empty()) {
      Error(n, absl::StrCat("'", key, "' must not be empty"));
      return std::nullopt;
    }
    return s;
  }

  std::optional<bool> Bool(const YAML::Node& n, const std::string& what) {
    if (n.IsScalar() && (n.Scalar() == "true" || n.Scalar() == "false")) {
      return n.Scalar() == "true";
    }
    Error(n, absl::StrCat(what, " must be true or false"));
    return std::nullopt;
  }

  std::optional<uint64_t> Unsigned(const YAML::Node& n, const std::string& what) {
    uint64_t v = 0;
    if (n.IsScalar() && !n.Scalar().empty() && n.Scalar()[0] != '-' &&
        absl::SimpleAtoi(n.Scalar(), &v)) {
      return v;
    }
    Error(n, absl::StrCat(what, " must be a non-negative integer"));
    return std::nullopt;
  }

  // Calls `each` for every item of a sequence; `allow_empty` false makes [] an error.
  bool ForEach(const YAML::Node& n, const std::string& what, bool allow_empty,
               const std::function<void(const YAML::Node&)>& each) {
    if (!n.IsSequence()) {
      Error(n, absl::StrCat(what, " must be a list"));
      return false;
    }
    if (n.size() == 0 && !allow_empty) {
      Error(n, absl::StrCat(what, " must not be empty"));
      return false;
    }
    for (const auto& item : n) each(item);
    return true;
  }

  std::vector<std::string> StringList(const YAML::Node& n, const std::string& what,
                                      bool allow_empty) {
    std::vector<std::string> out;
    ForEach(n, what, allow_empty, [&](const YAML::Node& item) {
      auto s = Scalar(item, absl::StrCat("each entry of ", what));
      if (s && s->empty()) {
        Error(item, absl::StrCat("an entry of ", what, " is empty"));
      } else if (s) {
        out.push_back(*s);
      }
    });
    return out;
  }

  void ParseMetadata(const YAML::Node& n, const YAML::Node& parent, Policy* policy) {
    if (!CheckMap(n, "metadata", {"name", "revision", "description"}, parent)) return;
    if (auto name = RequiredString(n, "name", parent)) {
      if (name->size() > 63 ||
          name->find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos ||
          name->front() == '-' || name->back() == '-') {
        Error(n["name"], absl::StrCat("metadata.name '", *name,
                                      "' must be 1 to 63 lowercase letters, digits and '-', "
                                      "starting and ending with a letter or digit"));
      } else {
        policy->name = *name;
      }
    }
    const YAML::Node revision = n["revision"];
    uint64_t r = 0;
    if (!revision.IsDefined()) {
      Error(n, "'revision' is required");
    } else if (!revision.IsScalar() || revision.Scalar().empty() || revision.Scalar()[0] == '-' ||
               !absl::SimpleAtoi(revision.Scalar(), &r) || r == 0) {
      Error(revision, "metadata.revision must be a positive integer");
    } else {
      policy->revision = r;
    }
    if (n["description"].IsDefined()) {
      if (auto d = Scalar(n["description"], "metadata.description")) policy->description = *d;
    }
  }

  void ParseSpec(const YAML::Node& n, const YAML::Node& parent, Policy* policy) {
    if (!CheckMap(n, "spec", {"workloads", "sensitive_files", "rules"}, parent)) return;
    const YAML::Node workloads = n["workloads"];
    if (!workloads.IsDefined()) {
      Error(n, "'workloads' is required");
    } else {
      ForEach(workloads, "spec.workloads", false,
              [&](const YAML::Node& w) { ParseWorkload(w, policy); });
    }
    if (n["sensitive_files"].IsDefined()) {
      ForEach(n["sensitive_files"], "spec.sensitive_files", true,
              [&](const YAML::Node& f) { ParseSensitiveFile(f, policy); });
    }
    const YAML::Node rules = n["rules"];
    if (!rules.IsDefined()) {
      Error(n, "'rules' is required");
    } else {
      ForEach(rules, "spec.rules", false, [&](const YAML::Node& r) { ParseRule(r, policy); });
    }
    CheckScopeRules(rules, *policy);
  }

  // A scope rule needs a declared scope on every workload it applies to.
  void CheckScopeRules(const YAML::Node& rules, const Policy& policy) {
    if (!rules.IsDefined() || !rules.IsSequence()) return;
    for (const Rule& rule : policy.rules) {
      if (rule.kind != RuleKind::kScope) continue;
      for (const Workload& w : policy.workloads) {
        const bool applies =
            rule.workloads.empty() ||
            std::find(rule.workloads.begin(), rule.workloads.end(), w.name) != rule.workloads.end();
        if (applies && !w.scope) {
          Add(Diagnostic::Severity::kError, rule.position,
              absl::StrCat("scope rule '", rule.id, "' applies to workload '", w.name,
                           "', which declares no scope (workloads[].scope)"));
        }
      }
    }
  }

  void ParseWorkload(const YAML::Node& n, Policy* policy) {
    if (!CheckMap(n, "a workload", {"name", "selectors", "scope"}, n)) return;
    Workload w;
    if (auto name = RequiredString(n, "name", n)) {
      for (const Workload& other : policy->workloads) {
        if (other.name == *name) Error(n["name"], absl::StrCat("duplicate workload '", *name, "'"));
      }
      w.name = *name;
    }
    const YAML::Node selectors = n["selectors"];
    if (!selectors.IsDefined()) {
      Error(n, "'selectors' is required");
    } else {
      ForEach(selectors, "selectors", false, [&](const YAML::Node& s) {
        auto text = Scalar(s, "a selector");
        if (!text) return;
        absl::StatusOr<Selector> selector = ParseSelector(*text);
        if (!selector.ok()) {
          Error(s, std::string(selector.status().message()));
          return;
        }
        if (selector->exe_glob.empty() && selector->cgroup_glob.empty() &&
            selector->container_id.empty()) {
          Warn(s, absl::StrCat("selector '", *text,
                               "' rests only on comm or pid, which a process can change or "
                               "reuse; add exe=, cgroup= or container="));
        }
        w.selectors.push_back(*std::move(selector));
        w.selector_positions.push_back(Position(s));
      });
    }
    if (n["scope"].IsDefined()) w.scope = ParseDeclaredScope(n["scope"], n);
    policy->workloads.push_back(std::move(w));
  }

  // An absolute path or pattern list (a leading '*' is allowed: "*/bin/curl").
  std::vector<std::string> PathPatterns(const YAML::Node& n, const std::string& what) {
    std::vector<std::string> out = StringList(n, what, true);
    for (const std::string& p : out) {
      if (!absl::StartsWith(p, "/") && !absl::StartsWith(p, "*")) {
        Error(n, absl::StrCat(what, ": '", p, "' must be an absolute path or start with '*'"));
      }
    }
    return out;
  }

  DeclaredScope ParseDeclaredScope(const YAML::Node& n, const YAML::Node& parent) {
    DeclaredScope scope;
    if (!CheckMap(n, "scope",
                  {"component", "executables", "interpreters", "library_roots", "storage",
                   "endpoints", "config", "secrets"},
                  parent)) {
      return scope;
    }
    const YAML::Node component = n["component"];
    if (!component.IsDefined()) {
      Error(n, "'component' is required in a scope (title: and description: of the SSP component)");
    } else if (CheckMap(component, "scope.component", {"title", "description"}, n)) {
      if (auto title = RequiredString(component, "title", n)) scope.component_title = *title;
      if (component["description"].IsDefined()) {
        if (auto d = Scalar(component["description"], "scope.component.description")) {
          scope.component_description = *d;
        }
      }
    }
    if (n["executables"].IsDefined()) {
      scope.executables = PathPatterns(n["executables"], "scope.executables");
    }
    if (n["interpreters"].IsDefined()) {
      for (std::string& kind : StringList(n["interpreters"], "scope.interpreters", true)) {
        if (kind.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") != std::string::npos) {
          Error(n["interpreters"],
                absl::StrCat("interpreter kind '", kind,
                             "' must be lowercase (python, perl, ruby, node, lua, sh, bash, java, "
                             "wasm, ...)"));
        }
        scope.interpreters.push_back(std::move(kind));
      }
    }
    if (n["library_roots"].IsDefined()) {
      for (std::string& root : StringList(n["library_roots"], "scope.library_roots", true)) {
        if (!absl::StartsWith(root, "/")) {
          Error(n["library_roots"],
                absl::StrCat("library root '", root, "' must be an absolute directory"));
        }
        while (root.size() > 1 && root.back() == '/') root.pop_back();
        scope.library_roots.push_back(std::move(root));
      }
    }
    if (n["storage"].IsDefined()) scope.storage = PathPatterns(n["storage"], "scope.storage");
    if (n["config"].IsDefined()) scope.config = PathPatterns(n["config"], "scope.config");
    if (n["secrets"].IsDefined()) scope.secrets = PathPatterns(n["secrets"], "scope.secrets");
    if (n["endpoints"].IsDefined()) {
      ForEach(n["endpoints"], "scope.endpoints", true, [&](const YAML::Node& e) {
        if (auto endpoint = ParseDeclaredEndpoint(e)) scope.endpoints.push_back(*endpoint);
      });
    }
    return scope;
  }

  std::optional<DeclaredEndpoint> ParseDeclaredEndpoint(const YAML::Node& e) {
    if (!CheckMap(e, "a scope endpoint", {"direction", "protocol", "address", "ports"}, e)) {
      return std::nullopt;
    }
    DeclaredEndpoint endpoint;
    auto direction = RequiredString(e, "direction", e);
    auto address = RequiredString(e, "address", e);
    if (direction && *direction != "listen" && *direction != "outbound") {
      Error(e["direction"], "direction must be listen or outbound");
      return std::nullopt;
    }
    if (!direction || !address) return std::nullopt;
    endpoint.direction = *direction;
    endpoint.address = *address;
    if (e["protocol"].IsDefined()) {
      auto protocol = Scalar(e["protocol"], "protocol");
      if (protocol && (protocol->empty() ||
                       protocol->find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789") !=
                           std::string::npos)) {
        Error(e["protocol"], "protocol must be lowercase, e.g. tcp, udp, unix");
        return std::nullopt;
      }
      if (protocol) endpoint.protocol = *protocol;
    }
    // An address that looks like one (digits, dots, colons, a prefix) must parse as a CIDR:
    // "10.0.0.1/33" is a typo, not a pattern.
    const bool looks_like_ip =
        address->find_first_not_of("0123456789abcdefABCDEF.:/[]") == std::string::npos &&
        (address->find('.') != std::string::npos || address->find(':') != std::string::npos);
    if (looks_like_ip) {
      absl::StatusOr<Cidr> cidr = ParseCidr(*address);
      if (!cidr.ok()) {
        Error(e["address"], std::string(cidr.status().message()));
        return std::nullopt;
      }
      endpoint.cidr = *cidr;
    }
    if (e["ports"].IsDefined()) {
      ForEach(e["ports"], "ports", false, [&](const YAML::Node& p) {
        if (auto range = PortRange(p)) endpoint.ports.push_back(*range);
      });
    }
    return endpoint;
  }

  void ParseSensitiveFile(const YAML::Node& n, Policy* policy) {
    if (!CheckMap(n, "a sensitive file", {"path", "classification"}, n)) return;
    SensitiveFile f;
    auto path = RequiredString(n, "path", n);
    auto classification = RequiredString(n, "classification", n);
    if (classification && *classification != "config" && *classification != "secret") {
      Error(n["classification"], "classification must be config or secret");
      return;
    }
    if (path && !absl::StartsWith(*path, "/")) {
      Error(n["path"], "a sensitive file path must be absolute");
      return;
    }
    if (!path || !classification) return;
    policy->sensitive_files.push_back({*path, *classification});
  }

  std::optional<Grade> ParseGrade(const YAML::Node& n, bool allow_ignore) {
    if (n.IsScalar()) {
      if (n.Scalar() == "warning") return Grade::kWarning;
      if (n.Scalar() == "contraindicated") return Grade::kContraindicated;
      if (allow_ignore && n.Scalar() == "ignore") return Grade::kIgnore;
    }
    Error(n, allow_ignore ? "an event grade must be warning, contraindicated or ignore"
                          : "grade must be warning or contraindicated");
    return std::nullopt;
  }

  void ParseControls(const YAML::Node& n, const YAML::Node& parent, Rule* rule) {
    if (!CheckMap(n, "controls", {"nist_800_53", "iso27001", "soc2"}, parent)) return;
    struct Framework {
      const char* key;
      std::function<absl::StatusOr<std::vector<std::string>>(absl::string_view)> map;
    };
    const Framework frameworks[] = {
        {"nist_800_53",
         [](absl::string_view id) -> absl::StatusOr<std::vector<std::string>> {
           auto c = NistControl(id);
           if (!c.ok()) return c.status();
           return std::vector<std::string>{*c};
         }},
        {"iso27001", IsoControls},
        {"soc2",
         [](absl::string_view id) -> absl::StatusOr<std::vector<std::string>> {
           auto c = Soc2Control(id);
           if (!c.ok()) return c.status();
           return std::vector<std::string>{*c};
         }},
    };
    for (const Framework& f : frameworks) {
      const YAML::Node list = n[f.key];
      if (!list.IsDefined()) continue;
      ForEach(list, absl::StrCat("controls.", f.key), false, [&](const YAML::Node& item) {
        auto id = Scalar(item, "a control id");
        if (!id) return;
        auto mapped = f.map(*id);
        if (!mapped.ok()) {
          Error(item, std::string(mapped.status().message()));
          return;
        }
        for (std::string& c : *mapped) {
          if (std::find(rule->controls.begin(), rule->controls.end(), c) == rule->controls.end()) {
            rule->controls.push_back(std::move(c));
          }
        }
      });
    }
  }

  void ParseRule(const YAML::Node& n, Policy* policy) {
    if (!n.IsMap()) {
      Error(n, "a rule must be a mapping");
      return;
    }
    Rule rule;
    rule.position = Position(n);
    const KindInfo* info = nullptr;
    std::optional<std::string> kind = RequiredString(n, "kind", n);
    if (kind) {
      for (const KindInfo& k : kKinds) {
        if (*kind == k.name) info = &k;
      }
      if (!info) {
        std::vector<std::string> names;
        for (const KindInfo& k : kKinds) names.push_back(k.name);
        Error(n["kind"], absl::StrCat("unknown rule kind '", *kind,
                                      "' (expected one of: ", absl::StrJoin(names, ", "), ")"));
      }
    }
    // Keys are checked against the kind's own when the kind is known, else only the
    // common ones would be reported: skip the check to avoid noise.
    if (info) {
      CheckMap(n, absl::StrCat("a ", info->name, " rule"),
               {"id", "kind", "grade", "workloads", "controls", "description"}, n, info->keys);
      rule.kind = info->kind;
    }
    if (auto id = RequiredString(n, "id", n)) {
      if (id->find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_.") != std::string::npos) {
        Error(n["id"], absl::StrCat("rule id '", *id,
                                    "' may hold only lowercase letters, digits, '-', '_', '.'"));
      }
      for (const Rule& other : policy->rules) {
        if (other.id == *id) Error(n["id"], absl::StrCat("duplicate rule id '", *id, "'"));
      }
      rule.id = *id;
    }
    if (n["grade"].IsDefined()) {
      if (info && info->kind == RuleKind::kEvents) {
        Error(n["grade"],
              "an events rule grades each event kind (denied:, succeeded:), not the "
              "rule");
      } else if (auto g = ParseGrade(n["grade"], false)) {
        rule.grade = *g;
      }
    }
    if (n["workloads"].IsDefined()) {
      const YAML::Node list = n["workloads"];
      ForEach(list, "workloads", false, [&](const YAML::Node& item) {
        auto name = Scalar(item, "a workload name");
        if (!name) return;
        const bool known = std::any_of(policy->workloads.begin(), policy->workloads.end(),
                                       [&](const Workload& w) { return w.name == *name; });
        if (!known) {
          Error(item, absl::StrCat("rule names workload '", *name,
                                   "', which spec.workloads does not define"));
        }
        rule.workloads.push_back(*name);
      });
    }
    if (n["description"].IsDefined()) Scalar(n["description"], "description");
    if (!n["controls"].IsDefined() && info && info->kind == RuleKind::kScope) {
      rule.controls = DefaultScopeControls();
    } else if (!n["controls"].IsDefined()) {
      Error(n, "'controls' is required: name the controls the rule evidences");
    } else {
      ParseControls(n["controls"], n, &rule);
    }
    if (!info) return;
    switch (info->kind) {
      case RuleKind::kSeccomp:
        ParseSeccomp(n, &rule);
        break;
      case RuleKind::kCapabilities:
        ParseCapabilities(n, &rule);
        break;
      case RuleKind::kMemory:
        ParseMemory(n, &rule);
        break;
      case RuleKind::kInterpreters:
        if (!n["allowed"].IsDefined()) {
          Error(n, "'allowed' is required (a list of paths or patterns; [] for none)");
        } else {
          rule.interpreters.allowed = StringList(n["allowed"], "allowed", true);
          for (const std::string& p : rule.interpreters.allowed) {
            if (!absl::StartsWith(p, "/") && !absl::StartsWith(p, "*")) {
              Error(n["allowed"], absl::StrCat("interpreter '", p, "' must be an absolute path"));
            }
          }
        }
        break;
      case RuleKind::kEgress:
      case RuleKind::kListeners:
        ParseNetwork(n, &rule);
        break;
      case RuleKind::kEvents:
        ParseEvents(n, &rule);
        break;
      case RuleKind::kNoNewPrivs:
      case RuleKind::kReadOnlyRoot:
      case RuleKind::kUserNamespaces:
      case RuleKind::kScope:
        break;
    }
    policy->rules.push_back(std::move(rule));
  }

  void ParseSeccomp(const YAML::Node& n, Rule* rule) {
    if (!n["deny"].IsDefined()) {
      Error(n, "'deny' is required (the syscalls the filter must deny)");
      return;
    }
    for (const std::string& s : StringList(n["deny"], "deny", false)) {
      if (s.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != std::string::npos) {
        Error(n["deny"], absl::StrCat("'", s, "' is not a syscall name"));
      } else if (std::find(rule->seccomp.deny.begin(), rule->seccomp.deny.end(), s) ==
                 rule->seccomp.deny.end()) {
        rule->seccomp.deny.push_back(s);
      }
    }
  }

  void ParseCapabilities(const YAML::Node& n, Rule* rule) {
    if (n["absent"].IsDefined()) {
      ForEach(n["absent"], "absent", false, [&](const YAML::Node& item) {
        auto name = Scalar(item, "a capability");
        if (!name) return;
        const int number = CapabilityNumber(*name);
        if (number < 0) {
          Error(item, absl::StrCat("unknown capability '", *name, "' (e.g. CAP_SYS_PTRACE)"));
          return;
        }
        rule->capabilities.absent.push_back(number);
        rule->capabilities.absent_names.push_back(*name);
      });
    }
    if (n["ambient_empty"].IsDefined()) {
      if (auto b = Bool(n["ambient_empty"], "ambient_empty")) rule->capabilities.ambient_empty = *b;
    }
    if (!n["absent"].IsDefined() && !rule->capabilities.ambient_empty) {
      Error(n, "a capabilities rule needs 'absent' or 'ambient_empty: true'");
    }
  }

  void ParseMemory(const YAML::Node& n, Rule* rule) {
    MemoryRule& m = rule->memory;
    if (n["min_locked_bytes"].IsDefined()) {
      if (auto v = Unsigned(n["min_locked_bytes"], "min_locked_bytes")) m.min_locked_bytes = *v;
    }
    if (n["forbid_writable_executable"].IsDefined()) {
      if (auto b = Bool(n["forbid_writable_executable"], "forbid_writable_executable")) {
        m.forbid_writable_executable = *b;
      }
    }
    if (n["allow_locked_jit"].IsDefined()) {
      if (auto b = Bool(n["allow_locked_jit"], "allow_locked_jit")) m.allow_locked_jit = *b;
      if (m.allow_locked_jit && !m.forbid_writable_executable) {
        Error(n["allow_locked_jit"],
              "allow_locked_jit is an exception to forbid_writable_executable: true");
      }
    }
    if (m.min_locked_bytes == 0 && !m.forbid_writable_executable) {
      Error(n, "a memory rule needs min_locked_bytes > 0 or forbid_writable_executable: true");
    }
  }

  std::optional<std::pair<uint32_t, uint32_t>> PortRange(const YAML::Node& item) {
    if (item.IsScalar()) {
      std::pair<std::string, std::string> parts =
          absl::StrSplit(item.Scalar(), absl::MaxSplits('-', 1));
      uint32_t lo = 0;
      uint32_t hi = 0;
      const bool range = item.Scalar().find('-') != std::string::npos;
      if (absl::SimpleAtoi(parts.first, &lo) &&
          (range ? absl::SimpleAtoi(parts.second, &hi) : (hi = lo, true)) && lo >= 1 &&
          hi <= 65535 && lo <= hi) {
        return std::make_pair(lo, hi);
      }
    }
    Error(item, "a port must be 1 to 65535, or a range LOW-HIGH");
    return std::nullopt;
  }

  void ParseNetwork(const YAML::Node& n, Rule* rule) {
    if (!n["allow"].IsDefined()) {
      Error(n, "'allow' is required (a list of {cidr, ports}; [] for none)");
      return;
    }
    ForEach(n["allow"], "allow", true, [&](const YAML::Node& e) {
      if (!CheckMap(e, "an endpoint", {"cidr", "ports"}, e)) return;
      Endpoint endpoint;
      auto cidr_text = RequiredString(e, "cidr", e);
      if (!cidr_text) return;
      absl::StatusOr<Cidr> cidr = ParseCidr(*cidr_text);
      if (!cidr.ok()) {
        Error(e["cidr"], std::string(cidr.status().message()));
        return;
      }
      endpoint.cidr = *cidr;
      endpoint.text = *cidr_text;
      if (e["ports"].IsDefined()) {
        ForEach(e["ports"], "ports", false, [&](const YAML::Node& p) {
          if (auto range = PortRange(p)) endpoint.ports.push_back(*range);
        });
      }
      rule->network.allow.push_back(std::move(endpoint));
    });
  }

  void ParseEvents(const YAML::Node& n, Rule* rule) {
    if (!n["events"].IsDefined()) {
      Error(n, "'events' is required (a list of {kind, denied, succeeded})");
      return;
    }
    ForEach(n["events"], "events", false, [&](const YAML::Node& e) {
      if (!CheckMap(e, "an event grade", {"kind", "denied", "succeeded"}, e)) return;
      EventGrade g;
      auto kind = RequiredString(e, "kind", e);
      if (!kind) return;
      v1::EventKind k = v1::EVENT_KIND_UNSPECIFIED;
      if (!v1::EventKind_Parse(absl::StrCat("EVENT_KIND_", absl::AsciiStrToUpper(*kind)), &k) ||
          k == v1::EVENT_KIND_UNSPECIFIED || *kind != absl::AsciiStrToLower(*kind)) {
        Error(e["kind"], absl::StrCat("unknown event kind '", *kind,
                                      "' (e.g. ptrace, process_vm_readv, unshare, bpf)"));
        return;
      }
      for (const EventGrade& other : rule->events.grades) {
        if (other.kind == k) Error(e["kind"], absl::StrCat("event kind '", *kind, "' is repeated"));
      }
      g.kind = k;
      if (e["denied"].IsDefined()) {
        if (auto grade = ParseGrade(e["denied"], true)) g.denied = *grade;
      }
      if (e["succeeded"].IsDefined()) {
        if (auto grade = ParseGrade(e["succeeded"], true)) g.succeeded = *grade;
      }
      rule->events.grades.push_back(g);
    });
  }

  std::string file_;
  int first_line_;
  std::vector<Diagnostic>* diagnostics_;
};

}  // namespace

std::string Diagnostic::ToString() const {
  return absl::StrCat(file, ":", line, ":", column, ": ",
                      severity == Severity::kError ? "error" : "warning", ": ", message);
}

bool ParseResult::HasErrors() const {
  return std::any_of(diagnostics.begin(), diagnostics.end(), [](const Diagnostic& d) {
    return d.severity == Diagnostic::Severity::kError;
  });
}

int CapabilityNumber(absl::string_view name) {
  for (int i = 0; i < static_cast<int>(std::size(kCapabilityNames)); ++i) {
    if (name == kCapabilityNames[i]) return i;
  }
  return -1;
}

std::string CapabilityName(int number) {
  if (number >= 0 && number < static_cast<int>(std::size(kCapabilityNames))) {
    return kCapabilityNames[number];
  }
  return absl::StrCat("CAP_", number);
}

ParseResult ParsePolicies(absl::string_view text, absl::string_view file) {
  ParseResult result;
  if (text.size() > kMaxPolicyBytes) {
    Diagnostic d;
    d.file = std::string(file);
    d.line = 1;
    d.column = 1;
    d.message = absl::StrCat("the file is larger than ", kMaxPolicyBytes, " bytes");
    result.diagnostics.push_back(std::move(d));
    return result;
  }
  std::vector<Policy> policies;
  bool any_document = false;
  for (const Document& doc : SplitDocuments(text)) {
    DocumentParser parser(std::string(file), doc.first_line, &result.diagnostics);
    YAML::Node root;
    try {
      root = YAML::Load(doc.text);
    } catch (const YAML::Exception& e) {
      parser.Error(e.mark, e.msg);
      continue;
    }
    if (!root.IsDefined() || root.IsNull()) continue;  // comments or blank only
    any_document = true;
    try {
      if (std::optional<Policy> p = parser.Parse(root, doc.stored)) {
        policies.push_back(*std::move(p));
      }
    } catch (const YAML::Exception& e) {
      parser.Error(e.mark, e.msg);
    }
  }
  if (!any_document && !result.HasErrors()) {
    Diagnostic d;
    d.file = std::string(file);
    d.line = 1;
    d.column = 1;
    d.message = "no RuntimePolicy document";
    result.diagnostics.push_back(std::move(d));
  }
  std::stable_sort(result.diagnostics.begin(), result.diagnostics.end(),
                   [](const Diagnostic& a, const Diagnostic& b) {
                     return std::tie(a.line, a.column) < std::tie(b.line, b.column);
                   });
  if (!result.HasErrors()) result.policies = std::move(policies);
  return result;
}

absl::StatusOr<std::vector<Policy>> ParsePoliciesOrError(absl::string_view text,
                                                         absl::string_view file) {
  ParseResult result = ParsePolicies(text, file);
  std::vector<std::string> errors;
  for (const Diagnostic& d : result.diagnostics) {
    if (d.severity == Diagnostic::Severity::kError) errors.push_back(d.ToString());
  }
  std::set<std::string> names;
  for (const Policy& p : result.policies) {
    if (!names.insert(p.name).second) {
      errors.push_back(absl::StrCat(file, ": policy '", p.name, "' appears twice"));
    }
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
  return std::move(result.policies);
}

absl::StatusOr<Policy> ParseSinglePolicy(absl::string_view text, absl::string_view file,
                                         std::vector<std::string>* warnings) {
  ParseResult result = ParsePolicies(text, file);
  std::vector<std::string> errors;
  for (const Diagnostic& d : result.diagnostics) {
    if (d.severity == Diagnostic::Severity::kError) {
      errors.push_back(d.ToString());
    } else if (warnings != nullptr) {
      warnings->push_back(d.ToString());
    }
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
  if (result.policies.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        file, ": expected exactly one RuntimePolicy document, found ", result.policies.size()));
  }
  return std::move(result.policies.front());
}

}  // namespace vigil::policy
