#include "node/scope/scope_rules.h"

#include <fnmatch.h>

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace vigil::node::scope {
namespace {

struct Family {
  absl::string_view prefix;
  absl::string_view kind;
  bool versioned;  // the name may carry a version after the prefix: python3.11, lua5.4
};

// Interpreters by executable name.
constexpr Family kExecutables[] = {
    {"python", "python", true},   {"pypy", "python", true},    {"perl", "perl", true},
    {"ruby", "ruby", true},       {"node", "node", true},      {"nodejs", "node", true},
    {"deno", "deno", false},      {"bun", "bun", false},       {"lua", "lua", true},
    {"luajit", "lua", true},      {"sh", "sh", false},         {"dash", "sh", false},
    {"ash", "sh", false},         {"ksh", "sh", true},         {"mksh", "sh", false},
    {"posh", "sh", false},        {"bash", "bash", false},     {"zsh", "zsh", false},
    {"fish", "fish", false},      {"csh", "csh", false},       {"tcsh", "csh", false},
    {"java", "java", false},      {"wasmtime", "wasm", false}, {"wasmer", "wasm", false},
    {"wasmedge", "wasm", false},  {"iwasm", "wasm", false},    {"wasm3", "wasm", false},
    {"wazero", "wasm", false},    {"php", "php", true},        {"tclsh", "tcl", true},
    {"wish", "tcl", true},        {"Rscript", "r", false},     {"R", "r", false},
    {"julia", "julia", false},    {"guile", "guile", true},    {"pwsh", "powershell", false},
    {"awk", "awk", false},        {"gawk", "awk", false},      {"mawk", "awk", false},
    {"nawk", "awk", false},       {"erl", "erlang", false},    {"escript", "erlang", false},
    {"racket", "racket", false},  {"sbcl", "lisp", false},     {"gjs", "javascript", false},
    {"qjs", "javascript", false}, {"dotnet", "dotnet", false},
};

// Engines by shared library name (the part before ".so").
constexpr Family kLibraries[] = {
    {"libpython", "python", true},
    {"libperl", "perl", true},
    {"libruby", "ruby", true},
    {"libnode", "node", true},
    {"liblua", "lua", true},
    {"libluajit", "lua", true},
    {"libjvm", "java", false},
    {"libwasmtime", "wasm", false},
    {"libwasmer", "wasm", false},
    {"libwasmedge", "wasm", true},
    {"libiwasm", "wasm", false},
    {"libv8", "javascript", false},
    {"libmozjs", "javascript", true},
    {"libgjs", "javascript", false},
    {"libquickjs", "javascript", false},
    {"libtcl", "tcl", true},
    {"libphp", "php", true},
    {"libguile", "guile", true},
    {"libR", "r", false},
    {"libjulia", "julia", false},
};

// A version tail: digits, dots, dashes, underscores, and a trailing ABI letter (3.11d).
bool IsVersion(absl::string_view s) {
  if (s.empty()) return false;
  if (!absl::ascii_isdigit(s[0]) && s[0] != '-' && s[0] != '.' && s[0] != '_') return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (absl::ascii_isdigit(c) || c == '.' || c == '-' || c == '_') continue;
    if (i + 1 == s.size() && (c == 'd' || c == 'm' || c == 'u')) continue;
    return false;
  }
  return true;
}

std::optional<InterpreterMatch> MatchFamily(absl::string_view name, const Family* begin,
                                            const Family* end) {
  for (const Family* f = begin; f != end; ++f) {
    if (name == f->prefix) return InterpreterMatch{std::string(f->kind)};
    if (f->versioned && absl::StartsWith(name, f->prefix) &&
        IsVersion(name.substr(f->prefix.size()))) {
      return InterpreterMatch{std::string(f->kind)};
    }
  }
  return std::nullopt;
}

absl::string_view BaseName(absl::string_view path) {
  size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}

constexpr size_t kMaxScriptBytes = 256;

std::string Bounded(absl::string_view s) { return std::string(s.substr(0, kMaxScriptBytes)); }

// Built-in patterns (fnmatch without FNM_PATHNAME: '*' also matches '/').
constexpr const char* kSecretPatterns[] = {
    "*.pem",      "*.key",        "*.p12",         "*.pfx",     "*.jks",
    "*.keystore", "*/secrets/*",  "*/secret/*",    "*secret*",  "*/.env",
    "*/.env.*",   "*.env",        "*credentials*", "*/.ssh/*",  "*id_rsa*",
    "*id_ecdsa*", "*id_ed25519*", "*/.netrc",      "*/.pgpass", "*/private/*",
};
constexpr const char* kConfigPatterns[] = {
    "/etc/*",     "*.conf",      "*.cnf",    "*.cfg",         "*.ini",
    "*.toml",     "*.yaml",      "*.yml",    "*.properties",  "*.config",
    "*/config/*", "*/.config/*", "*/conf/*", "*/config.json", "*/settings.json",
};

// fnmatch(3) needs NUL-terminated strings: the built-in patterns are literals, the path is
// copied once per classification.
bool Matches(const char* pattern, const std::string& path) {
  return fnmatch(pattern, path.c_str(), 0) == 0;
}

}  // namespace

std::optional<InterpreterMatch> InterpreterByExecutable(absl::string_view path) {
  absl::string_view name = BaseName(path);
  absl::ConsumeSuffix(&name, " (deleted)");
  return MatchFamily(name, std::begin(kExecutables), std::end(kExecutables));
}

std::optional<InterpreterMatch> InterpreterByLibrary(absl::string_view path) {
  absl::string_view name = BaseName(path);
  size_t so = name.find(".so");
  if (so == absl::string_view::npos) return std::nullopt;
  return MatchFamily(name.substr(0, so), std::begin(kLibraries), std::end(kLibraries));
}

std::vector<std::string> ScriptsFromArgv(absl::string_view kind,
                                         const std::vector<std::string>& argv) {
  const bool java = kind == "java";
  // The argument after position i, as the single script; none when argv ends there.
  auto next = [&argv](size_t i) {
    return i + 1 < argv.size() ? std::vector<std::string>{Bounded(argv[i + 1])}
                               : std::vector<std::string>();
  };
  for (size_t i = 1; i < argv.size(); ++i) {
    absl::string_view a = argv[i];
    const bool has_next = i + 1 < argv.size();
    if (a == "--") return next(i);
    if (java) {
      if (a == "-jar") return next(i);
      if (a == "-cp" || a == "-classpath" || a == "--class-path" || a == "-p" ||
          a == "--module-path") {
        ++i;
        continue;
      }
      if (a == "-m" || a == "--module") {
        return next(i);
      }
    } else {
      if (a == "-c" || a == "-e" || a == "-E" || a == "--eval" || a == "-r" || a == "--command") {
        return {"-c"};
      }
      if (kind == "python" && a == "-m") {
        return {has_next ? Bounded(absl::StrCat("-m ", argv[i + 1])) : "-m"};
      }
      if (kind == "awk" && a == "-f") {
        return next(i);
      }
      if (kind == "python" && (a == "-W" || a == "-X")) {
        ++i;
        continue;
      }
      if (kind == "wasm" && a == "run") continue;  // wasmtime run <module>
    }
    if (!a.empty() && a[0] == '-') continue;
    if (kind == "awk") return {"-c"};  // awk's first operand is its program text
    return {Bounded(a)};
  }
  return {};
}

std::optional<FileClass> ClassifyRead(absl::string_view path, uint32_t mode,
                                      const std::vector<SensitivePath>& policy) {
  const std::string p(path);
  for (const SensitivePath& sp : policy) {
    if (Matches(sp.glob.c_str(), p)) {
      return FileClass{sp.classification, absl::StrCat("policy:", sp.glob)};
    }
  }
  for (const char* pattern : kSecretPatterns) {
    if (Matches(pattern, p)) return FileClass{"secret", absl::StrCat("pattern:", pattern)};
  }
  if (mode != 0 && (mode & 0004) == 0) {
    return FileClass{"secret", absl::StrFormat("mode:%04o", mode & 07777)};
  }
  for (const char* pattern : kConfigPatterns) {
    if (Matches(pattern, p)) return FileClass{"config", absl::StrCat("pattern:", pattern)};
  }
  return std::nullopt;
}

std::optional<std::pair<std::string, std::string>> SqliteCompanion(absl::string_view name) {
  for (absl::string_view suffix : {"-wal", "-shm", "-journal"}) {
    if (name.size() > suffix.size() && absl::EndsWith(name, suffix)) {
      return std::make_pair(std::string(name.substr(0, name.size() - suffix.size())),
                            std::string(suffix));
    }
  }
  return std::nullopt;
}

bool LooksLikeSqlite(absl::string_view name) {
  for (absl::string_view ext : {".db", ".sqlite", ".sqlite3", ".db3"}) {
    if (name.size() > ext.size() && absl::EndsWith(name, ext)) return true;
  }
  return false;
}

}  // namespace vigil::node::scope
