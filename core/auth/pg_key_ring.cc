// The token-signing key ring in the shared database (see key_ring.h): one row, the ring
// sealed with the core's sealing key, read-modify-written under its row lock.
#include <mutex>

#include "core/auth/key_ring.h"
#include "shared/base/log.h"
#include "shared/store/pg_migrations.h"
#include "shared/tls/crypto.h"

namespace wharf {
namespace {

constexpr const char* kKeysChannel = "wharf_keys";
// Binds the sealed box to what it is: another sealed secret cannot be swapped in.
constexpr const char* kKeysAad = "wharf token signing keys";

const std::vector<PgMigration>& tokenKeyMigrations() {
  static const std::vector<PgMigration> all = {
      {1, "the token signing keys, sealed", R"sql(
CREATE TABLE token_keys (id int PRIMARY KEY CHECK (id = 1), sealed text NOT NULL);
)sql"},
  };
  return all;
}

class PgKeyRingStorage final : public KeyRingStorage {
 public:
  PgKeyRingStorage(std::shared_ptr<PgPool> db, std::string key) : db_(std::move(db)), key_(std::move(key)) {}
  ~PgKeyRingStorage() override { listener_.reset(); }

  Result<std::optional<std::string>> read() override {
    auto r = db_->query("SELECT sealed FROM token_keys WHERE id = 1");
    if (!r.isOk()) return r.status();
    if (r->rows() == 0) return std::optional<std::string>();
    auto doc = unseal(std::string(r->text(0, 0)));
    if (!doc.isOk()) return doc.status();
    return std::optional<std::string>(std::move(doc).value());
  }

  Result<std::string> update(
      const std::function<Result<std::string>(const std::optional<std::string>&)>& change) override {
    std::string stored;
    Status st = db_->transact([&](PgConn& c) -> Status {
      // Other replicas wait here until this commits (the row may not exist yet: a lock
      // of its own, not the row's).
      auto lock = c.exec("SELECT pg_advisory_xact_lock(1510, 0)");
      if (!lock.isOk()) return lock.status();
      auto r = c.exec("SELECT sealed FROM token_keys WHERE id = 1");
      if (!r.isOk()) return r.status();
      std::optional<std::string> current;
      if (r->rows() == 1) {
        auto doc = unseal(std::string(r->text(0, 0)));
        if (!doc.isOk()) return doc.status();
        current = std::move(doc).value();
      }
      auto next = change(current);
      if (!next.isOk()) return next.status();
      stored = *next;
      if (current && *current == *next) return Status::ok();
      auto sealed = sealSecret(key_, *next, kKeysAad);
      if (!sealed.isOk()) return sealed.status();
      auto w = c.exec("INSERT INTO token_keys (id, sealed) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET sealed = EXCLUDED.sealed",
                      {*sealed});
      if (!w.isOk()) return w.status();
      auto n = c.exec("SELECT pg_notify($1, 'changed')", {std::string(kKeysChannel)});
      return n.isOk() ? Status::ok() : n.status();
    });
    if (!st.isOk()) return st;
    return stored;
  }

  std::string describe() const override { return "the token signing keys in " + redactedUrl(db_->url()); }

  void watch(std::function<void()> changed) override {
    listener_ = std::make_unique<PgListener>(db_->url(), kKeysChannel, [changed = std::move(changed)](const std::string&) {
      changed();
    });
  }

 private:
  Result<std::string> unseal(const std::string& sealed) {
    auto doc = openSecret(key_, sealed, kKeysAad);
    if (!doc.isOk()) {
      return Status(Code::kCorruption,
                    "the token signing keys in the database do not open with this core's sealing key "
                    "(trust_key_file): every replica needs the same key file");
    }
    return doc;
  }

  std::shared_ptr<PgPool> db_;
  std::string key_;
  std::unique_ptr<PgListener> listener_;
};

}  // namespace

const std::vector<PgMigration>& keyRingMigrations() { return tokenKeyMigrations(); }

Result<std::unique_ptr<KeyRingStorage>> openPgKeyRingStorage(std::shared_ptr<PgPool> db, std::string sealing_key) {
  if (sealing_key.size() != 32) return Status(Code::kInvalidArgument, "the sealing key is not 32 bytes");
  auto applied = applyMigrations(*db, "token_keys", tokenKeyMigrations());
  if (!applied.isOk()) return applied.status();
  return std::unique_ptr<KeyRingStorage>(std::make_unique<PgKeyRingStorage>(std::move(db), std::move(sealing_key)));
}

}  // namespace wharf
