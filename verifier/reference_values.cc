#include "verifier/reference_values.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <limits>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/digest.h"
#include "common/escape.h"
#include "common/measurement_log.h"

namespace vigil::verifier {
namespace {

constexpr const char* kReferenceTypes[] = {
    kEventNodeStart,    kEventNodeBinary, kEventBpfObject,  kEventBpfProgramTags,
    kEventPolicyBundle, kEventNoPolicy,   kEventTpmRestart,
};

// "file:line" for a YAML node (yaml-cpp counts lines from 0).
std::string Where(const std::string& name, const YAML::Node& node) {
  return absl::StrCat(name, ":", node.Mark().line + 1);
}

absl::StatusOr<std::string> ParseDigest(const std::string& hex, const std::string& where) {
  auto bytes = HexDecode(hex);
  if (!bytes.ok() || bytes->size() != 32) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": not a SHA-256 digest (64 hex digits): \"", EscapeUntrusted(hex, 80), "\""));
  }
  return *bytes;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return ss.str();
}

absl::StatusOr<YAML::Node> ParseYaml(const std::string& yaml, const std::string& name) {
  try {
    return YAML::Load(yaml);
  } catch (const YAML::ParserException& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ":", e.mark.line + 1, ": not YAML: ", e.msg));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": not YAML: ", e.what()));
  }
}

// The line of the first "<64 hex> [description]" line: the retired untyped text format.
std::optional<int> FirstUntypedTextLine(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    std::string trimmed(absl::StripAsciiWhitespace(line));
    if (trimmed.empty() || trimmed[0] == '#') continue;
    std::string first = trimmed.substr(0, trimmed.find_first_of(" \t"));
    auto bytes = HexDecode(first);
    if (bytes.ok() && bytes->size() == 32) return number;
    return std::nullopt;
  }
  return std::nullopt;
}

std::string Scalar(const YAML::Node& node) {
  return node && node.IsScalar() ? node.Scalar() : std::string();
}

}  // namespace

bool IsReferenceEventType(std::string_view type) {
  for (const char* t : kReferenceTypes) {
    if (type == t) return true;
  }
  return false;
}

absl::StatusOr<ReferenceValues> ReferenceValues::Load(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  return Parse(*text, path);
}

absl::StatusOr<ReferenceValues> ReferenceValues::Parse(const std::string& yaml,
                                                       const std::string& name) {
  if (std::optional<int> line = FirstUntypedTextLine(yaml)) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ":", *line,
        ": untyped reference value (\"<digest> <description>\" lines are no longer read): each "
        "digest must name its event type; regenerate the file with `vigil-node "
        "reference-values --out FILE`"));
  }
  auto root = ParseYaml(yaml, name);
  if (!root.ok()) return root.status();
  YAML::Node list = root->IsMap() ? (*root)["reference_values"] : YAML::Node();
  if (!list || !list.IsSequence()) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": needs a key reference_values: with a list of {type, digest, description}"));
  }
  ReferenceValues out;
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node item = list[i];
    const std::string where = Where(name, item);
    if (!item.IsMap() || !item["digest"]) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": reference_values[", i, "] is not a {type, digest} entry"));
    }
    if (!item["type"]) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": reference_values[", i,
          "] has no type: an untyped digest would be accepted for any measurement; name its "
          "event type (vigil-node-binary, bpf-object, ...)"));
    }
    const std::string type = Scalar(item["type"]);
    if (!IsReferenceEventType(type)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": reference_values[", i, "].type \"", EscapeUntrusted(type, 80),
                       "\" is not one of: ", absl::StrJoin(kReferenceTypes, ", ")));
    }
    auto digest = ParseDigest(Scalar(item["digest"]), where);
    if (!digest.ok()) return digest.status();
    out.Add(type, std::move(*digest), Scalar(item["description"]));
  }
  return out;
}

void ReferenceValues::Add(std::string type, std::string digest, std::string description) {
  digests_[{std::move(type), std::move(digest)}] = std::move(description);
}

bool ReferenceValues::Contains(std::string_view type, std::string_view digest) const {
  return digests_.find(std::pair<std::string, std::string>(type, digest)) != digests_.end();
}

std::optional<std::string> ReferenceValues::TypeOf(std::string_view digest) const {
  for (const auto& [key, description] : digests_) {
    if (key.second == digest) return key.first;
  }
  return std::nullopt;
}

std::string ReferenceValues::Describe(std::string_view type, std::string_view digest) const {
  auto it = digests_.find(std::pair<std::string, std::string>(type, digest));
  return it == digests_.end() ? "" : it->second;
}

absl::StatusOr<BootReferenceValues> BootReferenceValues::Load(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  return Parse(*text, path);
}

absl::StatusOr<BootReferenceValues> BootReferenceValues::Parse(const std::string& yaml,
                                                               const std::string& name) {
  auto root = ParseYaml(yaml, name);
  if (!root.ok()) return root.status();
  YAML::Node list = root->IsMap() ? (*root)["node_classes"] : YAML::Node();
  if (!list || !list.IsSequence() || list.size() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": needs a key node_classes: with a list of {name, pcrs}"));
  }
  BootReferenceValues out;
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node item = list[i];
    const std::string where = Where(name, item);
    if (!item.IsMap() || Scalar(item["name"]).empty() || !item["pcrs"] || !item["pcrs"].IsMap() ||
        item["pcrs"].size() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": node_classes[", i, "] needs a name and pcrs: {<index 0-7>: <64 hex>, ...}"));
    }
    NodeClass node_class{Scalar(item["name"]), {}};
    for (const auto& pcr : item["pcrs"]) {
      const std::string at = Where(name, pcr.first);
      uint32_t index = 0;
      if (!absl::SimpleAtoi(Scalar(pcr.first), &index) || index > 7) {
        return absl::InvalidArgumentError(
            absl::StrCat(at, ": node class ", EscapeUntrusted(node_class.name, 80), ": PCR \"",
                         EscapeUntrusted(Scalar(pcr.first), 80), "\" is not a boot PCR (0-7)"));
      }
      auto digest = ParseDigest(Scalar(pcr.second), at);
      if (!digest.ok()) return digest.status();
      node_class.pcrs[index] = std::move(*digest);
    }
    out.AddClass(std::move(node_class));
  }
  return out;
}

absl::StatusOr<std::string> BootReferenceValues::Match(
    const std::map<uint32_t, std::string>& quoted) const {
  std::string closest;
  size_t fewest = std::numeric_limits<size_t>::max();
  for (const NodeClass& c : classes_) {
    std::vector<std::string> differences;
    for (const auto& [index, expected] : c.pcrs) {
      auto it = quoted.find(index);
      if (it == quoted.end()) {
        differences.push_back(
            absl::StrCat("PCR ", index, " expected ", HexEncode(expected), " got (not quoted)"));
      } else if (it->second != expected) {
        differences.push_back(absl::StrCat("PCR ", index, " expected ", HexEncode(expected),
                                           " got ", HexEncode(it->second)));
      }
    }
    if (differences.empty()) return c.name;
    if (differences.size() < fewest) {
      fewest = differences.size();
      closest = absl::StrCat("closest node class ", EscapeUntrusted(c.name, 80), ": ",
                             absl::StrJoin(differences, "; "));
    }
  }
  return absl::FailedPreconditionError(closest);
}

}  // namespace vigil::verifier
