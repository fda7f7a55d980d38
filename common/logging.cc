#include "common/logging.h"

#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace vigil {

void LogToStderr() {
  auto logger = spdlog::get("vigil");
  if (logger == nullptr) logger = spdlog::stderr_color_mt("vigil");
  spdlog::set_default_logger(logger);
}

}  // namespace vigil
