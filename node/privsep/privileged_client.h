#pragma once

#include <sys/types.h>

#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace vigil::node::privsep {

/// The main process's end of the channel to the privileged process. Thread-safe: one
/// request at a time.
class PrivilegedClient {
 public:
  /// `fd` is the main process's end of the socketpair; `server_pid` the privileged
  /// process (0 when unknown, e.g. in tests).
  PrivilegedClient(UniqueFd fd, pid_t server_pid) : fd_(std::move(fd)), server_pid_(server_pid) {}

  /// The seccomp filters installed in `pid`, most recently installed first, as the
  /// privileged process read them (ReadSeccompFilters). Its error comes back as the same
  /// code and message; a response that breaks the protocol is an Internal error and closes
  /// the channel (Unavailable from then on, as when the privileged process is gone).
  absl::StatusOr<std::vector<std::string>> ReadSeccompFilters(int pid);

  pid_t server_pid() const { return server_pid_; }

 private:
  absl::StatusOr<std::vector<std::string>> Exchange(int pid);

  std::mutex mu_;
  UniqueFd fd_;
  bool reported_ = false;  // the last exchange ended with the privileged process's error
  const pid_t server_pid_;
};

}  // namespace vigil::node::privsep
