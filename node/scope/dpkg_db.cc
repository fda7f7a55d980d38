#include "node/scope/dpkg_db.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace vigil::node {
namespace {

// The trees whose files are indexed (see the class comment).
constexpr absl::string_view kIndexedPrefixes[] = {"/bin/",         "/sbin/",     "/lib",
                                                  "/usr/bin/",     "/usr/sbin/", "/usr/lib",
                                                  "/usr/libexec/", "/usr/games/"};

// The top-level directories that usr-merge made symlinks into /usr.
constexpr absl::string_view kMergedDirs[] = {"/bin/",   "/sbin/",  "/lib/",
                                             "/lib32/", "/lib64/", "/libx32/"};

bool Indexed(absl::string_view path) {
  for (absl::string_view p : kIndexedPrefixes) {
    if (absl::StartsWith(path, p)) return true;
  }
  return false;
}

// The same file's other name under usr-merge: /bin/x <-> /usr/bin/x; empty when none.
std::string MergedAlias(absl::string_view path) {
  for (absl::string_view d : kMergedDirs) {
    if (absl::StartsWith(path, d)) return absl::StrCat("/usr", path);
    if (absl::StartsWith(path, "/usr") && absl::StartsWith(path.substr(4), d)) {
      return std::string(path.substr(4));
    }
  }
  return "";
}

struct Installed {
  std::string arch;
  std::string version;
};

// Package name -> its installed instances, from dpkg's status file.
absl::flat_hash_map<std::string, std::vector<Installed>> ParseStatus(std::istream& in) {
  absl::flat_hash_map<std::string, std::vector<Installed>> out;
  std::string name, status, arch, version, line;
  auto flush = [&] {
    if (!name.empty() && absl::EndsWith(status, " installed")) {
      out[name].push_back(Installed{arch, version});
    }
    name.clear();
    status.clear();
    arch.clear();
    version.clear();
  };
  while (std::getline(in, line)) {
    if (line.empty()) {
      flush();
      continue;
    }
    if (line[0] == ' ' || line[0] == '\t') continue;  // a continuation line
    absl::string_view l = line;
    if (absl::ConsumePrefix(&l, "Package:")) name = std::string(absl::StripAsciiWhitespace(l));
    if (absl::ConsumePrefix(&l, "Status:")) status = std::string(absl::StripAsciiWhitespace(l));
    if (absl::ConsumePrefix(&l, "Architecture:")) {
      arch = std::string(absl::StripAsciiWhitespace(l));
    }
    if (absl::ConsumePrefix(&l, "Version:")) version = std::string(absl::StripAsciiWhitespace(l));
  }
  flush();
  return out;
}

}  // namespace

DpkgDatabase::DpkgDatabase(std::string root, absl::Duration recheck_interval)
    : root_(std::move(root)), recheck_interval_(recheck_interval) {}

std::optional<v1::PackageRef> DpkgDatabase::Owner(absl::string_view path) {
  MaybeReload();
  if (const v1::PackageRef* p = Find(path); p != nullptr) return *p;
  if (std::string alias = MergedAlias(path); !alias.empty()) {
    if (const v1::PackageRef* p = Find(alias); p != nullptr) return *p;
  }
  return std::nullopt;
}

const v1::PackageRef* DpkgDatabase::Find(absl::string_view path) const {
  auto it = index_.find(path);
  return it == index_.end() ? nullptr : &packages_[it->second];
}

void DpkgDatabase::MaybeReload() {
  const absl::Time now = absl::Now();
  if (now - last_check_ < recheck_interval_) return;
  last_check_ = now;
  struct stat st {};
  const std::string status = root_ + "/status";
  if (stat(status.c_str(), &st) != 0) {
    std::string why = absl::StrCat("dpkg database ", status, ": ", std::strerror(errno),
                                   "; every file is reported unpackaged");
    if (why != error_) spdlog::warn("{}", why);
    error_ = std::move(why);
    index_.clear();
    packages_.clear();
    loaded_.reset();
    return;
  }
  Identity id{st.st_dev, st.st_ino,
              static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
              st.st_size};
  if (loaded_ && *loaded_ == id) return;
  Load(id);
}

void DpkgDatabase::Load(const Identity& status_id) {
  index_.clear();
  packages_.clear();
  error_.clear();
  ++loads_;
  std::ifstream status(root_ + "/status");
  if (!status) {
    error_ = absl::StrCat("dpkg database ", root_,
                          "/status cannot be read; every file is "
                          "reported unpackaged");
    spdlog::warn("{}", error_);
    return;
  }
  auto installed = ParseStatus(status);
  std::error_code ec;
  std::filesystem::directory_iterator it(root_ + "/info", ec), end;
  if (ec) {
    error_ = absl::StrCat("dpkg database ", root_, "/info: ", ec.message(),
                          "; every file is reported unpackaged");
    spdlog::warn("{}", error_);
    return;
  }
  for (; it != end; it.increment(ec)) {
    if (ec) break;
    std::string file = it->path().filename().string();
    absl::string_view stem = file;
    if (!absl::ConsumeSuffix(&stem, ".list")) continue;
    // "<name>.list" or "<name>:<arch>.list" (Multi-Arch: same packages).
    std::vector<absl::string_view> parts = absl::StrSplit(stem, absl::MaxSplits(':', 1));
    const std::string name(parts[0]);
    const absl::string_view arch = parts.size() > 1 ? parts[1] : absl::string_view();
    auto pkg = installed.find(name);
    if (pkg == installed.end()) continue;  // listed but not installed (half-removed)
    const Installed* inst = nullptr;
    for (const Installed& i : pkg->second) {
      if (arch.empty() || i.arch == arch) {
        inst = &i;
        break;
      }
    }
    if (inst == nullptr) continue;
    v1::PackageRef ref;
    ref.set_name(name);
    ref.set_version(inst->version);
    ref.set_architecture(arch.empty() ? inst->arch : std::string(arch));
    const uint32_t idx = static_cast<uint32_t>(packages_.size());
    bool used = false;
    std::ifstream list(it->path());
    std::string line;
    while (std::getline(list, line)) {
      if (!Indexed(line)) continue;
      used |= index_.try_emplace(line, idx).second;
    }
    if (used) packages_.push_back(std::move(ref));
  }
  loaded_ = status_id;
  spdlog::debug("dpkg database {}: {} packages, {} paths indexed", root_, packages_.size(),
                index_.size());
}

}  // namespace vigil::node
