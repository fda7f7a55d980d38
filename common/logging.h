#pragma once

namespace vigil {

/// Sends spdlog's default logger to stderr (coloured on a terminal), so that a command's
/// standard output carries only its results. Every executable calls this first.
void LogToStderr();

}  // namespace vigil
