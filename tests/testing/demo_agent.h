#pragma once

// A demo agent (deploy/demo/) a test starts itself, with its standard output on a pipe so
// the test can wait for the line it prints once its setup is done. Killed (SIGKILL) and
// reaped when it goes out of scope.

#include <sys/types.h>

#include <cstdio>
#include <string>

namespace vigil::testing {

class DemoAgent {
 public:
  /// Starts the program at `path`; pid() is -1 when it could not be forked.
  explicit DemoAgent(const std::string& path);
  ~DemoAgent();
  DemoAgent(const DemoAgent&) = delete;
  DemoAgent& operator=(const DemoAgent&) = delete;

  /// The path of a demo agent the build made: "vigil-demo-hardened-agent" or
  /// "vigil-demo-naive-agent".
  static std::string BuiltPath(const std::string& target);

  pid_t pid() const { return pid_; }
  /// The line the agent prints when its setup is done ("" when it died first).
  std::string ReadyLine();
  /// Whether it still runs (not exited, not reaped).
  bool Alive() const;

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
};

}  // namespace vigil::testing
