// Reading Kubernetes manifests into DeclaredContainers (cli/audit_manifests.h).

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cli/audit_manifests.h"
#include "common/escape.h"
#include "yaml-cpp/yaml.h"

namespace vigil::cli {
namespace {

// Manifests larger than this are refused rather than read whole into memory.
constexpr std::uintmax_t kMaxManifestBytes = 16 << 20;

// A malformed field: the audit stops with FILE:LINE:COL, like a syntax error.
class ShapeError : public std::runtime_error {
 public:
  ShapeError(const YAML::Mark& mark, const std::string& what)
      : std::runtime_error(what), mark_(mark) {}
  const YAML::Mark& mark() const { return mark_; }

 private:
  YAML::Mark mark_;
};

int Line(const YAML::Node& n) { return n.Mark().line + 1; }

// The value of `key` in map `n` and the line of the key itself; an undefined node when the
// key is absent or `n` is not a map.
std::pair<YAML::Node, int> Entry(const YAML::Node& n, const char* key) {
  if (!n.IsMap()) return {YAML::Node(YAML::NodeType::Undefined), 0};
  for (const auto& kv : n) {
    if (kv.first.IsScalar() && kv.first.Scalar() == key) return {kv.second, Line(kv.first)};
  }
  return {YAML::Node(YAML::NodeType::Undefined), 0};
}

bool Present(const YAML::Node& n) { return n.IsDefined() && !n.IsNull(); }

YAML::Node MapAt(const YAML::Node& parent, const char* key, const std::string& where) {
  auto [n, line] = Entry(parent, key);
  if (!Present(n)) return YAML::Node(YAML::NodeType::Undefined);
  if (!n.IsMap()) throw ShapeError(n.Mark(), absl::StrCat(where, key, " must be a mapping"));
  return n;
}

std::string ScalarAt(const YAML::Node& parent, const char* key) {
  auto [n, line] = Entry(parent, key);
  return Present(n) && n.IsScalar() ? n.Scalar() : "";
}

Declared<bool> BoolAt(const YAML::Node& parent, const char* key, const std::string& where) {
  Declared<bool> out;
  auto [n, line] = Entry(parent, key);
  if (!Present(n)) return out;
  out.line = line;
  bool value = false;
  if (!n.IsScalar() || !YAML::convert<bool>::decode(n, value)) {
    throw ShapeError(n.Mark(), absl::StrCat(where, key, " must be true or false"));
  }
  out.value = value;
  return out;
}

Declared<std::string> StringAt(const YAML::Node& parent, const char* key,
                               const std::string& where) {
  Declared<std::string> out;
  auto [n, line] = Entry(parent, key);
  if (!Present(n)) return out;
  if (!n.IsScalar()) throw ShapeError(n.Mark(), absl::StrCat(where, key, " must be a string"));
  out.value = n.Scalar();
  out.line = line;
  return out;
}

// The pod template of a workload kind, as the path from the object to it; empty for kinds
// that hold none.
const std::map<std::string, std::vector<const char*>>& TemplatePaths() {
  static const auto* paths = new std::map<std::string, std::vector<const char*>>{
      {"Pod", {}},
      {"Deployment", {"spec", "template"}},
      {"StatefulSet", {"spec", "template"}},
      {"DaemonSet", {"spec", "template"}},
      {"ReplicaSet", {"spec", "template"}},
      {"Job", {"spec", "template"}},
      {"CronJob", {"spec", "jobTemplate", "spec", "template"}},
  };
  return *paths;
}

std::string StripRuntimePrefix(const std::string& id) {
  size_t sep = id.find("://");
  return sep == std::string::npos ? id : id.substr(sep + 3);
}

class Loader {
 public:
  explicit Loader(ManifestSet* out) : out_(out) {}

  absl::Status File(const std::string& path) {
    std::error_code ec;
    const std::uintmax_t size = std::filesystem::file_size(path, ec);
    if (ec) return absl::NotFoundError(absl::StrCat(path, ": ", ec.message()));
    if (size > kMaxManifestBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": larger than ", kMaxManifestBytes, " bytes"));
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot be read"));
    std::stringstream text;
    text << in.rdbuf();
    out_->files.push_back(path);
    file_ = path;
    try {
      for (const YAML::Node& doc : YAML::LoadAll(text.str())) Object(doc);
    } catch (const ShapeError& e) {
      return Located(e.mark(), e.what());
    } catch (const YAML::Exception& e) {
      return Located(e.mark, e.msg);
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Located(const YAML::Mark& mark, const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat(file_, ":", mark.line + 1, ":", mark.column + 1,
                                                   ": ", EscapeUntrusted(what, 200)));
  }

  void Object(const YAML::Node& doc) {
    if (!Present(doc)) return;  // an empty document ("---" at the end)
    if (!doc.IsMap()) throw ShapeError(doc.Mark(), "a manifest must be a mapping");
    const std::string kind = ScalarAt(doc, "kind");
    if (kind == "List" || absl::EndsWith(kind, "List")) {
      auto [items, line] = Entry(doc, "items");
      if (Present(items) && !items.IsSequence()) {
        throw ShapeError(items.Mark(), "items must be a sequence");
      }
      if (Present(items)) {
        for (const YAML::Node& item : items) Object(item);
      }
      return;
    }
    auto path = TemplatePaths().find(kind);
    if (path == TemplatePaths().end()) {
      out_->skipped.push_back({file_, Line(doc), kind});
      return;
    }
    ++out_->objects;
    const YAML::Node metadata = MapAt(doc, "metadata", "");
    DeclaredContainer base;
    base.file = file_;
    base.kind = kind;
    base.name = ScalarAt(metadata, "name");
    base.namespace_name = ScalarAt(metadata, "namespace");
    if (kind == "Pod") base.pod_uid = ScalarAt(metadata, "uid");
    // Node::operator= would write into the document: walk with reset().
    YAML::Node pod = doc;
    std::string where;
    for (const char* step : path->second) {
      pod.reset(MapAt(pod, step, where));
      if (!pod.IsDefined()) {
        throw ShapeError(doc.Mark(), absl::StrCat(kind, " ", base.name, " has no ", where, step));
      }
      absl::StrAppend(&where, step, ".");
    }
    const YAML::Node spec = MapAt(pod, "spec", where);
    if (!spec.IsDefined()) {
      throw ShapeError(pod.Mark(), absl::StrCat(kind, " ", base.name, " has no ", where, "spec"));
    }
    absl::StrAppend(&where, "spec.");
    PodSpec(doc, spec, where, base);
  }

  void PodSpec(const YAML::Node& doc, const YAML::Node& spec, const std::string& where,
               DeclaredContainer base) {
    base.host_pid = BoolAt(spec, "hostPID", where);
    base.host_ipc = BoolAt(spec, "hostIPC", where);
    base.host_network = BoolAt(spec, "hostNetwork", where);
    const std::string pod_sc_where = absl::StrCat(where, "securityContext.");
    const YAML::Node pod_sc = MapAt(spec, "securityContext", where);
    const YAML::Node pod_seccomp = MapAt(pod_sc, "seccompProfile", pod_sc_where);
    const Declared<std::string> pod_seccomp_type =
        StringAt(pod_seccomp, "type", absl::StrCat(pod_sc_where, "seccompProfile."));

    // containerID by container name, from an exported Pod's status.
    std::map<std::string, std::string> ids;
    const YAML::Node status = MapAt(doc, "status", "");
    for (const char* list :
         {"containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"}) {
      auto [statuses, line] = Entry(status, list);
      if (!Present(statuses) || !statuses.IsSequence()) continue;
      for (const YAML::Node& s : statuses) {
        const std::string id = ScalarAt(s, "containerID");
        if (!id.empty()) ids[ScalarAt(s, "name")] = StripRuntimePrefix(id);
      }
    }

    for (const char* list : {"initContainers", "containers", "ephemeralContainers"}) {
      auto [containers, line] = Entry(spec, list);
      if (!Present(containers)) continue;
      if (!containers.IsSequence()) {
        throw ShapeError(containers.Mark(), absl::StrCat(where, list, " must be a sequence"));
      }
      for (const YAML::Node& c : containers) {
        if (!c.IsMap()) {
          throw ShapeError(c.Mark(),
                           absl::StrCat("an entry of ", where, list, " must be a mapping"));
        }
        DeclaredContainer d = base;
        d.container = ScalarAt(c, "name");
        d.container_list = list;
        d.line = Line(c);
        if (auto id = ids.find(d.container); id != ids.end()) d.container_id = id->second;
        const std::string cw = absl::StrCat(where, list, "[", d.container, "].");
        Container(c, cw, pod_seccomp_type, d);
        out_->containers.push_back(std::move(d));
      }
    }
  }

  void Container(const YAML::Node& c, const std::string& where,
                 const Declared<std::string>& pod_seccomp_type, DeclaredContainer& d) {
    const std::string sw = absl::StrCat(where, "securityContext.");
    auto [sc, sc_line] = Entry(c, "securityContext");
    if (Present(sc) && !sc.IsMap()) {
      throw ShapeError(sc.Mark(), absl::StrCat(where, "securityContext must be a mapping"));
    }
    d.seccomp_type =
        StringAt(MapAt(sc, "seccompProfile", sw), "type", absl::StrCat(sw, "seccompProfile."));
    if (!d.seccomp_type.value.has_value() && pod_seccomp_type.value.has_value()) {
      d.seccomp_type = pod_seccomp_type;
      d.seccomp_from_pod = true;
    }
    d.allow_privilege_escalation = BoolAt(sc, "allowPrivilegeEscalation", sw);
    d.read_only_root_filesystem = BoolAt(sc, "readOnlyRootFilesystem", sw);
    d.privileged = BoolAt(sc, "privileged", sw);
    d.proc_mount = StringAt(sc, "procMount", sw);

    auto [caps, caps_line] = Entry(sc, "capabilities");
    if (!Present(caps)) return;
    if (!caps.IsMap())
      throw ShapeError(caps.Mark(), absl::StrCat(sw, "capabilities must be a mapping"));
    d.drops_all.line = caps_line;
    d.drops_all.value = false;
    for (const char* key : {"drop", "add"}) {
      auto [list, line] = Entry(caps, key);
      if (!Present(list)) continue;
      if (!list.IsSequence()) {
        throw ShapeError(list.Mark(),
                         absl::StrCat(sw, "capabilities.", key, " must be a sequence"));
      }
      for (const YAML::Node& cap : list) {
        if (!cap.IsScalar()) {
          throw ShapeError(cap.Mark(), absl::StrCat(sw, "capabilities.", key, " holds names"));
        }
        const std::string name = NormalizeCapability(cap.Scalar());
        if (std::string(key) == "drop") {
          d.drops_all.line = line;
          if (name == "ALL") d.drops_all.value = true;
        } else {
          d.added_capabilities.emplace_back(name, Line(cap));
        }
      }
    }
  }

  ManifestSet* out_;
  std::string file_;
};

bool IsManifestFile(const std::filesystem::path& p) {
  const std::string ext = p.extension().string();
  return ext == ".yaml" || ext == ".yml";
}

}  // namespace

std::string NormalizeCapability(const std::string& name) {
  std::string upper = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(name));
  if (upper == "ALL") return upper;
  return absl::StartsWith(upper, "CAP_") ? upper : absl::StrCat("CAP_", upper);
}

std::string DeclaredContainer::ObjectName() const {
  return absl::StrCat(namespace_name.empty() ? "" : namespace_name + "/", kind, "/", name);
}

absl::StatusOr<ManifestSet> LoadManifests(const std::vector<std::string>& paths) {
  ManifestSet out;
  Loader loader(&out);
  for (const std::string& path : paths) {
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (ec || !std::filesystem::exists(status)) {
      return absl::NotFoundError(absl::StrCat(path, ": no such file or directory"));
    }
    std::vector<std::string> files;
    if (std::filesystem::is_directory(status)) {
      std::filesystem::recursive_directory_iterator it(path, ec), end;
      for (; !ec && it != end; it.increment(ec)) {
        if (it->is_regular_file(ec) && IsManifestFile(it->path())) {
          files.push_back(it->path().string());
        }
      }
      if (ec) return absl::PermissionDeniedError(absl::StrCat(path, ": ", ec.message()));
      std::sort(files.begin(), files.end());
    } else {
      files.push_back(path);
    }
    for (const std::string& f : files) {
      if (absl::Status st = loader.File(f); !st.ok()) return st;
    }
  }
  return out;
}

}  // namespace vigil::cli
