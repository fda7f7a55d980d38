#include "verifier/results/ear_signer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/ear_verify.h"
#include "common/pki.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace vigil::verifier {
namespace {

constexpr char kKeyPrefix[] = "ear-";
constexpr char kKeySuffix[] = ".pem";

absl::Status ErrnoError(const char* what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

// Creates the key directory 0700, or checks that an existing one is private to its owner.
absl::Status EnsurePrivateDir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoError("mkdir", dir);
  struct stat st {};
  if (lstat(dir.c_str(), &st) != 0) return ErrnoError("stat", dir);
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("EAR key directory ", dir, " is not a directory"));
  }
  if ((st.st_mode & 077) != 0 || st.st_uid != geteuid()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "EAR key directory ", dir, " must be owned by this user with mode 0700 (it is ",
        absl::StrCat(absl::Hex(st.st_mode & 07777)), ")"));
  }
  return absl::OkStatus();
}

// Writes `contents` to a new file created 0600 by open() itself, then renames it into place
// so a crash never leaves a half-written key under the final name. Unlike common/pki's
// writers this never calls chmod: the file cannot have existed with another mode.
absl::Status CreateKeyFile(const std::string& path, const std::string& contents) {
  std::string tmp = absl::StrCat(path, ".tmp");
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ErrnoError("create", tmp);
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      absl::Status st = ErrnoError("write", tmp);
      close(fd);
      unlink(tmp.c_str());
      return st;
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    absl::Status st = ErrnoError("fsync/close", tmp);
    unlink(tmp.c_str());
    return st;
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    absl::Status st = ErrnoError("rename", tmp);
    unlink(tmp.c_str());
    return st;
  }
  return absl::OkStatus();
}

// Reads a key file, refusing one that group or others may read.
absl::StatusOr<std::string> ReadKeyFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return ErrnoError("open", path);
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("EAR key ", path, " must be a regular file with mode 0600"));
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status s = ErrnoError("read", path);
      close(fd);
      return s;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EarSigner>> EarSigner::Open(EarSignerConfig config, Clock clock) {
  if (config.key_dir.empty()) return absl::InvalidArgumentError("EAR key directory is not set");
  if (config.grace < absl::ZeroDuration() || config.max_key_age <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("EAR key age and grace must be positive");
  }
  if (config.published != nullptr && config.publish_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("EAR key publish interval must be positive");
  }
  RETURN_IF_ERROR(EnsurePrivateDir(config.key_dir));
  std::unique_ptr<EarSigner> signer(new EarSigner(std::move(config), std::move(clock)));
  {
    absl::MutexLock lock(&signer->mu_);
    RETURN_IF_ERROR(signer->LoadKeys());
    absl::Time now = signer->clock_();
    if (signer->keys_.empty() ||
        now - signer->keys_.back().created >= signer->config_.max_key_age) {
      RETURN_IF_ERROR(signer->RotateLocked());
    }
    signer->PruneLocked(now);
    // Every key still in its grace period, so the other replicas' JWKS verify what this one
    // signed before it restarted.
    for (size_t i = 0; i < signer->keys_.size(); ++i) {
      RETURN_IF_ERROR(signer->PublishKey(signer->keys_[i], signer->NotAfterLocked(i, now), now));
    }
    spdlog::info("EAR signing key kid={} ({} key(s) published{})", signer->keys_.back().kid,
                 signer->keys_.size(),
                 signer->config_.published != nullptr ? " to the shared store" : "");
  }
  if (signer->config_.published != nullptr) {
    signer->lease_thread_ = std::thread([s = signer.get()] { s->LeaseLoop(); });
  }
  return signer;
}

EarSigner::~EarSigner() {
  {
    absl::MutexLock lock(&lease_mu_);
    stopping_ = true;
  }
  if (lease_thread_.joinable()) lease_thread_.join();
}

void EarSigner::LeaseLoop() {
  lease_mu_.Lock();
  while (!lease_mu_.AwaitWithTimeout(absl::Condition(&stopping_), config_.publish_interval)) {
    lease_mu_.Unlock();
    if (absl::Status st = Publish(); !st.ok()) {
      // The lease covers two intervals: the next attempt may still extend it in time.
      spdlog::warn("could not extend the EAR signing key's lease: {}", st.ToString());
    }
    lease_mu_.Lock();
  }
  lease_mu_.Unlock();
}

absl::Time EarSigner::LeaseEnd(absl::Time now) const {
  return now + config_.grace + 2 * config_.publish_interval;
}

absl::Time EarSigner::NotAfterLocked(size_t i, absl::Time now) const {
  if (i + 1 < keys_.size()) return keys_[i + 1].created + config_.grace;
  return LeaseEnd(now);
}

absl::Status EarSigner::PublishKey(const Key& key, absl::Time not_after, absl::Time now) const {
  if (config_.published == nullptr) return absl::OkStatus();
  absl::Status st = config_.published->Publish(
      PublishedEarKey{key.kid, key.public_jwk.dump(), key.created, not_after}, now);
  if (!st.ok()) {
    return absl::Status(st.code(),
                        absl::StrCat("publishing EAR key kid=", key.kid, ": ", st.message()));
  }
  return absl::OkStatus();
}

absl::Status EarSigner::Publish() {
  absl::ReaderMutexLock lock(&mu_);
  const absl::Time now = clock_();
  return PublishKey(keys_.back(), NotAfterLocked(keys_.size() - 1, now), now);
}

absl::StatusOr<EarSigner::Key> EarSigner::MakeKey(absl::Time created, std::string path,
                                                  EvpPkeyPtr pkey) {
  ASSIGN_OR_RETURN(nlohmann::json jwk, EcPublicJwk(pkey.get()));
  ASSIGN_OR_RETURN(std::string kid, JwkThumbprint(jwk));
  jwk["kid"] = kid;
  jwk["alg"] = "ES256";
  jwk["use"] = "sig";
  std::string header =
      Base64UrlEncode(nlohmann::json{{"alg", "ES256"}, {"typ", "JWT"}, {"kid", kid}}.dump());
  return Key{created,        std::move(path), std::move(pkey),
             std::move(jwk), std::move(kid),  std::move(header)};
}

absl::Status EarSigner::LoadKeys() {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir(config_.key_dir.c_str()), &closedir);
  if (dir == nullptr) return ErrnoError("opendir", config_.key_dir);
  while (dirent* entry = readdir(dir.get())) {
    absl::string_view name = entry->d_name;
    if (!absl::ConsumePrefix(&name, kKeyPrefix) || !absl::ConsumeSuffix(&name, kKeySuffix)) {
      continue;
    }
    int64_t created_ns = 0;
    if (!absl::SimpleAtoi(name, &created_ns)) continue;
    std::string path = absl::StrCat(config_.key_dir, "/", entry->d_name);
    ASSIGN_OR_RETURN(std::string pem, ReadKeyFile(path));
    auto pkey = PrivateKeyFromPem(pem);
    if (!pkey.ok()) {
      return absl::DataLossError(
          absl::StrCat("EAR key ", path, " does not parse as a private key"));
    }
    ASSIGN_OR_RETURN(Key key,
                     MakeKey(absl::FromUnixNanos(created_ns), path, std::move(pkey).value()));
    keys_.push_back(std::move(key));
  }
  std::sort(keys_.begin(), keys_.end(),
            [](const Key& a, const Key& b) { return a.created < b.created; });
  return absl::OkStatus();
}

absl::Status EarSigner::Rotate() {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(RotateLocked());
  const absl::Time now = clock_();
  // The retired key's lease becomes its grace period.
  const size_t retired = keys_.size() - 2;
  if (absl::Status st = PublishKey(keys_[retired], NotAfterLocked(retired, now), now); !st.ok()) {
    spdlog::warn("{} (it stays published until its lease ends)", st.ToString());
  }
  PruneLocked(now);
  spdlog::info("EAR signing key rotated: kid={}", keys_.back().kid);
  return absl::OkStatus();
}

absl::Status EarSigner::RotateLocked() {
  absl::Time created = clock_();
  // Creation times name the files and order the keys, so they must strictly increase.
  if (!keys_.empty() && created <= keys_.back().created) {
    created = keys_.back().created + absl::Nanoseconds(1);
  }
  ASSIGN_OR_RETURN(EvpPkeyPtr pkey, GenerateKey());
  ASSIGN_OR_RETURN(std::string pem, PrivateKeyToPem(pkey.get()));
  std::string path =
      absl::StrCat(config_.key_dir, "/", kKeyPrefix, absl::ToUnixNanos(created), kKeySuffix);
  RETURN_IF_ERROR(CreateKeyFile(path, pem));
  ASSIGN_OR_RETURN(Key key, MakeKey(created, path, std::move(pkey)));
  // Published before it signs: a token is never out before the key that verifies it.
  const absl::Time now = clock_();
  if (absl::Status st = PublishKey(key, LeaseEnd(now), now); !st.ok()) {
    unlink(path.c_str());
    return st;
  }
  keys_.push_back(std::move(key));
  return absl::OkStatus();
}

bool EarSigner::PublishedLocked(size_t i, absl::Time now) const {
  if (i + 1 == keys_.size()) return true;
  // A key retired when its successor was created.
  return now < keys_[i + 1].created + config_.grace;
}

void EarSigner::PruneLocked(absl::Time now) {
  std::vector<Key> kept;
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (PublishedLocked(i, now)) {
      kept.push_back(std::move(keys_[i]));
    } else if (unlink(keys_[i].path.c_str()) != 0 && errno != ENOENT) {
      spdlog::warn("could not delete retired EAR key kid={}: {}", keys_[i].kid,
                   std::strerror(errno));
    }
  }
  keys_ = std::move(kept);
}

absl::StatusOr<std::string> EarSigner::Sign(const nlohmann::json& claims) const {
  absl::ReaderMutexLock lock(&mu_);
  const Key& key = keys_.back();
  std::string token = absl::StrCat(key.header_b64, ".", Base64UrlEncode(claims.dump()));
  ASSIGN_OR_RETURN(std::string signature, SignEs256(token, key.pkey.get()));
  absl::StrAppend(&token, ".", signature);
  return token;
}

absl::StatusOr<std::string> EarSigner::SignVerdict(const v1::Verdict& verdict) const {
  return Sign(BuildEarClaims(verdict, config_.verifier_id, clock_()));
}

absl::StatusOr<std::string> EarSigner::Jwks() const {
  const absl::Time now = clock_();
  std::vector<std::pair<absl::Time, nlohmann::json>> keys;  // (created, public JWK)
  std::set<std::string> kids;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (size_t i = 0; i < keys_.size(); ++i) {
      if (!PublishedLocked(i, now)) continue;
      keys.emplace_back(keys_[i].created, keys_[i].public_jwk);
      kids.insert(keys_[i].kid);
    }
  }
  if (config_.published != nullptr) {
    absl::StatusOr<std::vector<PublishedEarKey>> published = config_.published->Published(now);
    if (!published.ok()) {
      return absl::UnavailableError(absl::StrCat("reading the EAR keys the replicas published: ",
                                                 published.status().message()));
    }
    for (const PublishedEarKey& p : *published) {
      if (!kids.insert(p.kid).second) continue;
      nlohmann::json jwk = nlohmann::json::parse(p.jwk_json, nullptr, false);
      if (!jwk.is_object() || !jwk.contains("kid") || jwk["kid"] != p.kid) {
        spdlog::warn("published EAR key kid={} is not a JWK with that kid; not served", p.kid);
        continue;
      }
      keys.emplace_back(p.created, std::move(jwk));
    }
  }
  std::stable_sort(keys.begin(), keys.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  nlohmann::json out = nlohmann::json::array();
  for (auto& [created, jwk] : keys) out.push_back(std::move(jwk));
  return nlohmann::json{{"keys", std::move(out)}}.dump();
}

std::string EarSigner::current_kid() const {
  absl::ReaderMutexLock lock(&mu_);
  return keys_.back().kid;
}

}  // namespace vigil::verifier
