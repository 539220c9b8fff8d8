// The software list of a scanned image as others read it: package URLs (purl), and the
// two SBOM formats clients and tools exchange, SPDX 2.3 JSON and CycloneDX 1.5 JSON.
//
// Both are built from a stored scan result (Scanner::result) alone: the same package list
// the scan API shows, each package with its purl, the layer that introduced it and the file
// that recorded it.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/scan/detectors.h"
#include "core/scan/package.h"

namespace wharf {

// A result's "os": {"id","version_id","pretty_name"}, null when none.
nlohmann::json osReleaseToJson(const OsRelease& os);
OsRelease osReleaseFromJson(const nlohmann::json& j);

// "pkg:deb/debian/libc6@2.36-9%2Bdeb12u1?arch=amd64&distro=debian-12" (purl-spec types
// deb, apk, rpm, pypi, npm, golang, maven; name and version percent-encoded).
std::string purlOf(const Package& p, const OsRelease& os);

// Adds "purl" and "ecosystem" (the OSV ecosystem it is matched in, "" if none) to each
// package object of a scan result's "packages" (given the result's "os").
void describePackages(nlohmann::json& result);

// namespace_uri: a URI unique to this image (the SBOM's URL at this core); repository and
// digest name the image. The result must be a completed image scan (not an index).
nlohmann::json spdxDocument(const nlohmann::json& result, const std::string& repository, const std::string& digest,
                            const std::string& namespace_uri);
nlohmann::json cycloneDxDocument(const nlohmann::json& result, const std::string& repository, const std::string& digest);

}  // namespace wharf
