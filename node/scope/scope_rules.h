#pragma once

#include <optional>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "node/procfs/snapshotter.h"

namespace vigil::node::scope {

/// An interpreter or script engine recognised by its executable's or library's name.
struct InterpreterMatch {
  /// "python", "perl", "ruby", "node", "lua", "sh", "bash", "zsh", "java", "wasm", ...
  std::string kind;
};

/// The interpreter an executable is, by its base name: python3.11 -> python, dash -> sh,
/// nodejs -> node, wasmtime -> wasm, ... nullopt for anything else.
std::optional<InterpreterMatch> InterpreterByExecutable(absl::string_view path);

/// The engine a shared library embeds, by its base name: libpython3.11.so.1.0 -> python,
/// libjvm.so -> java, libwasmtime.so -> wasm, ... nullopt for anything else.
std::optional<InterpreterMatch> InterpreterByLibrary(absl::string_view path);

/// The scripts an interpreter's argv names: the first non-option argument (a file), "-c" for
/// inline code (-c, -e, --eval, -E), "-m <module>" for python -m, the jar of java -jar.
/// Empty when argv names none (an interactive interpreter, a script on stdin).
std::vector<std::string> ScriptsFromArgv(absl::string_view kind,
                                         const std::vector<std::string>& argv);

/// Why a file the workload read is configuration or a likely secret.
struct FileClass {
  /// "config" or "secret".
  std::string classification;
  /// "policy:<glob>", "pattern:<pattern>" or "mode:<octal>".
  std::string reason;
};

/// Classifies a file read: first by the policy's sensitive_files patterns (fnmatch), then by
/// the built-in secret patterns (*.pem, *.key, */secrets/*, .env, *credentials*, ...), then
/// by mode (a regular file not readable by others, e.g. 0600 or 0640, is a likely secret;
/// `mode` 0 means unknown), then by the built-in configuration patterns (/etc/*, *.conf,
/// *.yaml, ...). nullopt: neither.
std::optional<FileClass> ClassifyRead(absl::string_view path, uint32_t mode,
                                      const std::vector<SensitivePath>& policy);

/// For a file name ending in a SQLite companion suffix ("-wal", "-shm", "-journal"): the
/// database's name and the suffix. nullopt otherwise.
std::optional<std::pair<std::string, std::string>> SqliteCompanion(absl::string_view name);

/// Whether a file name looks like a SQLite database by its extension (.db, .sqlite,
/// .sqlite3, .db3).
bool LooksLikeSqlite(absl::string_view name);

}  // namespace vigil::node::scope
