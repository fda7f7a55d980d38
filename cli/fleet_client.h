#pragma once

// One connection to the verifier's Fleet API for a vigilctl command: calls with the
// command's deadline, and error messages an operator can act on (which verifier could not
// be reached, which node is unknown, which role the certificate has and which the call
// needs).

#include <grpcpp/grpcpp.h>

#include <limits>
#include <memory>
#include <ostream>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "cli/nodes_command.h"
#include "vigil/v1/fleet.grpc.pb.h"

namespace vigil::cli {

/// Exit codes shared by the commands that talk to the verifier.
inline constexpr int kExitOk = 0;
/// The verifier refused the call, could not be reached, or the result is a failure.
inline constexpr int kExitFailed = 1;
/// Bad flags or arguments, unreadable credentials or input files.
inline constexpr int kExitUsage = 2;

/// The roles fleet.proto lets make `rpc` ("operator, auditor"), or "" for an unknown call.
std::string RequiredRoles(absl::string_view rpc);

/// The role of the client certificate PEM (from its Vigil SPIFFE ID), or an error.
absl::StatusOr<std::string> CertificateRole(const std::string& cert_pem);

class FleetClient {
 public:
  /// Connects with `options` (see ConnectFleet). On failure prints the reason to `err` and
  /// returns null: the command then exits kExitUsage.
  static std::unique_ptr<FleetClient> Connect(const FleetConnectionOptions& options,
                                              std::ostream& err);

  /// Makes a unary call `rpc` with the command's deadline.
  template <typename Request, typename Response>
  grpc::Status Call(grpc::Status (v1::Fleet::Stub::*method)(grpc::ClientContext*, const Request&,
                                                            Response*),
                    const Request& request, Response* response) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    return (stub_.get()->*method)(&ctx, request, response);
  }

  /// Every node ListNodes lists, all pages collected into `all`.
  grpc::Status ListAllNodes(v1::ListNodesResponse* all) {
    return CollectPages(
        &v1::Fleet::Stub::ListNodes, v1::ListNodesRequest(), std::numeric_limits<uint32_t>::max(),
        [](v1::ListNodesResponse& r) { return r.mutable_nodes(); }, all);
  }

  /// Calls the paginated `method` page after page (page_size, page_token) until `limit`
  /// items or the last page. The items (`items(response)`) are appended to `all`, whose
  /// next_page_token is left where the collection stopped ("" after the last page).
  template <typename Request, typename Response, typename Items>
  grpc::Status CollectPages(grpc::Status (v1::Fleet::Stub::*method)(grpc::ClientContext*,
                                                                    const Request&, Response*),
                            Request request, uint32_t limit, Items items, Response* all) {
    constexpr uint32_t kMaxPageSize = 1000;
    while (static_cast<uint32_t>(items(*all)->size()) < limit) {
      const uint32_t remaining = limit - static_cast<uint32_t>(items(*all)->size());
      request.set_page_size(remaining < kMaxPageSize ? remaining : kMaxPageSize);
      Response page;
      if (grpc::Status st = Call(method, request, &page); !st.ok()) return st;
      for (auto& item : *items(page)) {
        if (static_cast<uint32_t>(items(*all)->size()) == limit) break;
        *items(*all)->Add() = std::move(item);
      }
      all->set_next_page_token(page.next_page_token());
      if (page.next_page_token().empty()) break;
      if (page.next_page_token() == request.page_token()) {
        return grpc::Status(grpc::StatusCode::UNKNOWN,
                            "the verifier returned the same page token twice");
      }
      request.set_page_token(page.next_page_token());
    }
    return grpc::Status::OK;
  }

  /// A call's failure as one line for stderr, without the "vigilctl: " prefix:
  ///   UNAVAILABLE        "cannot reach the verifier at ADDR (RPC: detail)"
  ///   DEADLINE_EXCEEDED  "the verifier at ADDR did not answer RPC within N s"
  ///   PERMISSION_DENIED  "RPC: PERMISSION_DENIED: the client certificate FILE has role R;
  ///                       RPC needs ROLES (verifier: detail)"
  ///   NOT_FOUND          "RPC: NOT_FOUND: <not_found> (verifier: detail)" when not_found is
  ///                       given, else "RPC: NOT_FOUND: detail"
  ///   anything else      "RPC: CODE: detail"
  std::string Describe(absl::string_view rpc, const grpc::Status& status,
                       absl::string_view not_found = "") const;

  /// Prints Describe(...) to `err` with the "vigilctl: " prefix and returns kExitFailed.
  int Fail(std::ostream& err, absl::string_view rpc, const grpc::Status& status,
           absl::string_view not_found = "") const;

  void SetDeadline(grpc::ClientContext& ctx) const;
  v1::Fleet::Stub& stub() { return *stub_; }
  const FleetConnectionOptions& options() const { return options_; }

 private:
  FleetClient(FleetConnectionOptions options, std::unique_ptr<v1::Fleet::Stub> stub)
      : options_(std::move(options)), stub_(std::move(stub)) {}

  FleetConnectionOptions options_;
  std::unique_ptr<v1::Fleet::Stub> stub_;
};

/// The name of a gRPC status code ("NOT_FOUND").
std::string StatusCodeName(grpc::StatusCode code);

}  // namespace vigil::cli
