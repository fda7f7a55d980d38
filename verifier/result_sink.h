#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "vigil/v1/attestation.pb.h"

namespace vigil::verifier {

/// Where the Attest stream hands each appraisal result. Implementations are thread-safe:
/// every stream calls the same sink, from gRPC's callback threads, so Record must not block
/// for long (no per-report disk sync).
class ResultSink {
 public:
  virtual ~ResultSink() = default;

  /// Called once per Evidence after it was appraised (rejections included). `node_id` comes
  /// from the peer certificate.
  virtual void Record(const std::string& node_id, const v1::Evidence& evidence,
                      const v1::Verdict& verdict) = 0;

  /// Records like Record and calls `on_durable` once the verdict is on stable storage (OK)
  /// or could not be stored (an error), from any thread, possibly before returning. The
  /// Attest stream acknowledges evidence only after that. `on_durable` must not block. A
  /// sink that keeps nothing durable calls it at once with OK (the default).
  virtual void RecordDurable(const std::string& node_id, const v1::Evidence& evidence,
                             const v1::Verdict& verdict,
                             std::function<void(absl::Status)> on_durable) {
    Record(node_id, evidence, verdict);
    on_durable(absl::OkStatus());
  }

  /// Called with true when a node's Attest stream is accepted and false when it ends.
  virtual void SetConnected(const std::string& node_id, bool connected) = 0;
};

/// A sink that keeps nothing: for a verifier run without a result store.
class DiscardingResultSink final : public ResultSink {
 public:
  void Record(const std::string&, const v1::Evidence&, const v1::Verdict&) override {}
  void SetConnected(const std::string&, bool) override {}
};

}  // namespace vigil::verifier
