#pragma once

#include <string>

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
