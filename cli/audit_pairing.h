#pragma once

// Pairing the containers Kubernetes manifests declare with the processes Vigil nodes
// observed (for `vigilctl audit compare`): by container id, by pod UID from the kubepods
// cgroup path, or by an explicit CONTAINER=SELECTOR mapping.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cli/audit_manifests.h"
#include "common/selector.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::cli {

/// What a kubelet-made cgroup path says about a container.
struct KubepodsCgroup {
  /// "guaranteed" (no QoS level in the path), "burstable" or "besteffort".
  std::string qos;
  /// The pod's metadata.uid, with dashes (the systemd driver writes underscores).
  std::string pod_uid;
  /// The container id (64 hex digits); empty for the pod's own cgroup.
  std::string container_id;
  /// "containerd", "crio", "docker", or "" for the cgroupfs driver's bare id.
  std::string runtime;
};

/// Parses a cgroup v2 path made by the kubelet, with the systemd driver
/// ("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/
/// cri-containerd-<id>.scope") or the cgroupfs driver ("/kubepods/burstable/pod<uid>/<id>"),
/// for containerd ("cri-containerd-"), CRI-O ("crio-") and Docker ("docker-") containers,
/// under any parent (a kind node nests it below "/kubelet.slice/kubelet-kubepods.slice").
/// nullopt when the path is not a pod's. CRI-O's conmon scopes are not containers.
std::optional<KubepodsCgroup> ParseKubepodsCgroup(absl::string_view path);

/// A process a node reported, as `audit compare` sees it.
struct ObservedProcess {
  std::string node_id;
  std::string hostname;
  v1::ProcessSnapshot snapshot;
  /// The policy workload the verifier placed the process in ("" when none).
  std::string workload;
};

/// An explicit pairing: `--pair [NAMESPACE/]NAME/CONTAINER=SELECTOR`.
struct PairRule {
  std::string namespace_name;  ///< "" matches any namespace
  std::string name;            ///< metadata.name of the object
  std::string container;
  Selector selector;
  std::string text;  ///< as given
};

/// Parses one --pair value; the selector is the node's selector language (common/selector.h).
absl::StatusOr<PairRule> ParsePairRule(const std::string& text);

/// A declared container and the processes paired with it.
struct Pairing {
  const DeclaredContainer* declared = nullptr;
  std::vector<const ObservedProcess*> processes;
  /// How: "--pair <text>", "container id", "pod uid", or "" when nothing paired.
  std::string paired_by;
};

/// Pairs every declared container, in declaration order: the first --pair rule naming it,
/// else the container id an exported Pod's status gives (the snapshot's container id, or the
/// one in its kubepods cgroup path), else, for an exported Pod (metadata.uid) that declares
/// exactly one container in all its lists, every process in a container cgroup of that pod.
std::vector<Pairing> PairContainers(const ManifestSet& manifests,
                                    const std::vector<ObservedProcess>& observed,
                                    const std::vector<PairRule>& rules);

}  // namespace vigil::cli
