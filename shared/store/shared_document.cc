#include "shared/store/shared_document.h"

#include <sys/stat.h>

#include <mutex>

#include "shared/base/fs.h"
#include "shared/tls/crypto.h"

namespace wharf {
namespace {

constexpr const char* kDocumentsChannel = "wharf_documents";

class FileDocument final : public SharedDocument {
 public:
  explicit FileDocument(std::string path) : path_(std::move(path)) {}

  Result<std::optional<std::string>> read() override {
    std::string text;
    Status st = readFile(path_, &text);
    if (st.code() == Code::kNotFound) return std::optional<std::string>();
    if (!st.isOk()) return st;
    return std::optional<std::string>(std::move(text));
  }

  Result<std::string> update(
      const std::function<Result<std::string>(const std::optional<std::string>&)>& change) override {
    std::lock_guard lock(mu_);
    auto current = read();
    if (!current.isOk()) return current.status();
    auto next = change(*current);
    if (!next.isOk()) return next.status();
    if (!current->has_value() || **current != *next) {
      WHARF_RETURN_IF_ERROR(writeFileDurable(path_, *next, 0600));
      ::chmod(path_.c_str(), 0600);
    }
    return next;
  }

  std::string describe() const override { return path_; }

 private:
  std::string path_;
  std::mutex mu_;
};

class LmdbDocument final : public SharedDocument {
 public:
  LmdbDocument(std::shared_ptr<LmdbEnv> env, Dbi db, std::string key, std::string where)
      : env_(std::move(env)), db_(db), key_(std::move(key)), where_(std::move(where)) {}

  Result<std::optional<std::string>> read() override {
    auto txn = env_->read();
    if (!txn.isOk()) return txn.status();
    std::string_view v;
    if (!txn->get(db_, key_, &v).isOk()) return std::optional<std::string>();
    return std::optional<std::string>(std::string(v));
  }

  Result<std::string> update(
      const std::function<Result<std::string>(const std::optional<std::string>&)>& change) override {
    // The write transaction is the environment's one writer: nothing interleaves.
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    std::optional<std::string> current;
    std::string_view v;
    if (txn->get(db_, key_, &v).isOk()) current = std::string(v);
    auto next = change(current);
    if (!next.isOk()) return next.status();
    WHARF_RETURN_IF_ERROR(txn->put(db_, key_, *next));
    WHARF_RETURN_IF_ERROR(txn->commit());
    return next;
  }

  std::string describe() const override { return where_; }

 private:
  std::shared_ptr<LmdbEnv> env_;
  Dbi db_;
  std::string key_;
  std::string where_;
};

class PgDocument final : public SharedDocument {
 public:
  PgDocument(std::shared_ptr<PgPool> db, std::string name, std::string key)
      : db_(std::move(db)), name_(std::move(name)), key_(std::move(key)) {}
  ~PgDocument() override { listener_.reset(); }

  Result<std::optional<std::string>> read() override {
    auto r = db_->query("SELECT body FROM documents WHERE name = $1", {name_});
    if (!r.isOk()) return r.status();
    if (r->rows() == 0) return std::optional<std::string>();
    auto doc = open(std::string(r->text(0, 0)));
    if (!doc.isOk()) return doc.status();
    return std::optional<std::string>(std::move(doc).value());
  }

  Result<std::string> update(
      const std::function<Result<std::string>(const std::optional<std::string>&)>& change) override {
    std::string stored;
    Status st = db_->transact([&](PgConn& c) -> Status {
      // Other writers wait here until this commits (also before the row exists).
      auto lock = c.exec("SELECT pg_advisory_xact_lock(1510, hashtext($1))", {name_});
      if (!lock.isOk()) return lock.status();
      auto r = c.exec("SELECT body FROM documents WHERE name = $1", {name_});
      if (!r.isOk()) return r.status();
      std::optional<std::string> current;
      if (r->rows() == 1) {
        auto doc = open(std::string(r->text(0, 0)));
        if (!doc.isOk()) return doc.status();
        current = std::move(doc).value();
      }
      auto next = change(current);
      if (!next.isOk()) return next.status();
      stored = *next;
      if (current && *current == *next) return Status::ok();
      auto body = seal(*next);
      if (!body.isOk()) return body.status();
      auto w = c.exec("INSERT INTO documents (name, body) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET body = EXCLUDED.body",
                      {name_, *body});
      if (!w.isOk()) return w.status();
      auto n = c.exec("SELECT pg_notify($1, $2)", {std::string(kDocumentsChannel), name_});
      return n.isOk() ? Status::ok() : n.status();
    });
    if (!st.isOk()) return st;
    return stored;
  }

  std::string describe() const override { return "document " + name_ + " in " + redactedUrl(db_->url()); }

  void watch(std::function<void()> changed) override {
    listener_ = std::make_unique<PgListener>(db_->url(), kDocumentsChannel,
                                             [name = name_, changed = std::move(changed)](const std::string& payload) {
                                               if (payload == name || payload == "*") changed();
                                             });
  }

 private:
  std::string aad() const { return "wharf document " + name_; }
  Result<std::string> seal(const std::string& doc) const {
    if (key_.empty()) return doc;
    return sealSecret(key_, doc, aad());
  }
  Result<std::string> open(const std::string& body) const {
    if (key_.empty()) return body;
    auto doc = openSecret(key_, body, aad());
    if (!doc.isOk()) {
      return Status(Code::kCorruption, "document " + name_ + " in the database does not open with this core's sealing "
                                       "key (trust_key_file): every replica needs the same key file");
    }
    return doc;
  }

  std::shared_ptr<PgPool> db_;
  std::string name_;
  std::string key_;
  std::unique_ptr<PgListener> listener_;
};

}  // namespace

const std::vector<PgMigration>& documentMigrations() {
  static const std::vector<PgMigration> all = {
      {1, "small documents kept whole: the token signing keys (sealed), the revocation list",
       R"sql(
CREATE TABLE documents (name text COLLATE "C" PRIMARY KEY, body text NOT NULL);
)sql"},
  };
  return all;
}

Result<std::unique_ptr<SharedDocument>> openFileDocument(const std::string& path) {
  return std::unique_ptr<SharedDocument>(std::make_unique<FileDocument>(path));
}

Result<std::unique_ptr<SharedDocument>> openLmdbDocument(std::shared_ptr<LmdbEnv> env, const std::string& db,
                                                         const std::string& key) {
  auto dbi = env->openDb(db);
  if (!dbi.isOk()) return dbi.status();
  std::string where = "LMDB " + db + "/" + key;
  return std::unique_ptr<SharedDocument>(std::make_unique<LmdbDocument>(std::move(env), *dbi, key, where));
}

Result<std::unique_ptr<SharedDocument>> openPgDocument(std::shared_ptr<PgPool> db, const std::string& name,
                                                       const std::string& sealing_key) {
  if (!sealing_key.empty() && sealing_key.size() != 32) {
    return Status(Code::kInvalidArgument, "the sealing key is not 32 bytes");
  }
  auto applied = applyMigrations(*db, "documents", documentMigrations());
  if (!applied.isOk()) return applied.status();
  return std::unique_ptr<SharedDocument>(std::make_unique<PgDocument>(std::move(db), name, sealing_key));
}

}  // namespace wharf
