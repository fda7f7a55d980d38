#pragma once

// Lookups in a report's workload scopes, for tests that check what a scope holds.

#include <sys/types.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::testing {

/// The first item of `items` for which `matches(item)` holds, or nullptr.
template <typename T, typename Pred>
const T* FindItem(const google::protobuf::RepeatedPtrField<T>& items, Pred matches) {
  for (const T& item : items) {
    if (matches(item)) return &item;
  }
  return nullptr;
}

/// The scope whose root runs as `root_pid`.
inline const v1::WorkloadScope* ScopeOf(const v1::RuntimeReport& r, pid_t root_pid) {
  return FindItem(r.scopes(), [&](const v1::WorkloadScope& s) { return s.root_pid() == root_pid; });
}

/// The executable whose path is `path`.
inline const v1::ScopeExecutable* ExecutableAt(const v1::WorkloadScope& s, absl::string_view path) {
  return FindItem(s.executables(), [&](const v1::ScopeExecutable& e) { return e.path() == path; });
}

/// The storage directory whose path ends with `suffix` (a whole path matches too).
inline const v1::ScopeStorage* StorageEndingWith(const v1::WorkloadScope& s,
                                                 absl::string_view suffix) {
  return FindItem(s.storage(), [&](const v1::ScopeStorage& st) {
    return absl::EndsWith(st.directory(), suffix);
  });
}

/// The file read whose path ends with `suffix` (a whole path matches too).
inline const v1::ScopeFileRead* FileReadEndingWith(const v1::WorkloadScope& s,
                                                   absl::string_view suffix) {
  return FindItem(s.files_read(),
                  [&](const v1::ScopeFileRead& f) { return absl::EndsWith(f.path(), suffix); });
}

}  // namespace vigil::testing
