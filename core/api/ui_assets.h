// The web UI's files (core/ui, built by Vite), embedded in wharf-core by
// core/ui/embed.cmake at build time. Paths are relative to /ui/ ("index.html",
// "assets/index-<hash>.js"). An empty table when the UI was not built.
#pragma once

#include <cstddef>

namespace wharf {

struct UiAsset {
  const char* path;
  const char* data;
  size_t size;
};

extern const UiAsset kUiAssets[];
extern const size_t kUiAssetCount;

}  // namespace wharf
