#include "core/auth/revocations.h"

#include "shared/base/log.h"
#include "shared/metrics/metrics.h"
#include "shared/store/shared_document.h"

namespace wharf {

Revocations::Revocations(std::unique_ptr<SharedDocument> doc, Clock& clock, int64_t lifetime_s)
    : doc_(std::move(doc)), clock_(clock), lifetime_s_(lifetime_s) {}

// The document's notification thread stops before the rest goes.
Revocations::~Revocations() { doc_.reset(); }

Result<std::unique_ptr<Revocations>> Revocations::open(std::unique_ptr<SharedDocument> doc, Clock& clock,
                                                       int64_t lifetime_s) {
  std::unique_ptr<Revocations> r(new Revocations(std::move(doc), clock, lifetime_s));
  auto text = r->doc_->read();
  if (!text.isOk()) return text.status();
  {
    std::lock_guard lock(r->mu_);
    WHARF_RETURN_IF_ERROR(r->adopt(*text));
  }
  r->doc_->watch([p = r.get()] { p->reload(); });
  return r;
}

Status Revocations::adopt(const std::optional<std::string>& text) {
  RevocationList list;
  if (text) {
    auto j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
    auto parsed = RevocationList::fromJson(j);
    if (!parsed.isOk()) return Status(Code::kCorruption, doc_->describe() + ": " + parsed.status().message());
    list = *parsed;
  }
  int64_t now_s = clock_.nowMillis() / 1000;
  for (const auto& e : list.entries) next_iat_.store(std::max(next_iat_.load(), e.before_s + 1));
  std::atomic_store(&list_, std::make_shared<const RevocationList>(list.pruned(now_s)));
  return Status::ok();
}

void Revocations::reload() {
  auto text = doc_->read();
  if (!text.isOk()) {
    logWarn("cannot reload the revocation list", {{"error", text.status().message()}});
    return;
  }
  {
    std::lock_guard lock(mu_);
    if (Status st = adopt(*text); !st.isOk()) {
      logWarn("cannot reload the revocation list", {{"error", st.message()}});
      return;
    }
  }
  if (on_change_) on_change_();
}

std::shared_ptr<const RevocationList> Revocations::current() { return std::atomic_load(&list_); }

Status Revocations::add(const std::string& kind, const std::string& value) {
  std::lock_guard lock(mu_);
  int64_t now_s = clock_.nowMillis() / 1000;
  RevocationList next;
  int64_t before = 0;
  // Applied to the stored list (another replica may have added to it meanwhile).
  auto stored = doc_->update([&](const std::optional<std::string>& current) -> Result<std::string> {
    RevocationList list;
    if (current) {
      auto parsed = RevocationList::fromJson(nlohmann::json::parse(*current, nullptr, false));
      if (!parsed.isOk()) return Status(Code::kCorruption, doc_->describe() + ": " + parsed.status().message());
      list = *parsed;
    }
    next = list.pruned(now_s);
    ++next.version;
    // Tokens already dated into this second (after an earlier revocation) are covered too.
    int64_t newest = next_iat_.load();
    for (const auto& e : next.entries) newest = std::max(newest, e.before_s + 1);
    before = std::max(now_s, newest);
    next.entries.push_back(Revocation{kind, value, before, before + lifetime_s_});
    return next.toJson().dump();
  });
  if (!stored.isOk()) return stored.status();
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
