#include "core/metadata/pg_schema.h"

namespace wharf {

const std::vector<PgMigration>& metadataMigrations() {
  static const std::vector<PgMigration> all = {
      {1, "the registry's index: repositories, content, links, manifests, tags, referrers, uploads, policies",
       R"sql(
CREATE TABLE repositories (name text COLLATE "C" PRIMARY KEY, created_ms bigint NOT NULL);
CREATE TABLE blobs (digest text COLLATE "C" PRIMARY KEY, size bigint NOT NULL, created_ms bigint NOT NULL,
                    touched_ms bigint NOT NULL);
CREATE TABLE links (repository text COLLATE "C" NOT NULL, digest text COLLATE "C" NOT NULL,
                    PRIMARY KEY (repository, digest));
CREATE INDEX links_by_digest ON links (digest);
CREATE TABLE manifests (repository text COLLATE "C" NOT NULL, digest text COLLATE "C" NOT NULL,
                        media_type text NOT NULL, size bigint NOT NULL, subject text NOT NULL DEFAULT '',
                        artifact_type text NOT NULL DEFAULT '', created_ms bigint NOT NULL, pushed_ms bigint NOT NULL,
                        PRIMARY KEY (repository, digest));
CREATE TABLE manifest_refs (digest text COLLATE "C" PRIMARY KEY, refs text[] NOT NULL);
CREATE TABLE tags (repository text COLLATE "C" NOT NULL, tag text COLLATE "C" NOT NULL, digest text NOT NULL,
                   pushed_ms bigint NOT NULL, PRIMARY KEY (repository, tag));
CREATE INDEX tags_by_digest ON tags (repository, digest);
CREATE TABLE referrers (repository text COLLATE "C" NOT NULL, subject text COLLATE "C" NOT NULL,
                        digest text COLLATE "C" NOT NULL, descriptor text NOT NULL,
                        PRIMARY KEY (repository, subject, digest));
CREATE TABLE uploads (id text COLLATE "C" PRIMARY KEY, repository text NOT NULL, started_ms bigint NOT NULL,
                      owner text NOT NULL DEFAULT '');
CREATE TABLE policies (scope text COLLATE "C" PRIMARY KEY, body text NOT NULL);
CREATE TABLE gc_state (id int PRIMARY KEY CHECK (id = 1), epoch_ms bigint NOT NULL);
)sql"},
  };
  return all;
}

}  // namespace wharf
