#include "tests/testing/demo_agent.h"
#include "tests/testing/build_paths.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace vigil::testing {

DemoAgent::DemoAgent(const std::string& path) {
  int out[2];
  if (pipe(out) != 0) return;
  pid_ = fork();
  if (pid_ == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    close(out[1]);
    execl(path.c_str(), path.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  if (pid_ < 0) {
    close(out[0]);
    return;
  }
  out_ = fdopen(out[0], "r");
}

DemoAgent::~DemoAgent() {
  if (out_ != nullptr) fclose(out_);
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

std::string DemoAgent::BuiltPath(const std::string& target) {
  return vigil::testing::BuildDir() + "/deploy/demo/" + target;
}

std::string DemoAgent::ReadyLine() {
  char buf[1024];
  if (out_ == nullptr || fgets(buf, sizeof(buf), out_) == nullptr) return "";
  return buf;
}

bool DemoAgent::Alive() const { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }

}  // namespace vigil::testing
