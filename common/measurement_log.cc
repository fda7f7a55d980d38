#include "common/measurement_log.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/pki.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace vigil {
namespace {

constexpr char kFormat[] = "vigil-cel-json/1";
constexpr char kContentType[] = "vigil";

using Json = nlohmann::json;

absl::Status Invalid(uint64_t index, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("measurement log record ", index, ": ", what));
}

absl::StatusOr<MeasurementRecord> ParseRecord(const Json& j, uint64_t index) {
  if (!j.is_object()) return Invalid(index, "not an object");
  MeasurementRecord r;
  auto recnum = j.find("recnum");
  if (recnum == j.end() || !recnum->is_number_unsigned()) return Invalid(index, "bad recnum");
  r.recnum = recnum->get<uint64_t>();
  if (r.recnum != index) return Invalid(index, "records out of order");
  auto pcr = j.find("pcr");
  if (pcr == j.end() || !pcr->is_number_unsigned() || pcr->get<uint64_t>() > 23) {
    return Invalid(index, "bad pcr");
  }
  r.pcr = pcr->get<uint32_t>();
  auto digests = j.find("digests");
  if (digests == j.end() || !digests->is_array()) return Invalid(index, "no digests");
  bool have_sha256 = false;
  for (const Json& d : *digests) {
    if (!d.is_object()) return Invalid(index, "bad digest");
    auto alg = d.find("hashAlg");
    auto hex = d.find("digest");
    if (alg == d.end() || !alg->is_string() || hex == d.end() || !hex->is_string()) {
      return Invalid(index, "bad digest");
    }
    if (alg->get<std::string>() != "sha256") continue;
    absl::StatusOr<std::string> bytes = HexDecode(hex->get<std::string>());
    if (!bytes.ok() || bytes->size() != r.digest.size()) {
      return Invalid(index, "sha256 digest is not 32 hex-encoded bytes");
    }
    std::memcpy(r.digest.data(), bytes->data(), r.digest.size());
    have_sha256 = true;
  }
  if (!have_sha256) return Invalid(index, "no sha256 digest");
  auto type = j.find("content_type");
  auto content = j.find("content");
  if (type == j.end() || !type->is_string() || type->get<std::string>() != kContentType ||
      content == j.end() || !content->is_object()) {
    return Invalid(index, "content is not a vigil event");
  }
  auto event = content->find("event_type");
  auto detail = content->find("detail");
  if (event == content->end() || !event->is_string() || detail == content->end() ||
      !detail->is_string()) {
    return Invalid(index, "content lacks event_type or detail");
  }
  r.event_type = event->get<std::string>();
  r.detail = detail->get<std::string>();
  return r;
}

void Extend(Sha256Digest& pcr, std::string_view digest) {
  pcr = Sha256Concat({DigestBytes(pcr), digest});
}

}  // namespace

absl::StatusOr<MeasurementLog> ParseMeasurementLog(std::string_view json) {
  Json j = Json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("measurement log is not a JSON object");
  }
  auto format = j.find("format");
  if (format == j.end() || !format->is_string() || format->get<std::string>() != kFormat) {
    return absl::InvalidArgumentError(absl::StrCat("measurement log format is not ", kFormat));
  }
  MeasurementLog log;
  auto boot = j.find("boot_id");
  if (boot == j.end() || !boot->is_string()) {
    return absl::InvalidArgumentError("measurement log has no boot_id");
  }
  log.boot_id = boot->get<std::string>();
  auto records = j.find("records");
  if (records == j.end() || !records->is_array()) {
    return absl::InvalidArgumentError("measurement log has no records array");
  }
  for (const Json& r : *records) {
    ASSIGN_OR_RETURN(MeasurementRecord rec, ParseRecord(r, log.records.size()));
    log.records.push_back(std::move(rec));
  }
  return log;
}

std::string SerializeMeasurementLog(const MeasurementLog& log) {
  Json records = Json::array();
  for (const MeasurementRecord& r : log.records) {
    records.push_back({
        {"recnum", r.recnum},
        {"pcr", r.pcr},
        {"digests", Json::array({{{"hashAlg", "sha256"}, {"digest", HexEncode(r.digest)}}})},
        {"content_type", kContentType},
        {"content", {{"event_type", r.event_type}, {"detail", r.detail}}},
    });
  }
  Json j = {{"format", kFormat}, {"boot_id", log.boot_id}, {"records", std::move(records)}};
  // Replace invalid UTF-8 in details (paths) rather than throwing.
  return j.dump(1, ' ', false, Json::error_handler_t::replace) + "\n";
}

absl::StatusOr<MeasurementLog> ReadMeasurementLog(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat("no measurement log at ", path));
    return absl::InternalError(absl::StrCat("open ", path, ": ", std::strerror(errno)));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  absl::StatusOr<MeasurementLog> log = ParseMeasurementLog(ss.str());
  if (!log.ok()) {
    return absl::Status(log.status().code(), absl::StrCat(path, ": ", log.status().message()));
  }
  return log;
}

absl::Status WriteMeasurementLog(const std::string& path, const MeasurementLog& log) {
  std::filesystem::path target(path);
  std::filesystem::path dir = target.parent_path().empty() ? "." : target.parent_path();
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) return absl::InternalError(absl::StrCat("mkdir ", dir.string(), ": ", ec.message()));
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::replace, ec);
  }
  return ReplacePrivateFileAtomically(path, SerializeMeasurementLog(log));
}

Sha256Digest ReplayPcr(const std::vector<MeasurementRecord>& records, uint32_t pcr) {
  Sha256Digest value{};
  for (const MeasurementRecord& r : records) {
    if (r.pcr == pcr) Extend(value, DigestBytes(r.digest));
  }
  return value;
}

absl::Status ExtendPcr(Sha256Digest& pcr, const v1::MeasurementLogEntry& entry) {
  if (entry.digest().size() != pcr.size()) {
    return absl::InvalidArgumentError(absl::StrCat("measurement log entry ", entry.recnum(),
                                                   " has a ", entry.digest().size(),
                                                   "-byte digest, not 32"));
  }
  Extend(pcr, entry.digest());
  return absl::OkStatus();
}

absl::StatusOr<Sha256Digest> ReplayPcr(
    const google::protobuf::RepeatedPtrField<v1::MeasurementLogEntry>& entries, uint32_t pcr) {
  Sha256Digest value{};
  for (const v1::MeasurementLogEntry& e : entries) {
    if (e.pcr() == pcr) RETURN_IF_ERROR(ExtendPcr(value, e));
  }
  return value;
}

size_t CurrentEpochStart(const std::vector<MeasurementRecord>& records) {
  for (size_t i = records.size(); i > 0; --i) {
    if (records[i - 1].event_type == kEventTpmRestart) return i - 1;
  }
  return 0;
}

v1::MeasurementLogEntry ToProto(const MeasurementRecord& record) {
  v1::MeasurementLogEntry e;
  e.set_recnum(record.recnum);
  e.set_pcr(record.pcr);
  e.set_digest(std::string(DigestBytes(record.digest)));
  e.set_event_type(record.event_type);
  e.set_content(record.detail);
  return e;
}

}  // namespace vigil
