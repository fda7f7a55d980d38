#pragma once

// The console's page, style sheet and script, embedded at build time from
// verifier/console/assets/ (cmake/EmbedConsoleAssets.cmake writes console_assets.cc).

#include <cstddef>
#include <string_view>

namespace vigil::verifier::console {

struct Asset {
  /// The file's name under assets/, e.g. "console.js".
  const char* name;
  const unsigned char* data;
  size_t size;

  std::string_view contents() const {
    return std::string_view(reinterpret_cast<const char*>(data), size);
  }
};

extern const Asset kAssets[];
extern const size_t kAssetCount;

/// The asset called `name`, or null.
const Asset* FindAsset(std::string_view name);

/// The Content-Type served for an asset, from its extension.
const char* AssetContentType(std::string_view name);

}  // namespace vigil::verifier::console
