// What one layer holds (scanLayer), and what an image's file system holds once its
// layers are stacked (stackLayers).
//
// A layer is scanned on its own, so that its result can be cached by its digest and
// reused by every image built on it: the packages each recording file lists, the
// os-release files, and the layer's whiteouts and opaque directories. Stacking applies
// them bottom to top as the image's file system would: a whiteout or an opaque directory
// removes what lower layers recorded under it, and a file a layer writes replaces the
// same path below. A package keeps the layer that introduced it: the lowest layer from
// which its recording file listed it without interruption.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/scan/detectors.h"
#include "core/scan/layer_reader.h"
#include "core/scan/package.h"
#include "shared/base/status.h"

namespace wharf {

// Bump when detection changes: cached layer results of another version are rescanned.
constexpr int kLayerScanVersion = 1;

struct LayerScan {
  std::vector<Package> packages;        // path: the recording file; layer not set
  std::vector<std::string> recorded;    // every recording file read, with packages or not
  std::vector<OsRelease> os;
  std::vector<std::string> whiteouts;   // paths deleted from lower layers
  std::vector<std::string> opaque;      // directories whose lower contents are hidden
  std::vector<std::string> warnings;    // files that could not be parsed (the layer goes on)
  LayerStats stats;
};

nlohmann::json layerScanToJson(const LayerScan& scan);
Result<LayerScan> layerScanFromJson(const nlohmann::json& j);

struct ScanLimits {
  LayerLimits layer;
  size_t max_database_bytes = 128u << 20;  // rpm databases
  size_t max_manifest_bytes = 16u << 20;   // dpkg status, apk installed, METADATA, package.json
};

// A stream error or a limit ends the scan with it; a file that does not parse is a warning.
Result<LayerScan> scanLayer(const ByteSource& source, uint64_t compressed_size, const ScanLimits& limits);

struct StackedLayer {
  std::string digest;
  const LayerScan* scan;
};

struct ImageInventory {
  std::vector<Package> packages;  // layer set; sorted by type, name, version, path
  OsRelease os;                   // etc/os-release, else usr/lib/os-release; empty if none
};

ImageInventory stackLayers(const std::vector<StackedLayer>& layers);

}  // namespace wharf
