#pragma once

// Running a built program to completion in a test, its output kept apart.

#include <string>
#include <vector>

namespace vigil::testing {

/// The whole text of the file at `path` ("" when it cannot be read).
std::string ReadWholeFile(const std::string& path);

/// How a program run ended: its exit code (128 + the signal when one killed it; -1 when it
/// could not be started, with a test failure added) and what it wrote.
struct ProgramRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

/// Runs `argv` (argv[0] a path) with stdin from /dev/null and stdout and stderr in the files
/// `dir`/stdout and `dir`/stderr, waits for it and returns how it ended.
ProgramRun RunProgram(const std::vector<std::string>& argv, const std::string& dir);

}  // namespace vigil::testing
