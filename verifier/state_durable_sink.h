#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "verifier/node_registry.h"
#include "verifier/result_sink.h"

namespace vigil::verifier {

/// A ResultSink that reports a verdict durable only once the node's appraisal state is too:
/// RecordDurable hands the verdict to `inner` and asks `registry` to commit the node's state
/// (clock triple, qualified-signer pin, measurement state) as the appraisal left it, and calls
/// `on_durable` when both are on stable storage (the first error otherwise). The Attest stream
/// acknowledges evidence (and the log entries the verifier now holds) only then, so a verifier
/// killed after an acknowledgement restarts with that state: no replay window reopens and no
/// acknowledged log entry is lost. Both commits are grouped by their writers; nothing here
/// writes per report. Thread-safe when `inner` is.
class StateDurableSink final : public ResultSink {
 public:
  /// `inner` and `registry` must outlive the sink.
  StateDurableSink(ResultSink* inner, NodeRegistry* registry)
      : inner_(inner), registry_(registry) {}

  void Record(const std::string& node_id, const v1::Evidence& evidence,
              const v1::Verdict& verdict) override {
    inner_->Record(node_id, evidence, verdict);
  }
  void RecordDurable(const std::string& node_id, const v1::Evidence& evidence,
                     const v1::Verdict& verdict,
                     std::function<void(absl::Status)> on_durable) override;
  /// A stream that starts reads the node's appraisal state again from a registry shared
  /// with other replicas (its previous stream may have been on another one) before its first
  /// challenge.
  void SetConnected(const std::string& node_id, bool connected) override {
    if (connected) registry_->Refresh(node_id);
    inner_->SetConnected(node_id, connected);
  }

 private:
  ResultSink* const inner_;
  NodeRegistry* const registry_;
};

}  // namespace vigil::verifier
