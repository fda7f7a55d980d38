#pragma once

// Abusive callers of a Fabric's verifier, each on its own thread until stopped:
//
//   * enrollments begun with a genuine EK certificate that chains to the verifier's EK CA
//     bundle (public data: a TPM of the same manufacture) and a genuine restricted AK, never
//     completed;
//   * junk evidence (nonces never issued) from an enrolled but misbehaving node certificate,
//     as fast as the stream takes it, reconnecting at once when the verifier ends the stream;
//   * Attest messages over the verifier's 4 MiB limit (from another node certificate, paced
//     below the per-node rate limit so that each reaches the size check);
//   * enrollment requests over the enrollment listener's 64 KiB limit.
//
// Each flood counts its calls and the refusals of the kind it is about, as gRPC statuses the
// flooder sees.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "tests/testing/fabric_fixture.h"
#include "tests/testing/tpm2_tools_node.h"

namespace vigil::testing {

class Floods {
 public:
  /// What one flood did so far.
  struct Counts {
    uint64_t sent = 0;
    /// Refusals of its kind: any non-OK status for the enrollments, RESOURCE_EXHAUSTED for
    /// the junk evidence, gRPC's "larger than max" RESOURCE_EXHAUSTED for the oversized ones.
    uint64_t refused = 0;
    std::string last_status;
  };

  /// Prepares the material (a swtpm with an AK, two node certificates from the fabric's CA)
  /// and starts the four floods against `fabric`'s verifier.
  static absl::StatusOr<std::unique_ptr<Floods>> Start(Fabric& fabric);
  /// Stops and joins the floods.
  ~Floods();
  void Stop();

  Counts enrollments() const { return enrollments_.Get(); }
  Counts junk_evidence() const { return junk_.Get(); }
  Counts oversized_evidence() const { return oversized_evidence_.Get(); }
  Counts oversized_enrollments() const { return oversized_enrollments_.Get(); }
  /// Whether every flood has been refused at least once.
  bool EachRefused() const;
  /// One line per flood: "junk evidence: 12 of 3400 refused; last status: ...".
  std::string Describe() const;

 private:
  class Tally {
   public:
    void Add(bool refused, std::string last_status);
    Counts Get() const;

   private:
    mutable absl::Mutex mu_;
    Counts counts_ ABSL_GUARDED_BY(mu_);
  };

  Floods() = default;
  // Runs `one` on a new thread until Stop, counting into `tally`.
  template <typename Call, typename IsRefusal>
  void Run(Tally* tally, Call one, IsRefusal is_refusal);

  std::unique_ptr<ToolsNode> tools_;
  std::atomic<bool> stop_ = false;
  Tally enrollments_, junk_, oversized_evidence_, oversized_enrollments_;
  std::vector<std::thread> threads_;
};

}  // namespace vigil::testing
