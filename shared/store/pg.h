// PostgreSQL through libpq, for the stores of a scale-out installation (several cores on
// one database): a small pool of connections, statements with text parameters (never
// SQL built from values), and transactions (READ COMMITTED; a read-only snapshot for
// scans) retried when PostgreSQL reports a deadlock or a serialization failure. The
// stores order their writers themselves, with advisory locks.
//
// Errors: a lost or refused connection is kUnavailable (the API answers 503 with
// Retry-After; the next call reconnects); a unique violation kConflict; anything else
// kIoError naming the SQLSTATE. Connection strings (postgres://user:pw@host/db) are
// never logged as given: redactedUrl() drops the password.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "shared/base/status.h"

typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

namespace wharf {

// The answer of one statement.
class PgResult {
 public:
  explicit PgResult(PGresult* r) : r_(r) {}
  PgResult(PgResult&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  PgResult& operator=(PgResult&& o) noexcept;
  PgResult(const PgResult&) = delete;
  ~PgResult();

  int rows() const;
  bool isNull(int row, int col) const;
  std::string_view text(int row, int col) const;  // "" for NULL
  int64_t integer(int row, int col) const;         // 0 for NULL
  bool boolean(int row, int col) const;            // 't'
  int64_t affected() const;                        // rows an INSERT/UPDATE/DELETE changed

 private:
  friend class PgConn;
  PGresult* r_;
};

using PgParams = std::vector<std::optional<std::string>>;  // nullopt: NULL

// One connection (leased from a PgPool for a call or a transaction).
class PgConn {
 public:
  explicit PgConn(PGconn* c) : c_(c) {}
  ~PgConn();
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;

  Result<PgResult> exec(std::string_view sql, const PgParams& params = {});
  bool ok() const;
  // The SQLSTATE of the last statement that failed ("" after a success).
  const std::string& lastState() const { return last_state_; }
  PGconn* raw() { return c_; }

 private:
  PGconn* c_;
  std::string last_state_;
};

// kSnapshot: a read-only transaction over one consistent snapshot (scans).
enum class PgIsolation { kReadCommitted, kSnapshot };

class PgPool {
 public:
  // Connects once (a start-up error names the server without the password).
  static Result<std::unique_ptr<PgPool>> open(const std::string& url, size_t size = 8);
  ~PgPool();

  // One statement in its own (implicit) transaction.
  Result<PgResult> query(std::string_view sql, const PgParams& params = {});
  // fn in a transaction, committed when it returns OK and rolled back otherwise; retried
  // (up to 10 times, with a short random pause) on serialization failures and deadlocks.
  Status transact(const std::function<Status(PgConn&)>& fn, PgIsolation isolation = PgIsolation::kReadCommitted);

  const std::string& url() const { return url_; }

  // One connection held for a while (session-level state such as advisory locks): given
  // back to the pool when the Session goes. PostgreSQL drops the session's locks if the
  // connection (or this process) dies.
  class Session {
   public:
    Session(PgPool* pool, std::unique_ptr<PgConn> conn) : pool_(pool), conn_(std::move(conn)) {}
    Session(Session&&) = default;
    ~Session() {
      if (conn_) pool_->giveBack(std::move(conn_));
    }
    PgConn& conn() { return *conn_; }
    // The connection is closed instead of given back (its session state is unknown).
    void discard() {
      if (conn_) pool_->drop(std::move(conn_));
    }

   private:
    PgPool* pool_;
    std::unique_ptr<PgConn> conn_;
  };
  Result<std::unique_ptr<Session>> session();

 private:
  explicit PgPool(std::string url, size_t size) : url_(std::move(url)), size_(size) {}
  Result<std::unique_ptr<PgConn>> lease();
  void giveBack(std::unique_ptr<PgConn> c);
  void drop(std::unique_ptr<PgConn> c);  // closes it; the pool may open another

  std::string url_;
  size_t size_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<PgConn>> idle_;
  size_t open_ = 0;  // connections leased or idle
};

// Notifications of a channel (LISTEN), delivered on a thread of the listener's own, over
// a connection of its own: what one core changed, the others hear of at once. Each time
// it starts listening (the first time, and after a lost connection, which it re-makes
// by itself) it calls on_notify("*"): what changed before is unknown, whatever depends on
// the channel must be read again. on_lost, if given, is called when the connection is
// found gone: until the next "*", notifications may be missed. The connection carries
// application_name (if given), so that others can see who listens (pg_stat_activity).
class PgListener {
 public:
  PgListener(std::string url, std::string channel, std::function<void(const std::string& payload)> on_notify,
             std::function<void()> on_lost = nullptr, std::string application_name = "");
  ~PgListener();  // stops the thread
  PgListener(const PgListener&) = delete;
  PgListener& operator=(const PgListener&) = delete;

 private:
  void run();
  std::string url_, channel_, application_name_;
  std::function<void(const std::string&)> on_notify_;
  std::function<void()> on_lost_;
  int wake_[2] = {-1, -1};  // a pipe: the destructor writes to stop the thread
  std::thread thread_;
};

// Whether PostgreSQL can hold s as text: UTF-8 as a UTF8 database accepts it (no overlong
// forms, surrogates or code points past U+10FFFF) and no NUL byte (libpq passes a text
// parameter as a C string: it would end there). Stores refuse, or find nothing for,
// what it cannot hold.
bool pgStorable(std::string_view s);
// s with each byte PostgreSQL cannot hold as text replaced by U+FFFD.
std::string pgStorableText(std::string_view s);

// A text[] parameter: {"a","b"} with quotes and backslashes escaped.
std::string pgArray(const std::vector<std::string>& items);
// The URL without its password ("postgres://wharf:***@db:5432/wharf").
std::string redactedUrl(const std::string& url);

}  // namespace wharf
