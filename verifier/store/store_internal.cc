#include "verifier/store/store_internal.h"

#include <lz4.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "absl/time/clock.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/stubs/common.h"
#include "google/protobuf/wire_format_lite.h"
#include "spdlog/spdlog.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::verifier::store_internal {

int64_t NowUnixNanos() { return absl::ToUnixNanos(absl::Now()); }

std::string HostnameOf(const v1::Evidence& evidence) {
  // Walks the report's top-level fields and keeps the last hostname (as a parse would);
  // a payload that is not a well-formed message has none.
  using google::protobuf::internal::WireFormatLite;
  constexpr int kHostnameField = v1::RuntimeReport::kHostnameFieldNumber;
  const std::string& payload = evidence.payload();
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(payload.data()),
                                            static_cast<int>(payload.size()));
  std::string hostname;
  while (const uint32_t tag = in.ReadTag()) {
    if (WireFormatLite::GetTagFieldNumber(tag) == kHostnameField &&
        WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      uint32_t size = 0;
      if (!in.ReadVarint32(&size) || !in.ReadString(&hostname, static_cast<int>(size))) return "";
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return "";
    }
  }
  if (!in.ConsumedEntireMessage() || in.CurrentPosition() != static_cast<int>(payload.size())) {
    return "";
  }
  // A proto3 string: the full parse refused a report whose hostname is not UTF-8.
  if (!google::protobuf::internal::IsStructurallyValidUTF8(hostname)) return "";
  return hostname;
}

VerdictRecord MakeVerdictRecord(const std::string& node_id, const v1::Evidence& evidence,
                                const v1::Verdict& verdict) {
  VerdictRecord r;
  r.node_id = node_id;
  r.hostname = HostnameOf(evidence);
  r.evidence = EncodeStoredEvidence(evidence);
  r.verdict = EncodeStoredVerdict(verdict);
  r.status = verdict.status();
  r.appraised_unix_nano = verdict.appraised_unix_nano();
  r.evidence_sha256 = verdict.evidence_sha256();
  r.policy_digest = verdict.policy_digest();
  r.from_spool = verdict.from_spool();
  r.workloads.reserve(static_cast<size_t>(verdict.workloads_size()));
  for (const v1::WorkloadVerdict& w : verdict.workloads()) {
    r.workloads.push_back({w.workload_id(), w.identity().name(), w.status()});
  }
  return r;
}

// The compressed stored form: a 0 byte, the form's number, the uncompressed size as four
// little-endian bytes, then one LZ4 block.
constexpr std::string_view kCompressed("\0\2", 2);
constexpr size_t kCompressedHeader = kCompressed.size() + 4;
// LZ4 expands a block at most 255 times (a match grows by at most 255 bytes per byte of the
// block), so a size beyond that is corruption, refused before any memory is taken.
constexpr size_t kLz4MaxRatio = 255;

std::string CompressStored(std::string bytes) {
  if (bytes.size() <= kCompressedHeader || bytes.size() > LZ4_MAX_INPUT_SIZE) return bytes;
  const int size = static_cast<int>(bytes.size());
  std::string out(kCompressedHeader + static_cast<size_t>(LZ4_compressBound(size)), '\0');
  std::memcpy(out.data(), kCompressed.data(), kCompressed.size());
  for (size_t i = 0; i < 4; ++i) {
    out[kCompressed.size() + i] =
        static_cast<char>((static_cast<uint32_t>(size) >> (8 * i)) & 0xff);
  }
  const int block = LZ4_compress_default(bytes.data(), out.data() + kCompressedHeader, size,
                                         static_cast<int>(out.size() - kCompressedHeader));
  if (block <= 0 || kCompressedHeader + static_cast<size_t>(block) >= bytes.size()) return bytes;
  out.resize(kCompressedHeader + static_cast<size_t>(block));
  return out;
}

std::optional<std::string_view> ExpandStored(std::string_view stored, std::string& buffer) {
  if (!stored.starts_with(kCompressed)) return stored;
  if (stored.size() <= kCompressedHeader) return std::nullopt;
  uint32_t size = 0;
  for (size_t i = 0; i < 4; ++i) {
    size |= static_cast<uint32_t>(static_cast<uint8_t>(stored[kCompressed.size() + i])) << (8 * i);
  }
  const size_t block = stored.size() - kCompressedHeader;
  if (size > LZ4_MAX_INPUT_SIZE || size > block * kLz4MaxRatio ||
      block > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return std::nullopt;
  }
  buffer.resize(size);
  const int n = LZ4_decompress_safe(stored.data() + kCompressedHeader, buffer.data(),
                                    static_cast<int>(block), static_cast<int>(size));
  if (n < 0 || static_cast<uint32_t>(n) != size) return std::nullopt;
  return std::string_view(buffer);
}

namespace {

// The prefix of the compact stored form: a 0 tag byte (never a message's first byte), then
// the form's number.
constexpr std::string_view kCompactVerdict("\0\1", 2);

// Whether the last rules of `verdict` are its workloads' outcomes, in order. The fields that
// tell outcomes apart are compared, and each pair's size as the serialization just before
// cached it, so a copy that differs anywhere else is not taken for one.
bool EndsWithWorkloadRules(const v1::Verdict& verdict, int workload_rules) {
  int i = verdict.rules_size() - workload_rules;
  for (const v1::WorkloadVerdict& w : verdict.workloads()) {
    for (const v1::RuleOutcome& rule : w.rules()) {
      const v1::RuleOutcome& flat = verdict.rules(i++);
      if (flat.GetCachedSize() != rule.GetCachedSize() || flat.status() != rule.status() ||
          flat.pid() != rule.pid() || flat.rule_id() != rule.rule_id() ||
          flat.workload_id() != rule.workload_id() || flat.reason() != rule.reason() ||
          flat.observed() != rule.observed()) {
        return false;
      }
    }
  }
  return true;
}

// The compact form, uncompressed (or the whole message when the verdict has no such form).
std::string EncodeCompactVerdict(const v1::Verdict& verdict) {
  using google::protobuf::internal::WireFormatLite;
  std::string whole = verdict.SerializeAsString();
  int workload_rules = 0;
  for (const v1::WorkloadVerdict& w : verdict.workloads()) workload_rules += w.rules_size();
  if (workload_rules == 0 || verdict.rules_size() < workload_rules ||
      !EndsWithWorkloadRules(verdict, workload_rules)) {
    return whole;
  }
  // Copies every top-level field but the rules past the node's own.
  const int keep_rules = verdict.rules_size() - workload_rules;
  std::string out(kCompactVerdict);
  out.reserve(whole.size() + kCompactVerdict.size());
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(whole.data()),
                                            static_cast<int>(whole.size()));
  int rules_seen = 0;
  for (;;) {
    const int start = in.CurrentPosition();
    const uint32_t tag = in.ReadTag();
    if (tag == 0) break;
    if (!WireFormatLite::SkipField(&in, tag)) return whole;
    if (WireFormatLite::GetTagFieldNumber(tag) == v1::Verdict::kRulesFieldNumber &&
        rules_seen++ >= keep_rules) {
      continue;
    }
    out.append(whole, static_cast<size_t>(start),
               static_cast<size_t>(in.CurrentPosition() - start));
  }
  return out;
}

bool DecodeCompactVerdict(std::string_view bytes, v1::Verdict& verdict) {
  if (!bytes.starts_with(kCompactVerdict)) {
    return verdict.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  }
  bytes.remove_prefix(kCompactVerdict.size());
  if (!verdict.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return false;
  int workload_rules = 0;
  for (const v1::WorkloadVerdict& w : verdict.workloads()) workload_rules += w.rules_size();
  verdict.mutable_rules()->Reserve(verdict.rules_size() + workload_rules);
  for (const v1::WorkloadVerdict& w : verdict.workloads()) {
    for (const v1::RuleOutcome& rule : w.rules()) *verdict.add_rules() = rule;
  }
  return true;
}

}  // namespace

std::string EncodeStoredVerdict(const v1::Verdict& verdict) {
  return CompressStored(EncodeCompactVerdict(verdict));
}

bool DecodeStoredVerdict(std::string_view bytes, v1::Verdict& verdict) {
  std::string buffer;
  const std::optional<std::string_view> expanded = ExpandStored(bytes, buffer);
  return expanded.has_value() && DecodeCompactVerdict(*expanded, verdict);
}

std::string EncodeStoredEvidence(const v1::Evidence& evidence) {
  return CompressStored(evidence.SerializeAsString());
}

bool DecodeStoredEvidence(std::string_view bytes, v1::Evidence& evidence) {
  std::string buffer;
  const std::optional<std::string_view> expanded = ExpandStored(bytes, buffer);
  return expanded.has_value() &&
         evidence.ParseFromArray(expanded->data(), static_cast<int>(expanded->size()));
}

NodeResultSummary Materialize(const CachedNode& node) {
  NodeResultSummary s = node.summary;
  // The bytes were serialized by this process from a Verdict (or read back after a parse).
  if (!DecodeStoredVerdict(node.latest_verdict, s.latest_verdict)) {
    spdlog::error("store: node {}: cached verdict does not parse", s.node_id);
    s.latest_verdict.Clear();
  }
  return s;
}

uint32_t PageSize(uint32_t requested) {
  constexpr uint32_t kDefaultPageSize = 100;
  constexpr uint32_t kMaxPageSize = 1000;
  if (requested == 0) return kDefaultPageSize;
  return std::min(requested, kMaxPageSize);
}

absl::StatusOr<v1::PolicyInfo> PolicyToStore(const v1::PolicyInfo& policy) {
  if (policy.name().empty()) return absl::InvalidArgumentError("a policy needs a name");
  if (policy.revision() == 0 ||
      policy.revision() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return absl::InvalidArgumentError("a policy revision is a positive 63-bit number");
  }
  v1::PolicyInfo stored = policy;
  if (stored.updated_unix_nano() == 0) stored.set_updated_unix_nano(NowUnixNanos());
  return stored;
}

absl::Status SettleResults(const absl::Status& batch, std::vector<absl::Status>& results) {
  if (!batch.ok()) {
    spdlog::error("store: a batch of {} writes failed: {}", results.size(), batch.ToString());
    for (absl::Status& r : results) r = batch;
    return batch;
  }
  for (const absl::Status& r : results) {
    if (!r.ok()) return r;
  }
  return absl::OkStatus();
}

absl::StatusOr<RetentionResult> RetainUntilDone(
    const std::function<absl::StatusOr<RetentionResult>()>& pass) {
  RetentionResult total;
  for (;;) {
    absl::StatusOr<RetentionResult> one = pass();
    if (!one.ok()) return one.status();
    total.verdicts += one->verdicts;
    total.changes += one->changes;
    if (one->verdicts == 0 && one->changes == 0) return total;
  }
}

class Subscribers::Handle final : public Subscription {
 public:
  Handle(Subscribers* owner, uint64_t id) : owner_(owner), id_(id) {}
  ~Handle() override {
    std::lock_guard<std::mutex> lock(owner_->mu_);
    owner_->callbacks_.erase(id_);
  }

 private:
  Subscribers* const owner_;
  const uint64_t id_;
};

std::unique_ptr<Subscription> Subscribers::Add(std::function<void()> on_commit) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t id = ++next_;
  callbacks_[id] = std::move(on_commit);
  return std::make_unique<Handle>(this, id);
}

void Subscribers::Notify() {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, on_commit] : callbacks_) on_commit();
}

}  // namespace vigil::verifier::store_internal
