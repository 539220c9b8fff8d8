#include "shared/store/pg.h"

#include <libpq-fe.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>

#include <chrono>
#include <cstdlib>
#include <random>
#include <thread>

#include "shared/base/log.h"

namespace wharf {
namespace {

Status connectionLost(PGconn* c) {
  std::string why = c != nullptr ? PQerrorMessage(c) : "out of memory";
  while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
  return Status(Code::kUnavailable, "the metadata database is unavailable: " + why);
}

}  // namespace

PgResult& PgResult::operator=(PgResult&& o) noexcept {
  if (this != &o) {
    if (r_ != nullptr) PQclear(r_);
    r_ = o.r_;
    o.r_ = nullptr;
  }
  return *this;
}
PgResult::~PgResult() {
  if (r_ != nullptr) PQclear(r_);
}
int PgResult::rows() const { return r_ != nullptr ? PQntuples(r_) : 0; }
bool PgResult::isNull(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
std::string_view PgResult::text(int row, int col) const {
  return std::string_view(PQgetvalue(r_, row, col), static_cast<size_t>(PQgetlength(r_, row, col)));
}
int64_t PgResult::integer(int row, int col) const {
  return isNull(row, col) ? 0 : std::strtoll(PQgetvalue(r_, row, col), nullptr, 10);
}
bool PgResult::boolean(int row, int col) const { return !isNull(row, col) && PQgetvalue(r_, row, col)[0] == 't'; }
int64_t PgResult::affected() const {
  const char* n = r_ != nullptr ? PQcmdTuples(r_) : "";
  return *n != '\0' ? std::strtoll(n, nullptr, 10) : 0;
}

PgConn::~PgConn() {
  if (c_ != nullptr) PQfinish(c_);
}

bool PgConn::ok() const { return c_ != nullptr && PQstatus(c_) == CONNECTION_OK; }

Result<PgResult> PgConn::exec(std::string_view sql, const PgParams& params) {
  last_state_.clear();
  if (!ok()) {
    last_state_ = "08000";
    return connectionLost(c_);
  }
  std::vector<const char*> values;
  std::vector<int> lengths;
  values.reserve(params.size());
  for (const auto& p : params) {
    values.push_back(p ? p->data() : nullptr);
    lengths.push_back(p ? static_cast<int>(p->size()) : 0);
  }
  std::string text(sql);
  // Without parameters, the simple protocol (several statements may go at once: migrations).
  PgResult r(params.empty() ? PQexec(c_, text.c_str())
                            : PQexecParams(c_, text.c_str(), static_cast<int>(params.size()), nullptr, values.data(),
                                           lengths.data(), nullptr, 0));
  if (r.r_ == nullptr) {
    last_state_ = "08000";
    return connectionLost(c_);
  }
  ExecStatusType st = PQresultStatus(r.r_);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
  const char* state = PQresultErrorField(r.r_, PG_DIAG_SQLSTATE);
  last_state_ = state != nullptr ? state : "";
  if (!ok() || last_state_.rfind("08", 0) == 0 || last_state_ == "57P01" || last_state_ == "57P02" ||
      last_state_ == "57P03") {
    return connectionLost(c_);
  }
  const char* primary = PQresultErrorField(r.r_, PG_DIAG_MESSAGE_PRIMARY);
  std::string msg = std::string(primary != nullptr ? primary : "error") + " (SQLSTATE " + last_state_ + ")";
  if (last_state_ == "23505") return Status(Code::kConflict, msg);
  if (last_state_ == "40001" || last_state_ == "40P01") return Status(Code::kConflict, "transaction conflict: " + msg);
  return Status(Code::kIoError, "metadata database: " + msg);
}

Result<std::unique_ptr<PgPool>> PgPool::open(const std::string& url, size_t size) {
  std::unique_ptr<PgPool> pool(new PgPool(url, std::max<size_t>(size, 1)));
  auto c = pool->lease();
  if (!c.isOk()) {
    return Status(c.status().code(), "cannot connect to " + redactedUrl(url) + ": " + c.status().message());
  }
  pool->giveBack(std::move(c).value());
  return pool;
}

PgPool::~PgPool() = default;

Result<std::unique_ptr<PgConn>> PgPool::lease() {
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !idle_.empty() || open_ < size_; });
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      if (c->ok()) return c;
      --open_;  // broken: a new one below
    }
    ++open_;
  }
  // A server that does not answer fails the connection after 5 s (unless the URL says).
  const char* keys[] = {"connect_timeout", "dbname", nullptr};
  const char* values[] = {"5", url_.c_str(), nullptr};
  PGconn* raw = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  // Notices ("relation already exists, skipping") are not errors: not printed.
  if (raw != nullptr) PQsetNoticeProcessor(raw, [](void*, const char*) {}, nullptr);
  auto c = std::make_unique<PgConn>(raw);
  if (!c->ok()) {
    Status st = c->exec("SELECT 1").status();
    {
      std::lock_guard lock(mu_);
      --open_;
    }
    cv_.notify_one();
    return st.isOk() ? Status(Code::kUnavailable, "the metadata database is unavailable") : st;
  }
  return c;
}

void PgPool::giveBack(std::unique_ptr<PgConn> c) {
  {
    std::lock_guard lock(mu_);
    if (c->ok()) {
      idle_.push_back(std::move(c));
    } else {
      --open_;
    }
  }
  cv_.notify_one();
}

void PgPool::drop(std::unique_ptr<PgConn> c) {
  c.reset();
  {
    std::lock_guard lock(mu_);
    --open_;
  }
  cv_.notify_one();
}

Result<std::unique_ptr<PgPool::Session>> PgPool::session() {
  auto c = lease();
  if (!c.isOk()) return c.status();
  return std::make_unique<Session>(this, std::move(c).value());
}

Result<PgResult> PgPool::query(std::string_view sql, const PgParams& params) {
  auto c = lease();
  if (!c.isOk()) return c.status();
  auto r = (*c)->exec(sql, params);
  giveBack(std::move(c).value());
  return r;
}

Status PgPool::transact(const std::function<Status(PgConn&)>& fn, PgIsolation isolation) {
  thread_local std::minstd_rand jitter(std::random_device{}());
  const char* begin = isolation == PgIsolation::kSnapshot ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN";
  Status last;
  for (int attempt = 0; attempt < 10; ++attempt) {
    auto leased = lease();
    if (!leased.isOk()) return leased.status();
    PgConn& c = **leased;
    Status st = c.exec(begin).status();
    if (st.isOk()) st = fn(c);
    if (st.isOk()) st = c.exec("COMMIT").status();
    std::string state = c.lastState();
    if (!st.isOk() && c.ok()) (void)c.exec("ROLLBACK");
    giveBack(std::move(leased).value());
    if (st.isOk()) return st;
    last = st;
    if (state != "40001" && state != "40P01") return st;
    std::this_thread::sleep_for(std::chrono::microseconds(200 + jitter() % (1000 << std::min(attempt, 5))));
  }
  return last;
}

PgListener::PgListener(std::string url, std::string channel, std::function<void(const std::string&)> on_notify,
                       std::function<void()> on_lost, std::string application_name)
    : url_(std::move(url)),
      channel_(std::move(channel)),
      application_name_(std::move(application_name)),
      on_notify_(std::move(on_notify)),
      on_lost_(std::move(on_lost)) {
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) wake_[0] = wake_[1] = -1;
  thread_ = std::thread([this] { run(); });
}

PgListener::~PgListener() {
  if (wake_[1] >= 0) (void)!::write(wake_[1], "x", 1);
  if (thread_.joinable()) thread_.join();
  for (int fd : wake_)
    if (fd >= 0) ::close(fd);
}

void PgListener::run() {
  int backoff_ms = 100;
  for (;;) {
    const char* keys[] = {"connect_timeout", "dbname", application_name_.empty() ? nullptr : "application_name",
                          nullptr};
    const char* values[] = {"5", url_.c_str(), application_name_.c_str(), nullptr};
    PgConn conn(PQconnectdbParams(keys, values, 1));
    if (conn.ok() && conn.exec("LISTEN \"" + channel_ + "\"").isOk()) {
      backoff_ms = 100;
      // What changed before we listened (at start, or while we were away) is unknown.
      on_notify_("*");
      PGconn* c = conn.raw();
      for (;;) {
        // What libpq holds already (read with the last input or the last statement).
        while (PGnotify* note = PQnotifies(c)) {
          std::string payload = note->extra != nullptr ? note->extra : "";
          PQfreemem(note);
          on_notify_(payload);
        }
        pollfd fds[2] = {{PQsocket(c), POLLIN, 0}, {wake_[0], POLLIN, 0}};
        int n = ::poll(fds, 2, 10'000);
        if (n < 0 && errno != EINTR) break;
        if (fds[1].revents != 0) return;
        if (n > 0 && PQconsumeInput(c) == 0) break;           // the connection is gone
        if (n == 0 && !conn.exec("SELECT 1").isOk()) break;  // a quiet connection: still there?
      }
      if (on_lost_) on_lost_();
      logWarn("lost the notification connection; reconnecting", {{"channel", channel_}});
    }
    // Wait before the next attempt, unless asked to stop.
    pollfd stop = {wake_[0], POLLIN, 0};
    if (::poll(&stop, 1, backoff_ms) > 0) return;
    backoff_ms = std::min(backoff_ms * 2, 5000);
  }
}

namespace {

// The length of the UTF-8 sequence at s[i] as PostgreSQL accepts it, 0 for an invalid
// one or a NUL byte.
size_t utf8At(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  if (c == 0) return 0;
  if (c < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size() || b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  return n;
}

}  // namespace

bool pgStorable(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8At(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string pgStorableText(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8At(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string pgArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char ch : items[i]) {
      if (ch == '"' || ch == '\\') out += '\\';
      out += ch;
    }
    out += '"';
  }
  return out + "}";
}

std::string redactedUrl(const std::string& url) {
  // postgres://user:password@host... -> postgres://user:***@host...
  auto scheme = url.find("://");
  if (scheme == std::string::npos) return url.find("password") != std::string::npos ? "(a connection string)" : url;
  auto at = url.find('@', scheme + 3);
  if (at == std::string::npos) return url;
  auto colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

}  // namespace wharf
