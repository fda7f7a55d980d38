#include "node/spool/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/pki.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "spdlog/spdlog.h"

namespace vigil::node::spool {
namespace {

constexpr char kStateFile[] = "spool.state";
constexpr char kCorruptDir[] = "corrupt";
constexpr char kRefusedDir[] = "refused";

absl::Status FsyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.Valid()) return absl::ErrnoToStatus(errno, absl::StrCat("open ", dir));
  if (::fsync(fd.Get()) != 0) return absl::ErrnoToStatus(errno, absl::StrCat("fsync ", dir));
  return absl::OkStatus();
}

absl::Status MakeDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("spool directory ", dir, " cannot be created: ", ec.message()));
  }
  ::chmod(dir.c_str(), 0700);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SpoolState> ParseSpoolState(std::string_view text) {
  SpoolState state;
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(text.data(), text.size()), '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
    uint64_t value = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[1], &value)) {
      return absl::InvalidArgumentError(absl::StrCat("malformed spool state line of ", line.size(),
                                                     " bytes (want \"name value\")"));
    }
    if (parts[0] == "dropped_batches") state.counters.dropped_batches = value;
    if (parts[0] == "dropped_events") state.counters.dropped_events = value;
    if (parts[0] == "corrupt_batches") state.counters.corrupt_batches = value;
    if (parts[0] == "refused_batches") state.counters.refused_batches = value;
    if (parts[0] == "next_sequence") state.next_sequence = value;
  }
  return state;
}

std::string SerializeSpoolState(const SpoolState& state) {
  const SpoolCounters& c = state.counters;
  return absl::StrCat("dropped_batches ", c.dropped_batches, "\ndropped_events ", c.dropped_events,
                      "\ncorrupt_batches ", c.corrupt_batches, "\nrefused_batches ",
                      c.refused_batches, "\nnext_sequence ", state.next_sequence, "\n");
}

absl::StatusOr<std::unique_ptr<Spool>> Spool::Open(Options options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("no spool directory");
  if (options.max_bytes == 0) return absl::InvalidArgumentError("spool size bound is 0 bytes");
  RETURN_IF_ERROR(MakeDir(options.dir));
  // Prove now, naming the path, that batches can be written here: an outage is the wrong
  // moment to find out.
  const std::string probe = options.dir + "/.write-test";
  {
    UniqueFd fd(::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd.Valid() || ::fsync(fd.Get()) != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "spool directory ", options.dir, " is not writable: ", std::strerror(errno)));
    }
  }
  ::unlink(probe.c_str());
  std::unique_ptr<Spool> spool(new Spool(std::move(options)));
  RETURN_IF_ERROR(spool->Load());
  return spool;
}

absl::Status Spool::Load() {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::string> text = ReadFileToString(options_.dir + "/" + kStateFile);
  if (text.ok()) {
    absl::StatusOr<SpoolState> state = ParseSpoolState(*text);
    if (state.ok()) {
      counters_ = state->counters;
      next_sequence_ = std::max<uint64_t>(state->next_sequence, 1);
    } else {
      spdlog::error("spool state {}/{} unreadable ({}); counters start from zero", options_.dir,
                    kStateFile, state.status().ToString());
    }
  } else if (!absl::IsNotFound(text.status())) {
    return text.status();
  }
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(options_.dir, ec)) {
    std::optional<uint64_t> sequence = ParseBatchFileName(entry.path().filename().string());
    if (!sequence.has_value() || !entry.is_regular_file()) continue;
    uint64_t size = entry.file_size(ec);
    if (ec) continue;
    batches_[*sequence] = size;
    bytes_ += size;
    next_sequence_ = std::max(next_sequence_, *sequence + 1);
  }
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("spool directory ", options_.dir, " cannot be listed: ", ec.message()));
  }
  if (!batches_.empty()) {
    spdlog::info("spool {} holds {} batch(es), {} bytes, from a previous run", options_.dir,
                 batches_.size(), bytes_);
  }
  return absl::OkStatus();
}

std::string Spool::PathOf(uint64_t sequence) const {
  return absl::StrCat(options_.dir, "/", BatchFileName(sequence));
}

absl::StatusOr<uint64_t> Spool::Append(int64_t written_unix_nano, uint64_t log_recnum,
                                       uint32_t events, const std::string& payload) {
  if (payload.size() > kMaxBatchPayloadBytes) {
    return absl::ResourceExhaustedError(absl::StrCat("spool batch payload of ", payload.size(),
                                                     " bytes exceeds ", kMaxBatchPayloadBytes));
  }
  absl::MutexLock lock(&mu_);
  Batch batch{next_sequence_, written_unix_nano, log_recnum, events, payload};
  std::string bytes = EncodeBatch(batch);
  if (bytes.size() > options_.max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("spool batch of ", bytes.size(),
                                                     " bytes exceeds the spool bound of ",
                                                     options_.max_bytes, " bytes"));
  }
  bool dropped = false;
  while (!batches_.empty() && bytes_ + bytes.size() > options_.max_bytes) {
    RETURN_IF_ERROR(DropOldestLocked());
    dropped = true;
  }
  // Temporary file, fsync, rename, directory fsync: a crash leaves whole batches only.
  RETURN_IF_ERROR(ReplacePrivateFileAtomically(PathOf(batch.sequence), bytes));
  batches_[batch.sequence] = bytes.size();
  bytes_ += bytes.size();
  ++next_sequence_;
  absl::Status saved = SaveCountersLocked();
  if (!saved.ok()) {
    spdlog::error("spool state not saved: {}", saved.ToString());
    if (dropped) return saved;
  }
  return batch.sequence;
}

absl::Status Spool::DropOldestLocked() {
  auto oldest = batches_.begin();
  const uint64_t sequence = oldest->first;
  uint32_t events = 0;
  // The events of the dropped batch are counted as lost; a batch that does not decode
  // counts as none (it would have been set aside as corrupt anyway).
  if (absl::StatusOr<std::string> bytes = ReadFileToString(PathOf(sequence)); bytes.ok()) {
    if (absl::StatusOr<Batch> batch = DecodeBatch(*bytes); batch.ok()) events = batch->events;
  }
  if (::unlink(PathOf(sequence).c_str()) != 0 && errno != ENOENT) {
    return absl::ErrnoToStatus(errno, absl::StrCat("unlink ", PathOf(sequence)));
  }
  bytes_ -= oldest->second;
  batches_.erase(oldest);
  ++counters_.dropped_batches;
  counters_.dropped_events += events;
  spdlog::warn("spool {} full ({} bytes bound): dropped batch {} ({} events)", options_.dir,
               options_.max_bytes, sequence, events);
  return absl::OkStatus();
}

std::vector<uint64_t> Spool::Sequences() const {
  absl::MutexLock lock(&mu_);
  std::vector<uint64_t> out;
  out.reserve(batches_.size());
  for (const auto& [sequence, size] : batches_) out.push_back(sequence);
  return out;
}

std::optional<uint64_t> Spool::Oldest() const {
  absl::MutexLock lock(&mu_);
  if (batches_.empty()) return std::nullopt;
  return batches_.begin()->first;
}

absl::StatusOr<Batch> Spool::Read(uint64_t sequence) {
  absl::MutexLock lock(&mu_);
  if (!batches_.contains(sequence)) {
    return absl::NotFoundError(absl::StrCat("spool batch ", sequence, " is not held"));
  }
  absl::StatusOr<std::string> bytes = ReadFileToString(PathOf(sequence));
  absl::StatusOr<Batch> batch =
      bytes.ok() ? DecodeBatch(*bytes) : absl::StatusOr<Batch>(bytes.status());
  if (batch.ok() && batch->sequence != sequence) {
    batch = absl::DataLossError(
        absl::StrCat("the file of batch ", sequence, " holds batch ", batch->sequence));
  }
  if (batch.ok()) return batch;
  spdlog::error("spool batch {} is corrupt ({}); moved to {}/{}/ and skipped", sequence,
                std::string(batch.status().message()), options_.dir, kCorruptDir);
  ++counters_.corrupt_batches;
  if (absl::Status moved = MoveAsideLocked(sequence, kCorruptDir); !moved.ok()) {
    spdlog::error("could not set corrupt batch {} aside: {}", sequence, moved.ToString());
  }
  if (absl::Status saved = SaveCountersLocked(); !saved.ok()) {
    spdlog::error("spool state not saved: {}", saved.ToString());
  }
  return absl::DataLossError(
      absl::StrCat("spool batch ", sequence, " is corrupt: ", batch.status().message()));
}

absl::Status Spool::Remove(uint64_t sequence) {
  absl::MutexLock lock(&mu_);
  auto it = batches_.find(sequence);
  if (it == batches_.end()) return absl::OkStatus();
  if (::unlink(PathOf(sequence).c_str()) != 0 && errno != ENOENT) {
    return absl::ErrnoToStatus(errno, absl::StrCat("unlink ", PathOf(sequence)));
  }
  bytes_ -= it->second;
  batches_.erase(it);
  return FsyncDir(options_.dir);
}

absl::Status Spool::SetAside(uint64_t sequence, const std::string& why) {
  absl::MutexLock lock(&mu_);
  if (!batches_.contains(sequence)) return absl::OkStatus();
  spdlog::error("spool batch {} refused by the verifier ({}); moved to {}/{}/", sequence, why,
                options_.dir, kRefusedDir);
  ++counters_.refused_batches;
  RETURN_IF_ERROR(MoveAsideLocked(sequence, kRefusedDir));
  return SaveCountersLocked();
}

absl::Status Spool::MoveAsideLocked(uint64_t sequence, const std::string& subdir) {
  auto it = batches_.find(sequence);
  if (it == batches_.end()) return absl::OkStatus();
  bytes_ -= it->second;
  batches_.erase(it);
  const std::string aside = absl::StrCat(options_.dir, "/", subdir);
  RETURN_IF_ERROR(MakeDir(aside));
  const std::string to = absl::StrCat(aside, "/", BatchFileName(sequence));
  if (::rename(PathOf(sequence).c_str(), to.c_str()) != 0) {
    absl::Status st = absl::ErrnoToStatus(errno, absl::StrCat("rename to ", to));
    // Not movable: delete it rather than offer it again.
    ::unlink(PathOf(sequence).c_str());
    return st;
  }
  RETURN_IF_ERROR(FsyncDir(aside));
  return FsyncDir(options_.dir);
}

absl::Status Spool::SaveCountersLocked() {
  return ReplacePrivateFileAtomically(absl::StrCat(options_.dir, "/", kStateFile),
                                      SerializeSpoolState({counters_, next_sequence_}));
}

SpoolCounters Spool::counters() const {
  absl::MutexLock lock(&mu_);
  return counters_;
}

uint64_t Spool::bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

size_t Spool::size() const {
  absl::MutexLock lock(&mu_);
  return batches_.size();
}

}  // namespace vigil::node::spool
