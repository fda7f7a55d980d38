#include "verifier/policy_loader.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/digest.h"
#include "common/pki.h"
#include "common/policy/parser.h"

namespace vigil::verifier {
namespace {

namespace fs = std::filesystem;

absl::StatusOr<std::vector<std::string>> ExpandPaths(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const std::string& path : paths) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      std::vector<std::string> in_dir;
      for (const fs::directory_entry& e : fs::directory_iterator(path, ec)) {
        std::string ext = e.path().extension().string();
        if (e.is_regular_file() && (ext == ".yaml" || ext == ".yml")) {
          in_dir.push_back(e.path().string());
        }
      }
      if (ec) return absl::InvalidArgumentError(absl::StrCat(path, ": ", ec.message()));
      std::sort(in_dir.begin(), in_dir.end());
      files.insert(files.end(), in_dir.begin(), in_dir.end());
    } else {
      files.push_back(path);
    }
  }
  return files;
}

}  // namespace

absl::StatusOr<std::vector<policy::Policy>> LoadStartupPolicies(
    Store* store, const std::vector<std::string>& paths) {
  absl::StatusOr<std::vector<std::string>> files = ExpandPaths(paths);
  if (!files.ok()) return files.status();
  std::map<std::string, policy::Policy> from_files;
  std::vector<std::string> errors;
  for (const std::string& file : *files) {
    absl::StatusOr<std::string> text = ReadFileToString(file);
    if (!text.ok()) {
      errors.push_back(std::string(text.status().message()));
      continue;
    }
    absl::StatusOr<std::vector<policy::Policy>> parsed = policy::ParsePoliciesOrError(*text, file);
    if (!parsed.ok()) {
      errors.push_back(std::string(parsed.status().message()));
      continue;
    }
    for (policy::Policy& p : *parsed) {
      std::string name = p.name;
      if (auto it = from_files.find(name); it != from_files.end()) {
        errors.push_back(
            absl::StrCat(file, ": policy '", name, "' is also defined in ", it->second.source));
        continue;
      }
      from_files.emplace(name, std::move(p));
    }
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));

  std::map<std::string, policy::Policy> merged;
  if (store != nullptr) {
    absl::StatusOr<std::vector<v1::PolicyInfo>> stored = store->ListPolicies();
    if (!stored.ok()) return stored.status();
    for (const v1::PolicyInfo& info : *stored) {
      absl::StatusOr<policy::Policy> p =
          policy::ParseSinglePolicy(info.yaml(), absl::StrCat("stored policy ", info.name()));
      if (!p.ok()) return p.status();
      merged.emplace(info.name(), *std::move(p));
    }
  }
  std::vector<policy::Policy> to_store;
  for (auto& [name, p] : from_files) {
    auto it = merged.find(name);
    if (it == merged.end() || p.revision > it->second.revision) {
      to_store.push_back(p);
      merged.insert_or_assign(name, std::move(p));
    } else if (p.revision == it->second.revision) {
      if (Sha256(p.yaml) != Sha256(it->second.yaml)) {
        return absl::FailedPreconditionError(absl::StrCat(
            p.source, ": policy '", name, "' revision ", p.revision,
            " differs from the stored revision ", p.revision, ": give the change a new revision"));
      }
    } else {
      spdlog::warn(
          "{}: policy '{}' revision {} is older than the stored revision {}; the "
          "stored one stays in force",
          p.source, name, p.revision, it->second.revision);
    }
  }
  if (store != nullptr) {
    for (const policy::Policy& p : to_store) {
      v1::PolicyInfo info;
      info.set_name(p.name);
      info.set_revision(p.revision);
      info.set_sha256(HexEncode(Sha256(p.yaml)));
      info.set_yaml(p.yaml);
      info.set_updated_by("vigil-verifier --policy");
      absl::StatusOr<v1::PolicyInfo> stored = store->PutPolicy(info);
      if (!stored.ok()) return stored.status();
      v1::AuditRecord audit;
      audit.set_actor("vigil-verifier --policy");
      audit.set_action("policy.put");
      audit.set_target(p.Id());
      audit.set_detail(absl::StrCat("from ", p.source, ", sha256 ", info.sha256()));
      if (absl::Status st = store->AppendAudit(audit); !st.ok()) return st;
      spdlog::info("policy {} stored from {}", p.Id(), p.source);
    }
  }
  std::vector<policy::Policy> out;
  for (auto& [name, p] : merged) out.push_back(std::move(p));
  return out;
}

}  // namespace vigil::verifier
