#pragma once

#include <string>

namespace vigil::testing {

/// The source tree the tests were built from (absolute, no trailing slash).
const std::string& SourceDir();
/// The build tree holding the programs the tests run (absolute, no trailing slash).
const std::string& BuildDir();

}  // namespace vigil::testing
