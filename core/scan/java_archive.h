// Java archives' Maven identity (jar, war, ear, par), read from a layer's tar member as a
// stream: the archive never sits in memory nor on disk.
//
// How it is read: libarchive's streamable zip reader (archive_read_support_format_zip_
// streamable) walks the local file headers in order, pulling bytes from `read` through
// a read callback; no seeking, the central directory is never needed. For each entry:
//
//   META-INF/maven/<group>/<artifact>/pom.properties
//       read up to 64 KiB (the rest is skipped) and parsed as Java properties (comments,
//       `=`, `:` or blank separators, continuation lines, escapes); groupId, artifactId
//       and version give a package "group:artifact" (a missing groupId or artifactId is
//       taken from the entry's directories; no version, no package). Every
//       pom.properties of the archive counts: a shaded jar reports what it shades.
//   META-INF/MANIFEST.MF (the name compared without case)
//       its main section, parsed as it streams (attribute names without case,
//       continuation lines starting with one space; at most 1 MiB is read):
//       Implementation-Vendor-Id, else Bundle-SymbolicName without its parameters and
//       its last dotted part (as trivy: "com.fasterxml.jackson.core.jackson-databind" ->
//       "com.fasterxml.jackson.core") for the group; Implementation-Title, else
//       Bundle-Name, for the artifact; Implementation-Version, else Bundle-Version, for
//       the version. Used only when the archive has no usable pom.properties, and only
//       when all three are there.
//   *.jar, *.war, *.ear, *.par (any directory, without case: BOOT-INF/lib/, WEB-INF/lib/,
//       an ear's modules)
//       read recursively from the outer stream: a nested libarchive reader whose read
//       callback pulls archive_read_data_block of the outer one. Depth 0 is the archive
//       given; archives down to depth 3 are read, those nested deeper are skipped
//       unread (no package, no error).
//
// When neither pom.properties nor a complete manifest identify the archive, its file
// name does, as trivy parses it ("commons-lang3-3.12.0.jar" -> commons-lang3 3.12.0,
// the version starting at the last '-' followed by a digit). The group is then unknown
// and the package is kept, named by the artifact alone without a ':' ("commons-lang3"):
// it shows in the inventory, and since Maven advisories name "group:artifact" it can
// match nothing (trivy guesses the group online, which Wharf does not).
//
// Packages: type "maven", name "group:artifact" (or the artifact alone, above), version
// as written; the archive's own first, then those of its nested archives in order, no
// duplicate (name, version, path) within one archive. Path: the given path for the
// archive's own packages; for a nested archive the outer path, "!/" and the entry's full
// name in the outer archive, as Java's jar: URLs write it ("app.jar!/BOOT-INF/lib/
// spring-core-6.0.9.jar", "app.ear!/web.war!/WEB-INF/lib/x.jar").
//
// Limits and errors (the archive is given up, with its nested ones; an error of a nested
// archive is an error of the archive that holds it, as in trivy):
//   - not a zip, a corrupt header or data, an entry libarchive cannot read as a stream:
//     kInvalidArgument, "Java archive <path>: ..." with libarchive's message. A zip
//     written with data descriptors (flag bit 3: sizes after the data) can be read as a
//     stream for deflated entries, but a stored entry's end has to be guessed from the
//     descriptor's signature, which may fail: the message then says so;
//   - over 100,000 entries in one archive, or over 2 GiB read out of nested archives in
//     all (what a zip bomb would inflate): kTooLarge;
//   - errors of `read` are returned as they are.
//
// Not covered: encrypted entries, archives whose local headers lie (only the central
// directory is right: a stream cannot see it), the pom.xml (only pom.properties), a
// shaded jar's own identity when it carries only its dependencies' pom.properties.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/scan/package.h"
#include "shared/base/status.h"

namespace wharf {

// The Maven packages of the Java archive whose bytes `read` yields (called for members
// named *.jar, *.war, *.ear, *.par). `depth` is how deep the archive is nested already.
Result<std::vector<Package>> readJavaArchive(const ChunkReader& read, const std::string& path, int depth = 0);

// Whether an entry or file name is a Java archive's: .jar, .war, .ear, .par, any case.
bool isJavaArchiveName(std::string_view name);

}  // namespace wharf
