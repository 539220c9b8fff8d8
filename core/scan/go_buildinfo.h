// Go binaries' module build information, read from an executable as a stream (a layer's
// tar member, never extracted): the modules a binary was linked from and the Go
// toolchain that built it, as `go version -m` prints them.
//
// Format (Go 1.18 and later; cmd/link writes it, debug/buildinfo reads it). The linker
// puts a 32-byte header at a 16-byte aligned place of the data segment (the
// .go.buildinfo section on ELF, whose file offset is 16-aligned as well):
//
//   0..13   "\xff Go buildinf:"
//   14      pointer size (4 or 8)
//   15      flags: bit 0 big endian, bit 1 (value 2) the inline format
//   16..31  two pointers, zero in the inline format
//
// then, in the inline format, two strings each prefixed by its length as an unsigned
// LEB128 varint: the toolchain version ("go1.21.3", maybe followed by " X:experiment")
// and the modinfo. The modinfo is framed by two 16-byte sentinels (cmd/go's infoStart
// and infoEnd; it counts only when at least 33 bytes long and its last byte before the
// end sentinel is '\n', as debug/buildinfo checks) and holds '\n'-terminated lines:
//
//   path\t<main package path>
//   mod\t<module path>\t<version>[\t<sum>]      the main module
//   dep\t<module path>\t<version>[\t<sum>]      a dependency
//   =>\t<path>\t<version>\t<sum>                replaces the mod/dep line just before
//   build\t<key>=<value>                         build settings (ignored here)
//
// How it is read: the stream is scanned in 16-byte blocks at 16-aligned file offsets, a
// block at a time, so the header is found whatever the chunking (a block that straddles
// two chunks is assembled in a 16-byte buffer); nothing else of the file is kept. A
// candidate counts only when the whole header is plausible (the magic, a pointer size
// of 4 or 8, no unknown flag bits, zero pointers in the inline format), so the magic as
// a string constant elsewhere (a binary that imports debug/buildinfo) is passed over.
// The modinfo is parsed line by line as it streams (a module line is kept up to 4 KiB,
// other lines are skipped unread), so memory stays at a few KiB plus the packages
// found. Reading stops right after the modinfo; the caller drains the rest.
//
// Packages, type "golang", path = the given path:
//   - each dependency: name = module path, version = its version ("v0.7.0"); for a
//     replaced module (an `=>` line) the replacement's path and version. A replacement
//     by a local directory has no version: the package is kept with an empty version
//     (inventory only, never matched);
//   - the main module only when it has a real version (Go 1.24 stamps VCS versions);
//     "(devel)" means none and the main module is left out;
//   - "stdlib" with the toolchain version in module form, as trivy and govulncheck
//     report it: "go1.21.3" -> "v1.21.3", "go1.20" -> "v1.20.0", "go1.21rc2" ->
//     "v1.21.0-rc.2"; a " X:..." experiment suffix and a "-vendor" suffix of a custom
//     toolchain build ("go1.21.3-bigcorp") are dropped. A development toolchain
//     ("devel go1.22-abcdef ...") has no release version: no stdlib package.
//
// Not covered: the pointer-based layout of Go 1.13 to 1.17 (flag bit 1 clear), whose
// strings sit elsewhere in the data segment at virtual addresses that need the
// program headers to resolve: such binaries give an empty list (as do binaries
// without any build info: C programs, stripped or packed Go binaries). Versions set
// with -ldflags -X are not looked at. If a binary embeds another Go binary ahead of
// its own build info (go:embed of an executable), the first header found wins.
//
// Errors: a header that was found but is cut short or malformed (truncated strings, a
// version over 1 KiB, a module line over 4 KiB, a bad column count or a replacement
// without a module, as runtime/debug.ParseBuildInfo rejects them) is kInvalidArgument;
// over 100,000 modules or a modinfo over 64 MiB is kTooLarge; errors of `read` are
// returned as they are.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/scan/package.h"
#include "shared/base/status.h"

namespace wharf {

// The modules of the Go executable whose bytes `read` yields (called for ELF files with
// an exec bit). An empty list when the file has no Go 1.18+ build info.
Result<std::vector<Package>> readGoBuildInfo(const ChunkReader& read, const std::string& path);

// The toolchain version in module form ("go1.21.3" -> "v1.21.3", see above); empty
// when it is not a release version.
std::string goToolchainSemver(std::string_view go_version);

}  // namespace wharf
