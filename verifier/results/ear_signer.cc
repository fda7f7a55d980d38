#include "verifier/results/ear_signer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

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
  RETURN_IF_ERROR(EnsurePrivateDir(config.key_dir));
  std::unique_ptr<EarSigner> signer(new EarSigner(std::move(config), std::move(clock)));
  absl::MutexLock lock(&signer->mu_);
  RETURN_IF_ERROR(signer->LoadKeys());
  absl::Time now = signer->clock_();
  if (signer->keys_.empty() || now - signer->keys_.back().created >= signer->config_.max_key_age) {
    RETURN_IF_ERROR(signer->RotateLocked());
  }
  signer->PruneLocked(now);
  spdlog::info("EAR signing key kid={} ({} key(s) published)", signer->keys_.back().kid,
               signer->keys_.size());
  return signer;
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
    ASSIGN_OR_RETURN(nlohmann::json jwk, EcPublicJwk(pkey->get()));
    ASSIGN_OR_RETURN(std::string kid, JwkThumbprint(jwk));
    jwk["kid"] = kid;
    jwk["alg"] = "ES256";
    jwk["use"] = "sig";
    keys_.push_back(Key{absl::FromUnixNanos(created_ns), path, std::move(pkey).value(),
                        std::move(jwk), std::move(kid)});
  }
  std::sort(keys_.begin(), keys_.end(),
            [](const Key& a, const Key& b) { return a.created < b.created; });
  return absl::OkStatus();
}

absl::Status EarSigner::Rotate() {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(RotateLocked());
  PruneLocked(clock_());
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
  ASSIGN_OR_RETURN(nlohmann::json jwk, EcPublicJwk(pkey.get()));
  ASSIGN_OR_RETURN(std::string kid, JwkThumbprint(jwk));
  jwk["kid"] = kid;
  jwk["alg"] = "ES256";
  jwk["use"] = "sig";
  keys_.push_back(Key{created, path, std::move(pkey), std::move(jwk), std::move(kid)});
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
  nlohmann::json header{{"alg", "ES256"}, {"typ", "JWT"}, {"kid", key.kid}};
  std::string signing_input =
      absl::StrCat(Base64UrlEncode(header.dump()), ".", Base64UrlEncode(claims.dump()));
  ASSIGN_OR_RETURN(std::string signature, SignEs256(signing_input, key.pkey.get()));
  return absl::StrCat(signing_input, ".", signature);
}

absl::StatusOr<std::string> EarSigner::SignVerdict(const v1::Verdict& verdict) const {
  return Sign(BuildEarClaims(verdict, config_.verifier_id, clock_()));
}

std::string EarSigner::Jwks() const {
  absl::ReaderMutexLock lock(&mu_);
  absl::Time now = clock_();
  nlohmann::json keys = nlohmann::json::array();
  for (size_t i = keys_.size(); i-- > 0;) {
    if (PublishedLocked(i, now)) keys.push_back(keys_[i].public_jwk);
  }
  return nlohmann::json{{"keys", std::move(keys)}}.dump();
}

std::string EarSigner::current_kid() const {
  absl::ReaderMutexLock lock(&mu_);
  return keys_.back().kid;
}

}  // namespace vigil::verifier
