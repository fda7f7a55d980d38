#pragma once

// A node's Attest client for load and durability tests: answers every Challenge at once with
// unquoted evidence whose payload is unique, and remembers the evidence_sha256 of every
// acknowledged one. Whenever its stream ends it reconnects on a fresh channel (so without
// gRPC's backoff) to the next of its verifier addresses, as `vigil-node run --verifier A
// --verifier B` moves to B when A is gone; until stopped.

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/pki.h"
#include "grpcpp/client_context.h"

namespace vigil::testing {

class AttestLoadClient {
 public:
  AttestLoadClient(std::string node_id, CertAndKey identity, std::string ca_pem,
                   std::vector<std::string> addresses);
  ~AttestLoadClient() { Stop(); }

  void Start();
  void Stop();

  size_t acknowledged() const;
  /// The evidence_sha256 of every acknowledged evidence, in order.
  std::vector<std::string> acked() const;
  /// Acknowledgements that did not match the evidence in flight.
  std::vector<std::string> problems() const;
  /// The address of the verifier whose acknowledgement came last ("" before the first).
  std::string last_acknowledged_by() const;
  const std::string& node_id() const { return node_id_; }

 private:
  void Run();

  const std::string node_id_;
  const CertAndKey identity_;
  const std::string ca_pem_;
  const std::vector<std::string> addresses_;
  std::thread thread_;
  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::vector<std::string> acked_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> problems_ ABSL_GUARDED_BY(mu_);
  std::string last_acknowledged_by_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vigil::testing
