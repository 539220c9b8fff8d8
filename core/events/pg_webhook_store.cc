// Webhooks on PostgreSQL, shared by the replicas (layout in webhooks.h). A hook's secret
// is sealed with the core's sealing key (the replicas share it), bound to the hook's id.
#include "core/events/webhooks.h"
#include "shared/base/log.h"
#include "shared/tls/crypto.h"

namespace wharf {
namespace {

using nlohmann::json;

// Milliseconds on the database's clock: leases are compared on one clock, whichever
// replica's own is off.
constexpr const char* kDbNowMs = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

class PgWebhookStore final : public WebhookStore {
 public:
  PgWebhookStore(std::shared_ptr<PgPool> db, std::string key, size_t cap)
      : db_(std::move(db)), key_(std::move(key)), cap_(cap) {}

  Status put(const Webhook& hook) override {
    json doc = hook.toStored();
    doc.erase("secret");
    if (!hook.secret.empty()) {
      auto sealed = sealSecret(key_, hook.secret, aad(hook.id));
      if (!sealed.isOk()) return sealed.status();
      doc["sealed_secret"] = *sealed;
    }
    auto r = db_->query("INSERT INTO webhooks (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc",
                        {hook.id, doc.dump()});
    return r.isOk() ? Status::ok() : r.status();
  }

  Result<Webhook> get(const std::string& id) const override {
    auto r = db_->query("SELECT doc FROM webhooks WHERE id = $1", {id});
    if (!r.isOk()) return r.status();
    if (r->rows() == 0) return Status(Code::kNotFound, "no webhook " + id);
    return decode(id, r->text(0, 0));
  }

  std::vector<Webhook> list() const override {
    std::vector<Webhook> out;
    auto r = db_->query("SELECT id, doc FROM webhooks ORDER BY id");
    if (!r.isOk()) return out;
    for (int i = 0; i < r->rows(); ++i) {
      auto h = decode(std::string(r->text(i, 0)), r->text(i, 1));
      if (h.isOk()) {
        out.push_back(std::move(h).value());
      } else {
        logWarn("a webhook cannot be read; it is not delivered", {{"hook", std::string(r->text(i, 0))},
                                                                  {"error", h.status().message()}});
      }
    }
    return out;
  }

  Status remove(const std::string& id) override {
    return db_->transact([&](PgConn& c) -> Status {
      auto r = c.exec("DELETE FROM webhooks WHERE id = $1", {id});
      if (!r.isOk()) return r.status();
      if (r->affected() == 0) return Status(Code::kNotFound, "no webhook " + id);
      auto d = c.exec("DELETE FROM webhook_deliveries WHERE hook = $1", {id});
      if (!d.isOk()) return d.status();
      auto k = c.exec("DELETE FROM webhook_cursors WHERE id = $1", {id});
      return k.isOk() ? Status::ok() : k.status();
    });
  }

  uint64_t cursor(const std::string& id) const override {
    auto r = db_->query("SELECT cursor FROM webhook_cursors WHERE id = $1", {id});
    if (!r.isOk() || r->rows() == 0) return 0;
    return static_cast<uint64_t>(r->integer(0, 0));
  }

  // A cursor may be set before its hook is stored (a new hook starts at the log's end).
  Status setCursor(const std::string& id, uint64_t seq) override {
    auto r = db_->query("INSERT INTO webhook_cursors (id, cursor) VALUES ($1, $2::bigint) ON CONFLICT (id) "
                        "DO UPDATE SET cursor = GREATEST(webhook_cursors.cursor, EXCLUDED.cursor)",
                        {id, std::to_string(seq)});
    return r.isOk() ? Status::ok() : r.status();
  }

  Status addDelivery(const DeliveryRecord& record) override {
    return db_->transact([&](PgConn& c) -> Status {
      auto r = c.exec("INSERT INTO webhook_deliveries (hook, ts_ms, doc) VALUES ($1, $2, $3)",
                      {record.hook, std::to_string(record.ts_ms), record.toJson().dump()});
      if (!r.isOk()) return r.status();
      auto trim = c.exec(
          "DELETE FROM webhook_deliveries WHERE hook = $1 AND n <= (SELECT n FROM webhook_deliveries WHERE hook = $1 "
          "ORDER BY n DESC OFFSET $2 LIMIT 1)",
          {record.hook, std::to_string(cap_)});
      return trim.isOk() ? Status::ok() : trim.status();
    });
  }

  std::vector<DeliveryRecord> deliveries(const std::string& id, size_t limit) const override {
    std::vector<DeliveryRecord> out;
    auto r = db_->query("SELECT doc FROM webhook_deliveries WHERE hook = $1 ORDER BY n DESC LIMIT $2",
                        {id, std::to_string(limit)});
    if (!r.isOk()) return out;
    for (int i = 0; i < r->rows(); ++i) {
      json j = json::parse(r->text(i, 0), nullptr, false);
      if (j.is_object()) out.push_back(DeliveryRecord::fromJson(j));
    }
    return out;
  }

  std::vector<std::string> claim(const std::string& owner, int64_t lease_ms) override {
    std::vector<std::string> ids;
    auto r = db_->query(std::string("UPDATE webhooks SET lease_owner = $1, lease_until = ") + kDbNowMs +
                            " + $2::bigint WHERE lease_owner = $1 OR lease_until < " + kDbNowMs + " RETURNING id",
                        {owner, std::to_string(lease_ms)});
    if (!r.isOk()) return ids;
    for (int i = 0; i < r->rows(); ++i) ids.emplace_back(r->text(i, 0));
    return ids;
  }

 private:
  static std::string aad(const std::string& id) { return "wharf webhook secret " + id; }

  Result<Webhook> decode(const std::string& id, std::string_view text) const {
    json j = json::parse(text, nullptr, false);
    if (!j.is_object()) return Status(Code::kCorruption, "webhook " + id + " is unreadable");
    Webhook h = Webhook::fromStored(j);
    if (auto sealed = j.find("sealed_secret"); sealed != j.end() && sealed->is_string()) {
      auto secret = openSecret(key_, sealed->get<std::string>(), aad(id));
      if (!secret.isOk()) {
        return Status(Code::kCorruption, "webhook " + id + ": its secret does not open with this core's sealing key");
      }
      h.secret = std::move(secret).value();
    }
    return h;
  }

  std::shared_ptr<PgPool> db_;
  std::string key_;
  size_t cap_;
};

}  // namespace

const std::vector<PgMigration>& webhookMigrations() {
  static const std::vector<PgMigration> all = {
      {1, "webhooks: hooks with their delivery lease, their cursors and their delivery logs",
       R"sql(
CREATE TABLE webhooks (id text PRIMARY KEY, doc text NOT NULL,
                       lease_owner text NOT NULL DEFAULT '', lease_until bigint NOT NULL DEFAULT 0);
CREATE TABLE webhook_cursors (id text PRIMARY KEY, cursor bigint NOT NULL);
CREATE TABLE webhook_deliveries (hook text NOT NULL, n bigserial NOT NULL, ts_ms bigint NOT NULL, doc text NOT NULL,
                                 PRIMARY KEY (hook, n));
)sql"},
  };
  return all;
}

Result<std::unique_ptr<WebhookStore>> openPgWebhookStore(std::shared_ptr<PgPool> db, std::string sealing_key,
                                                         size_t deliveries_per_hook) {
  auto applied = applyMigrations(*db, "webhooks", webhookMigrations());
  if (!applied.isOk()) return applied.status();
  return std::unique_ptr<WebhookStore>(new PgWebhookStore(std::move(db), std::move(sealing_key), deliveries_per_hook));
}

}  // namespace wharf
