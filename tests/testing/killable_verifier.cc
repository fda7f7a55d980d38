#include "tests/testing/killable_verifier.h"

#include <signal.h>
#include <sys/wait.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/pki.h"
#include "tests/testing/build_paths.h"

namespace vigil::testing {

absl::Status KillableVerifier::Start(const std::vector<std::string>& extra_args) {
  std::vector<std::string> argv = {absl::StrCat(BuildDir(), "/verifier/vigil-verifier")};
  argv.insert(argv.end(), args_.begin(), args_.end());
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  absl::StatusOr<std::unique_ptr<ChildProcess>> started = ChildProcess::Spawn(argv, log_path_);
  if (!started.ok()) return started.status();
  process_ = *std::move(started);
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (!AcceptsConnections(port_)) {
    if (!process_->Running()) return absl::InternalError("vigil-verifier exited\n" + LogTail());
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError("vigil-verifier never listened\n" + LogTail());
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return absl::OkStatus();
}

absl::Status KillableVerifier::Kill() {
  if (process_ == nullptr) return absl::FailedPreconditionError("vigil-verifier not started");
  const pid_t pid = process_->pid();
  if (kill(pid, SIGKILL) != 0) return absl::InternalError("kill(SIGKILL) failed");
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return absl::InternalError("waitpid failed");
  process_.reset();  // already reaped: nothing left to stop
  if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
    return absl::InternalError(absl::StrCat("vigil-verifier ended with status ", status));
  }
  return absl::OkStatus();
}

absl::Status KillableVerifier::AwaitWhileRunning(const std::function<bool()>& done,
                                                 absl::string_view what) {
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (!done()) {
    if (!Running()) return absl::InternalError(absl::StrCat("vigil-verifier exited\n", LogTail()));
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(what, "\n", LogTail()));
    }
    absl::SleepFor(absl::Milliseconds(2));
  }
  return absl::OkStatus();
}

std::string KillableVerifier::LogTail() const {
  absl::StatusOr<std::string> log = ReadFileToString(log_path_);
  if (!log.ok()) return "";
  constexpr size_t kMax = 6000;
  return log->size() > kMax ? log->substr(log->size() - kMax) : *log;
}

absl::StatusOr<std::set<std::string>> StoredEvidenceDigests(const verifier::Store& store,
                                                            const std::string& node_id) {
  std::set<std::string> stored;
  verifier::VerdictQuery query;
  query.node_id = node_id;
  query.page_size = 1000;
  while (true) {
    absl::StatusOr<verifier::VerdictPage> page = store.ListVerdicts(query);
    if (!page.ok()) return page.status();
    for (const v1::Verdict& v : page->verdicts) stored.insert(v.evidence_sha256());
    if (page->next_page_token.empty()) return stored;
    query.page_token = page->next_page_token;
  }
}

}  // namespace vigil::testing
