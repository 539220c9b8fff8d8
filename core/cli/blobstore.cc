// wharfctl blobstore upgrade: moves an S3 blob store to the layout this version writes,
// reading and writing the store directly (no core involved):
//
//   wharfctl blobstore upgrade --blobs s3://...
#include <cstdio>
#include <cstdlib>

#include "core/cli/cli.h"
#include "shared/store/blob_store.h"
#include "shared/store/s3_client.h"

namespace wharf::cli {

const char* kBlobstoreHelp = R"(Usage: wharfctl blobstore upgrade --blobs s3://BUCKET/PREFIX?endpoint=...

Moves an S3 blob store of layout 1 to layout 2, where a blob a push streamed in one PUT
is stored by reference (its name points at the bytes) instead of copied under its digest
by the store. Run it once every core using the store runs this version: a core of an
older version would read such a blob as empty, and refuses the store at its next start.
Cores started afterwards store by reference; those running keep copying until they
restart (both are read by every core of this version). Nothing else changes; running it
again does nothing. S3 credentials as wharf-core takes them (AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY, or credentials= in the URL).
)";

int blobstore(const Args& a) {
  if (a.pos.size() < 2 || a.pos[1] != "upgrade") die("unknown blobstore subcommand (see wharfctl blobstore --help)", 2);
  std::string url = a.get("blobs");
  if (url.rfind("s3://", 0) != 0) die("--blobs s3://bucket/prefix?... is required (see --help)", 2);
  auto location = parseS3Url(url, [](const char* name) { return std::getenv(name); });
  if (!location.isOk()) die("--blobs: " + location.status().message(), 2);
  auto upgraded = upgradeS3BlobStoreLayout(*location);
  if (!upgraded.isOk()) die(upgraded.status().message());
  std::printf("%s: %s\n", location->display.c_str(),
              *upgraded ? "upgraded to layout 2 (blobs by reference for cores started from now on)"
                        : "already at layout 2");
  return 0;
}

}  // namespace wharf::cli
