// Webhooks: HTTP POSTs of the event log to URLs that users register per repository or
// namespace.
//
//   WebhookStore       the hooks, their cursors (last delivered seq), delivery logs and
//                      which replica delivers them (LMDB, or PostgreSQL shared by replicas)
//   WebhookDispatcher  follows the event log per hook, batches events into an envelope
//                      compatible with distribution's notifications, signs it, sends it,
//                      retries with exponential backoff, logs every attempt
//   WebhookService     the two together plus the policy the API applies
//
// Targets: only http and https URLs; the host is resolved and every address must be
// public (not loopback, link-local, private, unique-local, CGNAT, unspecified, multicast
// or reserved) unless the core's config allows private targets (webhook_allow_private).
// The check is made when a hook is created or its URL changes, and again before every
// delivery, and the connection goes to the address that was checked (so a DNS answer
// that changes between check and connect cannot redirect it). Redirects are not
// followed.
//
// Secrets: a hook's secret is the HMAC-SHA256 key of its X-Wharf-Signature header. It is
// stored (the core must sign with it) and never returned, logged or sent anywhere but
// in signatures of deliveries to the URL it was stored with.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/events/event_log.h"
#include "shared/base/clock.h"
#include "shared/event/work_queue.h"
#include "shared/store/lmdb.h"
#include "shared/store/pg.h"
#include "shared/store/pg_migrations.h"

namespace wharf {

// Why an address may not be a webhook target ("loopback", "link-local", "private",
// "unique-local", "shared", "unspecified", "multicast", "reserved", "broadcast"), or
// nullptr for a public address. IPv4-mapped and -compatible IPv6 addresses are judged by
// their IPv4 address.
const char* refusedAddressReason(const sockaddr* addr);
// The same for an address literal ("10.1.2.3", "::1"); "invalid" when it is not one.
const char* refusedAddressReason(const std::string& literal);

struct HookUrl {
  bool tls = false;
  std::string host;         // without brackets
  int port = 0;
  std::string target;       // path and query, "/" at least
  std::string host_header;  // as written
};
// http(s)://host[:port][/path][?query]; no user info, no fragment.
Result<HookUrl> parseHookUrl(const std::string& url);
// Resolves the URL's host; kInvalidArgument naming the address and the reason when an
// address is refused (any refused address refuses the target) and allow_private is off.
Result<std::vector<sockaddr_storage>> resolveHookTarget(const HookUrl& url, bool allow_private);

struct Webhook {
  std::string id;
  std::string scope;                // "team/app" (a repository), "team/*" (a namespace) or "*"
  std::string url;
  std::vector<std::string> events;  // type patterns (eventTypeMatches)
  std::string secret;               // HMAC key; "" = unsigned
  bool enabled = true;
  std::string created_by;
  int64_t created_ms = 0;

  bool covers(const Event& e) const;  // scope and types
  // The API view: everything but the secret, plus "has_secret".
  nlohmann::json toJson() const;
  nlohmann::json toStored() const;
  static Webhook fromStored(const nlohmann::json& j);
};

// Whether s is a valid scope: a repository name, "<namespace>/*" or "*".
Status validateHookScope(const std::string& scope);

struct DeliveryRecord {
  std::string delivery;     // the batch's id (X-Wharf-Delivery), the same for each attempt
  std::string hook;
  uint64_t first_seq = 0, last_seq = 0;
  size_t events = 0;
  int attempt = 1;
  int status = 0;           // HTTP status; 0 when none came back
  std::string error;
  std::string outcome;      // "delivered", "retrying", "failed"
  int64_t duration_ms = 0;
  int64_t ts_ms = 0;
  nlohmann::json toJson() const;
  static DeliveryRecord fromJson(const nlohmann::json& j);
};

// Hooks, their cursors and delivery logs. Two backends:
//
//   LMDB (embedded)  in the events environment: webhooks (<id> -> Webhook JSON with the
//                    secret), webhook_cursors (<id> -> last handled seq, decimal),
//                    webhook_deliveries (<id> \0 <ts_ms, 8 bytes BE> \0 <n, 8 bytes BE> ->
//                    DeliveryRecord JSON). One core delivers every hook.
//   PostgreSQL       tables webhooks (id, doc: the hook with its secret sealed by the
//                    core's sealing key, lease_owner, lease_until), webhook_cursors (id,
//                    cursor) and webhook_deliveries (hook, n, ts_ms, doc), shared by the
//                    replicas: a hook registered on one is delivered by whichever holds
//                    its lease.
//
// Delivery is at least once: a replica that lost a hook's lease (paused, partitioned)
// may still finish the batch it was sending while another sends it again; a cursor
// never moves back. Writes are transactions: call from worker or dispatcher threads.
// Thread-safe.
class WebhookStore {
 public:
  virtual ~WebhookStore() = default;
  virtual Status put(const Webhook& hook) = 0;
  virtual Result<Webhook> get(const std::string& id) const = 0;
  virtual std::vector<Webhook> list() const = 0;
  virtual Status remove(const std::string& id) = 0;  // and its cursor and deliveries
  virtual uint64_t cursor(const std::string& id) const = 0;
  // Moves the cursor to seq, never back (also before the hook is stored: a new hook
  // starts at the end of the log).
  virtual Status setCursor(const std::string& id, uint64_t seq) = 0;
  // Appends and trims the hook's log to the newest deliveries_per_hook records.
  virtual Status addDelivery(const DeliveryRecord& record) = 0;
  // Newest first.
  virtual std::vector<DeliveryRecord> deliveries(const std::string& id, size_t limit) const = 0;
  // The hooks that owner (a replica) delivers from now on, for lease_ms: those it held,
  // and those whose lease ran out. An unreachable store gives none.
  virtual std::vector<std::string> claim(const std::string& owner, int64_t lease_ms) = 0;
};

Result<std::unique_ptr<WebhookStore>> openLmdbWebhookStore(std::shared_ptr<LmdbEnv> env,
                                                           size_t deliveries_per_hook = 200);
// The "webhooks" component's migrations, oldest first (never edit one that shipped).
const std::vector<PgMigration>& webhookMigrations();
// Applies the migrations first. sealing_key: the core's 32-byte sealing key.
Result<std::unique_ptr<WebhookStore>> openPgWebhookStore(std::shared_ptr<PgPool> db, std::string sealing_key,
                                                         size_t deliveries_per_hook = 200);

// Where an envelope says it comes from.
struct EnvelopeSource {
  std::string addr;         // host name of the core
  std::string instance_id;  // EventLog::instanceId()
  std::string public_url;   // for target.url; may be empty
};

// {"events":[{"id","timestamp","action","target":{"mediaType","digest","size","length",
// "repository","url","tag"},"request":{"id","addr","method"},"actor":{"name"},
// "source":{"addr","instanceID"},"wharf":{"seq","type","count"}}]}. action is "push"
// (blob, manifest and tag pushes, tag moves), "pull" or "delete"; other types pass their
// own action ("scan.done" -> "done").
nlohmann::json webhookEnvelope(const std::vector<Event>& events, const EnvelopeSource& source);
constexpr const char* kEnvelopeMediaType = "application/vnd.docker.distribution.events.v1+json";

// Delay before attempt `attempt + 1` after attempt `attempt` (1-based) failed:
// base * 2^(attempt-1), at most cap.
int64_t backoffDelayMs(int attempt, int64_t base_ms, int64_t cap_ms);

struct DeliveryResult {
  int status = 0;      // HTTP status, 0 when none
  std::string error;   // empty on a 2xx
  int64_t duration_ms = 0;
  bool ok() const { return status >= 200 && status < 300; }
};

// Sends one POST. The default sender (httpPostHook) resolves and checks the target
// (resolveHookTarget), connects with a timeout, sends, and reads the status line.
using WebhookSender = std::function<DeliveryResult(const std::string& url, const std::string& body,
                                                   const std::vector<std::pair<std::string, std::string>>& headers)>;
DeliveryResult httpPostHook(const std::string& url, const std::string& body,
                            const std::vector<std::pair<std::string, std::string>>& headers, bool allow_private,
                            int timeout_ms);

struct DispatcherOptions {
  int max_attempts = 6;
  int64_t backoff_base_ms = 1000;
  int64_t backoff_cap_ms = 300'000;
  size_t batch_max = 50;        // events per envelope
  size_t threads = 4;           // concurrent deliveries (0: deliver inline in step(), for tests)
  int64_t idle_poll_ms = 1000;  // wake-up without news
  int64_t lease_ms = 30'000;    // a hook's delivery lease on a shared store (renewed at every step)
};

class WebhookDispatcher {
 public:
  WebhookDispatcher(WebhookStore& store, EventLog& events, Clock& clock, DispatcherOptions options,
                    WebhookSender sender, EnvelopeSource source);
  ~WebhookDispatcher();  // stop()

  // Starts the dispatching thread (not needed when tests call step()).
  void start();
  // Stops dispatching; deliveries in flight finish first.
  void stop();
  // Wakes the dispatcher (a new event, a new hook).
  void kick();
  // One pass over the hooks: every hook that has undelivered events and is not waiting
  // for a retry gets its next batch sent (inline when options.threads == 0).
  void step();
  // Sends one test envelope (a "webhook.test" event) to the hook's stored URL with its
  // stored secret, once, and logs it. Blocks: call on a worker.
  DeliveryRecord sendTest(const Webhook& hook, const std::string& actor);
  // When the hook's next retry is due (ms on the clock), if it waits for one.
  std::optional<int64_t> retryDueMs(const std::string& id) const;

  // The headers of a delivery of body to hook (Content-Type, X-Wharf-Delivery, and
  // X-Wharf-Signature when the hook has a secret).
  static std::vector<std::pair<std::string, std::string>> headersFor(const Webhook& hook, const std::string& delivery,
                                                                     const std::string& body);

 private:
  struct HookState {
    bool in_flight = false;
    int attempt = 0;             // attempts made for the pending batch
    int64_t next_due_ms = 0;
    std::string delivery;        // the pending batch's id
    std::vector<Event> batch;    // pending batch (empty: none)
    uint64_t through_seq = 0;    // the cursor once the batch is done
  };
  void run();
  void deliver(const Webhook& hook);  // for a hook marked in flight

  WebhookStore& store_;
  EventLog& events_;
  Clock& clock_;
  DispatcherOptions options_;
  WebhookSender sender_;
  EnvelopeSource source_;
  std::unique_ptr<WorkQueue> pool_;
  const std::string owner_;  // this dispatcher, in the store's leases

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, HookState> states_;  // GUARDED_BY(mu_)
  bool kicked_ = false;                      // GUARDED_BY(mu_)
  bool stop_ = false;                        // GUARDED_BY(mu_)
  std::thread thread_;
};

// What the API works with: the store, the dispatcher and the policy.
struct WebhookService {
  WebhookStore& store;
  WebhookDispatcher& dispatcher;
  EventLog& events;
  bool allow_private = false;
};

}  // namespace wharf
