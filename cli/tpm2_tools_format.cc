#include "cli/tpm2_tools_format.h"

#include <fcntl.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace vigil::cli {
namespace {

// Layout of tpm2-tools' serialized PCR file: the C structs written with fwrite on a
// little-endian machine, padding included.
constexpr size_t kSelectionEntrySize = 8;  // UINT16 hash, UINT8 sizeofSelect, BYTE[4], pad
constexpr size_t kSelectionSize = 4 + TPM2_NUM_PCR_BANKS * kSelectionEntrySize;  // 132
constexpr size_t kDigestEntrySize = 2 + sizeof(TPMU_HA);                         // 66
constexpr size_t kDigestsPerList = 8;
constexpr size_t kDigestListSize = 4 + kDigestsPerList * kDigestEntrySize;  // 532
constexpr size_t kHeaderSize = kSelectionSize + 4;
// tpm2-tools keeps at most TPM2_MAX_PCRS digest lists (its tpm2_pcrs array).
constexpr size_t kMaxDigestLists = TPM2_MAX_PCRS;

uint16_t Le16(const char* p) {
  return static_cast<uint16_t>(static_cast<uint8_t>(p[0]) | static_cast<uint8_t>(p[1]) << 8);
}
uint32_t Le32(const char* p) {
  return static_cast<uint32_t>(Le16(p)) | static_cast<uint32_t>(Le16(p + 2)) << 16;
}
void PutLe16(std::string& out, size_t at, uint16_t v) {
  out[at] = static_cast<char>(v & 0xff);
  out[at + 1] = static_cast<char>(v >> 8);
}
void PutLe32(std::string& out, size_t at, uint32_t v) {
  PutLe16(out, at, static_cast<uint16_t>(v & 0xffff));
  PutLe16(out, at + 2, static_cast<uint16_t>(v >> 16));
}

const EVP_MD* MdForTpmHash(TPMI_ALG_HASH alg) {
  switch (alg) {
    case TPM2_ALG_SHA1:
      return EVP_sha1();
    case TPM2_ALG_SHA256:
      return EVP_sha256();
    case TPM2_ALG_SHA384:
      return EVP_sha384();
    case TPM2_ALG_SHA512:
      return EVP_sha512();
    default:
      return nullptr;
  }
}

absl::Status CheckSelection(const TPML_PCR_SELECTION& selection) {
  if (selection.count == 0 || selection.count > TPM2_NUM_PCR_BANKS) {
    return absl::InvalidArgumentError(
        absl::StrCat("PCR selection has ", selection.count, " banks (1 to 16 allowed)"));
  }
  for (uint32_t i = 0; i < selection.count; ++i) {
    const TPMS_PCR_SELECTION& s = selection.pcrSelections[i];
    if (TpmDigestSize(s.hash) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("PCR selection names unsupported hash algorithm 0x", absl::Hex(s.hash)));
    }
    if (s.sizeofSelect > TPM2_PCR_SELECT_MAX) {
      return absl::InvalidArgumentError(
          absl::StrCat("PCR selection bitmap of ", s.sizeofSelect, " bytes (at most 4)"));
    }
  }
  return absl::OkStatus();
}

// The PCR indices `s` selects, ascending.
std::vector<uint32_t> SelectedIndices(const TPMS_PCR_SELECTION& s) {
  std::vector<uint32_t> out;
  for (uint32_t pcr = 0; pcr < s.sizeofSelect * 8u; ++pcr) {
    if (s.pcrSelect[pcr / 8] & (1u << (pcr % 8))) out.push_back(pcr);
  }
  return out;
}

// Every digest must have its bank's size, bank by bank in selection order.
absl::Status CheckDigestSizes(const PcrFile& pcrs) {
  size_t next = 0;
  for (uint32_t i = 0; i < pcrs.selection.count; ++i) {
    const TPMS_PCR_SELECTION& s = pcrs.selection.pcrSelections[i];
    const size_t want = TpmDigestSize(s.hash);
    for (uint32_t pcr : SelectedIndices(s)) {
      if (next >= pcrs.digests.size()) {
        return absl::InvalidArgumentError("PCR file has fewer digests than its selection");
      }
      if (pcrs.digests[next].size() != want) {
        return absl::InvalidArgumentError(absl::StrCat("PCR ", pcr, " digest has ",
                                                       pcrs.digests[next].size(),
                                                       " bytes, its bank needs ", want));
      }
      ++next;
    }
  }
  if (next != pcrs.digests.size()) {
    return absl::InvalidArgumentError("PCR file has more digests than its selection");
  }
  return absl::OkStatus();
}

}  // namespace

size_t TpmDigestSize(TPMI_ALG_HASH alg) {
  const EVP_MD* md = MdForTpmHash(alg);
  return md == nullptr ? 0 : static_cast<size_t>(EVP_MD_get_size(md));
}

size_t CountSelectedPcrs(const TPML_PCR_SELECTION& selection) {
  size_t n = 0;
  for (uint32_t i = 0; i < selection.count && i < TPM2_NUM_PCR_BANKS; ++i) {
    n += SelectedIndices(selection.pcrSelections[i]).size();
  }
  return n;
}

bool SameSelection(const TPML_PCR_SELECTION& a, const TPML_PCR_SELECTION& b) {
  auto flatten = [](const TPML_PCR_SELECTION& sel) {
    std::vector<std::pair<TPMI_ALG_HASH, uint32_t>> out;
    for (uint32_t i = 0; i < sel.count && i < TPM2_NUM_PCR_BANKS; ++i) {
      for (uint32_t pcr : SelectedIndices(sel.pcrSelections[i])) {
        out.emplace_back(sel.pcrSelections[i].hash, pcr);
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  return flatten(a) == flatten(b);
}

absl::StatusOr<PcrFile> ParseSerializedPcrs(std::string_view bytes) {
  if (bytes.size() < kHeaderSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("PCR file too short for the serialized format (", bytes.size(), " bytes)"));
  }
  PcrFile out;
  const char* p = bytes.data();
  out.selection.count = Le32(p);
  if (out.selection.count > TPM2_NUM_PCR_BANKS) {
    return absl::InvalidArgumentError(
        absl::StrCat("PCR file selects ", out.selection.count, " banks (at most 16)"));
  }
  for (uint32_t i = 0; i < out.selection.count; ++i) {
    const char* e = p + 4 + i * kSelectionEntrySize;
    TPMS_PCR_SELECTION& s = out.selection.pcrSelections[i];
    s.hash = Le16(e);
    s.sizeofSelect = static_cast<uint8_t>(e[2]);
    if (s.sizeofSelect > TPM2_PCR_SELECT_MAX) {
      return absl::InvalidArgumentError("PCR file has a selection bitmap longer than 4 bytes");
    }
    std::memcpy(s.pcrSelect, e + 3, s.sizeofSelect);
  }
  RETURN_IF_ERROR(CheckSelection(out.selection));

  const uint32_t lists = Le32(p + kSelectionSize);
  if (lists > kMaxDigestLists) {
    return absl::InvalidArgumentError(
        absl::StrCat("PCR file claims ", lists, " digest lists (at most 32)"));
  }
  if (bytes.size() != kHeaderSize + lists * kDigestListSize) {
    return absl::InvalidArgumentError(absl::StrCat("PCR file is ", bytes.size(),
                                                   " bytes; its header says ",
                                                   kHeaderSize + lists * kDigestListSize));
  }
  for (uint32_t l = 0; l < lists; ++l) {
    const char* list = p + kHeaderSize + l * kDigestListSize;
    const uint32_t count = Le32(list);
    if (count > kDigestsPerList) {
      return absl::InvalidArgumentError(
          absl::StrCat("PCR file digest list holds ", count, " digests (at most 8)"));
    }
    for (uint32_t d = 0; d < count; ++d) {
      const char* entry = list + 4 + d * kDigestEntrySize;
      const uint16_t size = Le16(entry);
      if (size > sizeof(TPMU_HA)) {
        return absl::InvalidArgumentError("PCR file digest larger than 64 bytes");
      }
      out.digests.emplace_back(entry + 2, size);
    }
  }
  RETURN_IF_ERROR(CheckDigestSizes(out));
  return out;
}

absl::StatusOr<PcrFile> ParseValuesPcrs(std::string_view bytes,
                                        const TPML_PCR_SELECTION& selection) {
  RETURN_IF_ERROR(CheckSelection(selection));
  PcrFile out;
  out.selection = selection;
  size_t offset = 0;
  for (uint32_t i = 0; i < selection.count; ++i) {
    const size_t size = TpmDigestSize(selection.pcrSelections[i].hash);
    for (size_t n = SelectedIndices(selection.pcrSelections[i]).size(); n > 0; --n) {
      if (bytes.size() - offset < size) {
        return absl::InvalidArgumentError(absl::StrCat(
            "PCR values file is ", bytes.size(), " bytes, too short for the quote's selection"));
      }
      out.digests.emplace_back(bytes.substr(offset, size));
      offset += size;
    }
  }
  if (offset != bytes.size()) {
    return absl::InvalidArgumentError(absl::StrCat("PCR values file is ", bytes.size(),
                                                   " bytes, the quote's selection needs ", offset));
  }
  return out;
}

absl::StatusOr<PcrFile> ParsePcrsAuto(std::string_view bytes, const TPML_PCR_SELECTION& selection) {
  const bool looks_serialized =
      bytes.size() >= kHeaderSize && (bytes.size() - kHeaderSize) % kDigestListSize == 0 &&
      Le32(bytes.data()) <= TPM2_NUM_PCR_BANKS &&
      Le32(bytes.data() + kSelectionSize) == (bytes.size() - kHeaderSize) / kDigestListSize;
  if (looks_serialized) return ParseSerializedPcrs(bytes);
  return ParseValuesPcrs(bytes, selection);
}

absl::StatusOr<std::string> SerializePcrs(const PcrFile& pcrs) {
  RETURN_IF_ERROR(CheckSelection(pcrs.selection));
  RETURN_IF_ERROR(CheckDigestSizes(pcrs));
  const size_t lists = (pcrs.digests.size() + kDigestsPerList - 1) / kDigestsPerList;
  if (lists > kMaxDigestLists) return absl::InvalidArgumentError("too many PCR digests");
  std::string out(kHeaderSize + lists * kDigestListSize, '\0');
  PutLe32(out, 0, pcrs.selection.count);
  for (uint32_t i = 0; i < pcrs.selection.count; ++i) {
    const TPMS_PCR_SELECTION& s = pcrs.selection.pcrSelections[i];
    const size_t at = 4 + i * kSelectionEntrySize;
    PutLe16(out, at, s.hash);
    out[at + 2] = static_cast<char>(s.sizeofSelect);
    std::memcpy(out.data() + at + 3, s.pcrSelect, s.sizeofSelect);
  }
  PutLe32(out, kSelectionSize, static_cast<uint32_t>(lists));
  for (size_t d = 0; d < pcrs.digests.size(); ++d) {
    const size_t list_at = kHeaderSize + (d / kDigestsPerList) * kDigestListSize;
    const size_t in_list = d % kDigestsPerList;
    PutLe32(out, list_at,
            static_cast<uint32_t>(std::min(kDigestsPerList, pcrs.digests.size() - d + in_list)));
    const size_t at = list_at + 4 + in_list * kDigestEntrySize;
    PutLe16(out, at, static_cast<uint16_t>(pcrs.digests[d].size()));
    std::memcpy(out.data() + at + 2, pcrs.digests[d].data(), pcrs.digests[d].size());
  }
  return out;
}

absl::StatusOr<PcrFile> Sha256PcrFile(const std::vector<std::pair<uint32_t, std::string>>& values) {
  if (values.empty()) return absl::InvalidArgumentError("no PCR values");
  PcrFile out;
  out.selection.count = 1;
  TPMS_PCR_SELECTION& s = out.selection.pcrSelections[0];
  s.hash = TPM2_ALG_SHA256;
  s.sizeofSelect = 3;
  int64_t previous = -1;
  for (const auto& [index, digest] : values) {
    if (index >= TPM2_PCR_SELECT_MAX * 8u) {
      return absl::InvalidArgumentError(absl::StrCat("PCR index ", index, " out of range"));
    }
    if (static_cast<int64_t>(index) <= previous) {
      return absl::InvalidArgumentError("PCR values are not in strictly ascending index order");
    }
    if (digest.size() != 32) {
      return absl::InvalidArgumentError(
          absl::StrCat("PCR ", index, " value has ", digest.size(), " bytes, not 32"));
    }
    previous = index;
    s.sizeofSelect = std::max<uint8_t>(s.sizeofSelect, static_cast<uint8_t>(index / 8 + 1));
    s.pcrSelect[index / 8] |= static_cast<uint8_t>(1u << (index % 8));
    out.digests.push_back(digest);
  }
  return out;
}

absl::StatusOr<std::string> PcrCompositeDigest(const PcrFile& pcrs, TPMI_ALG_HASH alg) {
  const EVP_MD* md = MdForTpmHash(alg);
  if (md == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported hash algorithm 0x", absl::Hex(alg)));
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1) {
    return absl::InternalError("EVP_DigestInit_ex failed");
  }
  for (const std::string& d : pcrs.digests) {
    if (EVP_DigestUpdate(ctx.get(), d.data(), d.size()) != 1) {
      return absl::InternalError("EVP_DigestUpdate failed");
    }
  }
  std::string out(EVP_MD_get_size(md), '\0');
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len) != 1) {
    return absl::InternalError("EVP_DigestFinal_ex failed");
  }
  return out;
}

absl::StatusOr<AkPublic> ParseAkPublic(std::string_view bytes) {
  AkPublic out;
  if (bytes.find("-----BEGIN") != std::string_view::npos) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())), BIO_free);
    if (!bio) return absl::InternalError("BIO_new_mem_buf failed");
    out.key.reset(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
    if (!out.key) return absl::InvalidArgumentError("not a PEM public key");
    return out;
  }
  ASSIGN_OR_RETURN(tpm::TpmPublic pub, tpm::ParseTpm2bPublic(bytes));
  ASSIGN_OR_RETURN(out.key, tpm::PublicKeyOf(pub.area));
  out.tpm_public = std::move(pub);
  return out;
}

absl::StatusOr<std::string> PublicKeyPem(EVP_PKEY* key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) {
    return absl::InternalError("cannot write the public key as PEM");
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

absl::StatusOr<std::string> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": ", std::strerror(errno)));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read failed"));
  return std::move(buffer).str();
}

absl::Status WriteFileBytes(const std::string& path, std::string_view bytes, int mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return absl::PermissionDeniedError(absl::StrCat(path, ": ", std::strerror(errno)));
  absl::Cleanup closer = [fd] { ::close(fd); };
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(path, ": ", std::strerror(errno)));
  }
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::DataLossError(absl::StrCat(path, ": ", std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace vigil::cli
