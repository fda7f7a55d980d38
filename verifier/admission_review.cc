#include "verifier/admission_review.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace vigil::verifier {
namespace {

using Json = nlohmann::json;

constexpr char kApiVersion[] = "admission.k8s.io/v1";
constexpr char kKind[] = "AdmissionReview";

// The string at `key` of `object`, "" when absent; an error when present and not a string.
absl::StatusOr<std::string> OptionalString(const Json& object, const char* key,
                                           absl::string_view where) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::string();
  if (!it->is_string())
    return absl::InvalidArgumentError(absl::StrCat(where, key, " is not a string"));
  return it->get<std::string>();
}

// The object at `key`, or nullptr when absent or null; an error when present and not an object.
absl::StatusOr<const Json*> OptionalObject(const Json& object, const char* key,
                                           absl::string_view where) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  if (!it->is_object())
    return absl::InvalidArgumentError(absl::StrCat(where, key, " is not an object"));
  return &*it;
}

std::string ShortId(const std::string& node_id) { return node_id.substr(0, 12); }

bool IsNodeId(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) return false;
  }
  return true;
}

// Whether `hostname` (from a node's report) names Kubernetes node `node_name`: equal ignoring
// case, or its first label is.
bool HostnameMatches(absl::string_view hostname, absl::string_view node_name) {
  if (hostname.empty()) return false;
  if (absl::EqualsIgnoreCase(hostname, node_name)) return true;
  const size_t dot = hostname.find('.');
  return dot != absl::string_view::npos &&
         absl::EqualsIgnoreCase(hostname.substr(0, dot), node_name);
}

// What one request asks, once parsed and checked.
struct ReviewRequest {
  std::string uid;
  std::string operation;
  std::string resource;      // request.resource.resource, e.g. "pods"
  std::string sub_resource;  // e.g. "binding"
  std::string name;          // request.name
  std::string name_space;    // request.namespace
  bool dry_run = false;
  const Json* object = nullptr;
};

absl::StatusOr<ReviewRequest> ParseReview(absl::string_view body, Json* document) {
  *document = Json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (document->is_discarded()) return absl::InvalidArgumentError("the body is not JSON");
  if (!document->is_object()) return absl::InvalidArgumentError("the body is not a JSON object");
  absl::StatusOr<std::string> api_version = OptionalString(*document, "apiVersion", "");
  absl::StatusOr<std::string> kind = OptionalString(*document, "kind", "");
  if (!api_version.ok()) return api_version.status();
  if (!kind.ok()) return kind.status();
  if (*api_version != kApiVersion || *kind != kKind) {
    return absl::InvalidArgumentError(absl::StrCat("expected apiVersion ", kApiVersion, " kind ",
                                                   kKind, ", got apiVersion \"", *api_version,
                                                   "\" kind \"", *kind, "\""));
  }
  absl::StatusOr<const Json*> request = OptionalObject(*document, "request", "");
  if (!request.ok()) return request.status();
  if (*request == nullptr) return absl::InvalidArgumentError("the AdmissionReview has no request");
  const Json& r = **request;
  ReviewRequest out;
  struct Field {
    const char* key;
    std::string* into;
  };
  for (const Field& f : {Field{"uid", &out.uid}, Field{"operation", &out.operation},
                         Field{"subResource", &out.sub_resource}, Field{"name", &out.name},
                         Field{"namespace", &out.name_space}}) {
    absl::StatusOr<std::string> value = OptionalString(r, f.key, "request.");
    if (!value.ok()) return value.status();
    *f.into = *std::move(value);
  }
  if (out.uid.empty()) return absl::InvalidArgumentError("request.uid is missing or empty");
  absl::StatusOr<const Json*> resource = OptionalObject(r, "resource", "request.");
  if (!resource.ok()) return resource.status();
  if (*resource != nullptr) {
    absl::StatusOr<std::string> name = OptionalString(**resource, "resource", "request.resource.");
    if (!name.ok()) return name.status();
    out.resource = *std::move(name);
  }
  if (auto it = r.find("dryRun"); it != r.end() && !it->is_null()) {
    if (!it->is_boolean()) return absl::InvalidArgumentError("request.dryRun is not a boolean");
    out.dry_run = it->get<bool>();
  }
  absl::StatusOr<const Json*> object = OptionalObject(r, "object", "request.");
  if (!object.ok()) return object.status();
  out.object = *object;
  return out;
}

// The label `label` of the pod in `object` (metadata.labels), "" when absent.
absl::StatusOr<std::string> PodLabel(const Json& object, const std::string& label) {
  absl::StatusOr<const Json*> metadata = OptionalObject(object, "metadata", "request.object.");
  if (!metadata.ok()) return metadata.status();
  if (*metadata == nullptr) return std::string();
  absl::StatusOr<const Json*> labels =
      OptionalObject(**metadata, "labels", "request.object.metadata.");
  if (!labels.ok()) return labels.status();
  if (*labels == nullptr) return std::string();
  return OptionalString(**labels, label.c_str(), "request.object.metadata.labels.");
}

Json Respond(const std::string& uid, bool allowed, const std::string& subject,
             const std::vector<std::string>& reasons, const std::vector<std::string>& warnings) {
  Json response = {{"uid", uid}, {"allowed", allowed}};
  if (!allowed) {
    response["status"] = {{"code", 403},
                          {"reason", "Forbidden"},
                          {"message", absl::StrCat("vigil: ", subject, subject.empty() ? "" : ": ",
                                                   absl::StrJoin(reasons, "; "))}};
  }
  if (!warnings.empty()) response["warnings"] = warnings;
  return Json{{"apiVersion", kApiVersion}, {"kind", kKind}, {"response", std::move(response)}};
}

}  // namespace

AdmissionReviewer::AdmissionReviewer(const FleetService* fleet, AdmissionReviewOptions options)
    : fleet_(fleet), options_(std::move(options)) {}

absl::StatusOr<std::string> AdmissionReviewer::ResolveNode(absl::string_view node_name) const {
  if (node_name.empty()) return absl::InvalidArgumentError("the node name is empty");
  // Names only: every admission request resolves its node, and reading the fleet's latest
  // verdicts for it would cost a store read per node.
  std::vector<std::string> matches;
  for (const NodeName& n : fleet_->NodeNames()) {
    if (n.node_id == node_name || HostnameMatches(n.hostname, node_name)) {
      matches.push_back(n.node_id);
    }
  }
  if (matches.empty()) {
    if (IsNodeId(node_name)) {
      return absl::NotFoundError(absl::StrCat("node ", node_name, " is unknown to this verifier"));
    }
    return absl::NotFoundError(
        absl::StrCat("no node known to this verifier reports hostname \"", node_name, "\""));
  }
  if (matches.size() > 1) {
    std::vector<std::string> ids;
    for (const std::string& id : matches) ids.push_back(ShortId(id));
    return absl::FailedPreconditionError(absl::StrCat("hostname \"", node_name,
                                                      "\" is reported by ", matches.size(),
                                                      " nodes (", absl::StrJoin(ids, ", "), ")"));
  }
  return matches.front();
}

AdmissionReviewer::Decision AdmissionReviewer::DecideForNode(const std::string& node_name,
                                                             const std::string& workload,
                                                             absl::Time now) const {
  Decision d;
  absl::StatusOr<std::string> node_id = ResolveNode(node_name);
  if (!node_id.ok()) {
    d.allowed = false;
    d.reasons.push_back(std::string(node_id.status().message()));
    return d;
  }
  d.subject = absl::StrCat("node ", node_name, " (", ShortId(*node_id), ")");
  v1::CheckAdmissionRequest request;
  request.set_node_id(*node_id);
  request.set_max_age_ms(absl::ToInt64Milliseconds(options_.max_age));
  absl::StatusOr<v1::CheckAdmissionResponse> node = fleet_->CheckAdmission(request, now);
  if (!node.ok()) {
    d.allowed = false;
    d.reasons.push_back(std::string(node.status().message()));
    return d;
  }
  d.reasons.assign(node->reasons().begin(), node->reasons().end());
  if (workload.empty()) {
    d.allowed = node->allowed();
    return d;
  }
  // The workload is checked only when the node has reported it: a first pod of a workload
  // on a node has no result yet and is admitted on the node's own result, with a warning.
  absl::StatusOr<v1::GetNodeResponse> summary = fleet_->GetNode(*node_id);
  bool reported = false;
  if (summary.ok()) {
    for (const v1::WorkloadVerdict& w : summary->node().latest_verdict().workloads()) {
      if (w.workload_id() == workload || w.identity().name() == workload) reported = true;
    }
  }
  if (!reported) {
    d.allowed = node->allowed();
    d.warnings.push_back(absl::StrCat("vigil: workload ", workload, " has no result on ", d.subject,
                                      " yet; only the node was checked"));
    return d;
  }
  request.set_workload(workload);
  absl::StatusOr<v1::CheckAdmissionResponse> scoped = fleet_->CheckAdmission(request, now);
  if (!scoped.ok()) {
    d.allowed = false;
    d.reasons.push_back(std::string(scoped.status().message()));
    return d;
  }
  d.allowed = node->allowed() && scoped->allowed();
  for (const std::string& reason : scoped->reasons()) {
    if (std::find(d.reasons.begin(), d.reasons.end(), reason) == d.reasons.end()) {
      d.reasons.push_back(reason);
    }
  }
  return d;
}

void AdmissionReviewer::RememberPendingPod(const std::string& key, const std::string& workload,
                                           absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (auto it = pending_.find(key); it != pending_.end()) {
    pending_order_.erase(it->second.order);
    pending_.erase(it);
  }
  while (!pending_order_.empty() && (pending_.size() >= options_.max_pending_pods ||
                                     pending_.at(pending_order_.front()).expires <= now)) {
    pending_.erase(pending_order_.front());
    pending_order_.pop_front();
  }
  if (options_.max_pending_pods == 0) return;
  pending_order_.push_back(key);
  pending_.emplace(
      key, PendingPod{workload, now + options_.pending_ttl, std::prev(pending_order_.end())});
}

std::string AdmissionReviewer::TakePendingPod(const std::string& key, absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = pending_.find(key);
  if (it == pending_.end()) return "";
  std::string workload = it->second.expires > now ? std::move(it->second.workload) : "";
  pending_order_.erase(it->second.order);
  pending_.erase(it);
  return workload;
}

AdmissionHttpResponse AdmissionReviewer::Review(absl::string_view body, absl::Time now) {
  Json document;
  absl::StatusOr<ReviewRequest> request = ParseReview(body, &document);
  if (!request.ok()) {
    return {400, "text/plain; charset=utf-8",
            absl::StrCat("not an AdmissionReview v1 request: ", request.status().message(), "\n")};
  }
  auto answer = [&](const Decision& d) {
    return AdmissionHttpResponse{
        200, "application/json",
        Respond(request->uid, d.allowed, d.subject, d.reasons, d.warnings).dump()};
  };
  auto malformed = [&](const absl::Status& status) {
    return AdmissionHttpResponse{
        400, "text/plain; charset=utf-8",
        absl::StrCat("malformed AdmissionReview object: ", status.message(), "\n")};
  };
  Decision d;
  if (request->resource != "pods" || request->operation != "CREATE") return answer(d);
  const std::string pod_key = absl::StrCat(request->name_space, "/", request->name);
  if (request->object == nullptr) {
    return malformed(absl::InvalidArgumentError("request.object is missing"));
  }
  const Json& object = *request->object;
  if (request->sub_resource == "binding") {
    // The scheduler binds the pod to a node: object is a Binding with target {kind, name}.
    absl::StatusOr<const Json*> target = OptionalObject(object, "target", "request.object.");
    if (!target.ok()) return malformed(target.status());
    if (*target == nullptr)
      return malformed(absl::InvalidArgumentError("the Binding has no target"));
    absl::StatusOr<std::string> node = OptionalString(**target, "name", "request.object.target.");
    if (!node.ok()) return malformed(node.status());
    const std::string workload = request->dry_run ? "" : TakePendingPod(pod_key, now);
    return answer(DecideForNode(*node, workload, now));
  }
  if (!request->sub_resource.empty()) return answer(d);
  absl::StatusOr<std::string> workload = PodLabel(object, options_.workload_label);
  if (!workload.ok()) return malformed(workload.status());
  absl::StatusOr<const Json*> spec = OptionalObject(object, "spec", "request.object.");
  if (!spec.ok()) return malformed(spec.status());
  std::string node_name;
  if (*spec != nullptr) {
    absl::StatusOr<std::string> n = OptionalString(**spec, "nodeName", "request.object.spec.");
    if (!n.ok()) return malformed(n.status());
    node_name = *std::move(n);
  }
  if (node_name.empty()) {
    // Not placed yet: the binding decides. Remember the workload for it.
    if (!workload->empty() && !request->name.empty() && !request->dry_run) {
      RememberPendingPod(pod_key, *workload, now);
    }
    return answer(d);
  }
  return answer(DecideForNode(node_name, *workload, now));
}

}  // namespace vigil::verifier
