// Readers of RPM package databases: a database file's bytes in, the installed packages
// out. Each database holds one rpm header blob per installed package; the blob is the
// same in every backend:
//
//   rpmdb.sqlite  SQLite (Fedora 33+, RHEL 9, Amazon Linux 2023): `SELECT blob FROM
//                 Packages`, read through libsqlite3 over an in-memory copy.
//   Packages      Berkeley DB hash (RHEL/CentOS 5-8, Amazon Linux 2): read by our own
//                 reader of libdb's hash pages and overflow chains, either byte order.
//   Packages.db   rpm's NDB (SUSE, openSUSE): slot pages and checksummed blobs.
//
// The header blob (as stored, without the lead and the header magic): int32 BE index
// count, int32 BE data length, the 16-byte index entries (tag, type, offset, count, BE),
// then the data store. A package is read from it as:
//
//   name          RPMTAG_NAME (1000)
//   version       [epoch:]version-release: RPMTAG_EPOCH (1003) is written whenever the
//                 header has the tag, even when it is 0 ("0:1.2-3"), as rpm's %{EPOCHNUM}
//                 and the advisories of Red Hat's family do; a header without the tag
//                 gives "1.2-3". Both compare equal under rpm ordering (a missing epoch
//                 is 0), so the choice only shows in reports.
//   arch          RPMTAG_ARCH (1022); empty when absent (gpg-pubkey)
//   source_name   the name part of RPMTAG_SOURCERPM (1044): "openssl-3.0.7-27.el9.src.rpm"
//                 gives "openssl" (".src.rpm" or ".nosrc.rpm" and the last two
//                 '-'-separated fields stripped). Empty, as package.h asks, when it is the
//                 package's own name, when the tag is absent (a source package, a
//                 gpg-pubkey) or when the value has no such shape.
//   source_version  always empty
//
// The database readers skip the gpg-pubkey pseudo-packages (imported signing keys).
//
// Everything is bounded and checked: every offset, count and length in a header, a page
// or a slot is checked against the bytes it points into before it is read; a malformed
// or hostile file gives a Status (kInvalidArgument when the bytes are not this kind of
// database at all, kCorruption when they are but something does not add up, kTooLarge
// past a limit, kUnsupported for variants not read: encrypted Berkeley DB, duplicate
// items), never a crash or an unbounded loop. One malformed package header fails the
// whole database (a package silently left out is a vulnerability silently missed).
//
// Limits: a database file of at most kMaxRpmDbBytes; a header of at most 65535 index
// entries and 256 MiB of data (rpm's own limits); SQLite runs with tight sqlite3_limit()s,
// no triggers, views or untrusted schema functions, and a progress handler that stops a
// query after kMaxRpmSqliteSteps virtual machine steps. Memory stays within a small
// multiple of the file size: headers are parsed one at a time and only the packages kept.
//
// Not read: a SQLite database's -wal file (rpm checkpoints on close; a WAL-mode main file
// is read as it stands), Berkeley DB btree databases (rpm's indexes, not Packages),
// encrypted Berkeley DB files, LZO-compressed NDB blobs (a build option SUSE does not use).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/scan/package.h"
#include "shared/base/status.h"

namespace wharf {

inline constexpr uint64_t kMaxRpmDbBytes = 1ull << 30;
inline constexpr uint64_t kMaxRpmSqliteSteps = 200'000'000;

// rpmdb.sqlite.
Result<std::vector<Package>> readRpmSqlite(std::string_view file_bytes, const std::string& path);
// The Berkeley DB hash `Packages`.
Result<std::vector<Package>> readRpmBerkeleyDb(std::string_view file_bytes, const std::string& path);
// The NDB `Packages.db`.
Result<std::vector<Package>> readRpmNdb(std::string_view file_bytes, const std::string& path);
// Whichever of the three the first bytes say it is (kInvalidArgument when none).
Result<std::vector<Package>> readRpmDatabase(std::string_view file_bytes, const std::string& path);

// One header blob as the databases store it; path is left empty. Does not skip
// gpg-pubkey (the readers do).
Result<Package> parseRpmHeader(std::string_view blob);

}  // namespace wharf
