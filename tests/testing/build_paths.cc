#include "tests/testing/build_paths.h"

// The two paths are compile definitions of this file alone, so every other test object is
// independent of where the tree is checked out and built (and compiler caches share them).
namespace vigil::testing {

const std::string& SourceDir() {
  static const std::string* const dir = new std::string(VIGIL_SOURCE_DIR);
  return *dir;
}

const std::string& BuildDir() {
  static const std::string* const dir = new std::string(VIGIL_BUILD_DIR);
  return *dir;
}

}  // namespace vigil::testing
