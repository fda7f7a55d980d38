#include "verifier/reference_values.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/digest.h"

namespace vigil::verifier {
namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

absl::StatusOr<std::string> ParseDigest(const std::string& hex, const std::string& where) {
  auto bytes = HexDecode(hex);
  if (!bytes.ok() || bytes->size() != 32) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": not a SHA-256 digest (64 hex digits): \"", hex, "\""));
  }
  return *bytes;
}

absl::StatusOr<ReferenceValues> LoadYaml(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what()));
  }
  YAML::Node list = root.IsMap() ? root["reference_values"] : YAML::Node();
  if (!list || !list.IsSequence()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": key reference_values: must be a list of digests"));
  }
  ReferenceValues out;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string where = absl::StrCat(path, ": key reference_values[", i, "]");
    const YAML::Node item = list[i];
    try {
      std::string hex;
      std::string description;
      if (item.IsScalar()) {
        hex = item.as<std::string>();
      } else if (item.IsMap() && item["digest"]) {
        hex = item["digest"].as<std::string>();
        if (item["description"]) description = item["description"].as<std::string>();
      } else {
        return absl::InvalidArgumentError(absl::StrCat(where, ": needs a digest"));
      }
      auto digest = ParseDigest(hex, where + ".digest");
      if (!digest.ok()) return digest.status();
      out.Add(std::move(*digest), std::move(description));
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", e.what()));
    }
  }
  return out;
}

absl::StatusOr<ReferenceValues> LoadText(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  ReferenceValues out;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    std::string_view rest = line;
    if (size_t hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
    std::string trimmed(absl::StripAsciiWhitespace(std::string(rest)));
    if (trimmed.empty()) continue;
    size_t space = trimmed.find_first_of(" \t");
    std::string hex = trimmed.substr(0, space);
    std::string description = space == std::string::npos
                                  ? ""
                                  : std::string(absl::StripAsciiWhitespace(trimmed.substr(space)));
    auto digest = ParseDigest(hex, absl::StrCat(path, ":", number));
    if (!digest.ok()) return digest.status();
    out.Add(std::move(*digest), std::move(description));
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return out;
}

}  // namespace

absl::StatusOr<ReferenceValues> ReferenceValues::Load(const std::string& path) {
  if (EndsWith(path, ".yaml") || EndsWith(path, ".yml")) return LoadYaml(path);
  return LoadText(path);
}

void ReferenceValues::Add(std::string digest, std::string description) {
  digests_[std::move(digest)] = std::move(description);
}

bool ReferenceValues::Contains(std::string_view digest) const {
  return digests_.find(digest) != digests_.end();
}

std::string ReferenceValues::Describe(std::string_view digest) const {
  auto it = digests_.find(digest);
  return it == digests_.end() ? "" : it->second;
}

}  // namespace vigil::verifier
