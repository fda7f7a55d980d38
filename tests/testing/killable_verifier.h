#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tests/testing/fabric_fixture.h"
#include "verifier/store/sqlite_store.h"

namespace vigil::testing {

/// The real vigil-verifier binary, started with the same arguments again and again, and
/// killed with SIGKILL in between: for durability tests.
class KillableVerifier {
 public:
  /// `args` follow the program name; the verifier's output goes to `log_path`; it serves the
  /// Attest listener on 127.0.0.1:`port`.
  KillableVerifier(std::vector<std::string> args, std::string log_path, int port)
      : args_(std::move(args)), log_path_(std::move(log_path)), port_(port) {}

  /// Starts it with `args` plus `extra_args` and waits until it accepts connections; an error
  /// if it exits or never listens within a minute.
  absl::Status Start(const std::vector<std::string>& extra_args = {});
  /// SIGKILL, reaped; an error unless it was running and died of that signal.
  absl::Status Kill();
  /// Polls `done` until it holds: an error naming `what` (with the log's end) if the verifier
  /// exits first or a minute passes (which only keeps a broken verifier from hanging a test).
  absl::Status AwaitWhileRunning(const std::function<bool()>& done, absl::string_view what);
  /// Whether it was started and has not exited.
  bool Running() const { return process_ != nullptr && process_->Running(); }
  /// The end of its log, for failure messages.
  std::string LogTail() const;

 private:
  const std::vector<std::string> args_;
  const std::string log_path_;
  const int port_;
  std::unique_ptr<ChildProcess> process_;
};

/// The evidence_sha256 of every verdict `store` holds for `node_id`.
absl::StatusOr<std::set<std::string>> StoredEvidenceDigests(const verifier::Store& store,
                                                            const std::string& node_id);

}  // namespace vigil::testing
