#include "core/auth/revocations.h"

#include "shared/base/log.h"
#include "shared/metrics/metrics.h"
#include "shared/store/lmdb.h"

namespace wharf {

namespace {
constexpr std::string_view kKey = "list";
}

Result<std::unique_ptr<Revocations>> Revocations::open(std::shared_ptr<LmdbEnv> env, Clock& clock, int64_t lifetime_s) {
  std::unique_ptr<Revocations> r(new Revocations(std::move(env), clock, lifetime_s));
  auto db = r->env_->openDb("revocations");
  if (!db.isOk()) return db.status();
  r->db_ = *db;
  auto txn = r->env_->read();
  if (!txn.isOk()) return txn.status();
  std::string_view v;
  RevocationList list;
  if (txn->get(r->db_, kKey, &v).isOk()) {
    auto j = nlohmann::json::parse(v, nullptr, /*allow_exceptions=*/false);
    auto parsed = RevocationList::fromJson(j);
    if (!parsed.isOk()) return Status(Code::kCorruption, "meta.lmdb revocations: " + parsed.status().message());
    list = *parsed;
  }
  int64_t now_s = clock.nowMillis() / 1000;
  for (const auto& e : list.entries) r->next_iat_.store(std::max(r->next_iat_.load(), e.before_s + 1));
  r->list_ = std::make_shared<const RevocationList>(list.pruned(now_s));
  return r;
}

std::shared_ptr<const RevocationList> Revocations::current() { return std::atomic_load(&list_); }

Status Revocations::add(const std::string& kind, const std::string& value) {
  std::lock_guard lock(mu_);
  int64_t now_s = clock_.nowMillis() / 1000;
  RevocationList next = list_->pruned(now_s);
  ++next.version;
  // Tokens already dated into this second (after an earlier revocation) are covered too.
  int64_t before = std::max(now_s, next_iat_.load());
  next.entries.push_back(Revocation{kind, value, before, before + lifetime_s_});
  auto txn = env_->write();
  if (!txn.isOk()) return txn.status();
  WHARF_RETURN_IF_ERROR(txn->put(db_, kKey, next.toJson().dump()));
  WHARF_RETURN_IF_ERROR(txn->commit());
  next_iat_.store(before + 1);
  std::atomic_store(&list_, std::make_shared<const RevocationList>(std::move(next)));
  static Counter& added = MetricsRegistry::global().counter("wharf_auth_revocations_total",
                                                            "Revocations of issued tokens (grants narrowed).");
  added.inc();
  logInfo("tokens revoked", {{"kind", kind}, {"value", value}, {"before", before}});
  if (on_change_) on_change_();
  return Status::ok();
}

}  // namespace wharf
