// Blob uploads:
//   POST   /v2/<name>/blobs/uploads/[?digest=|?mount=&from=]
//   PATCH  /v2/<name>/blobs/uploads/<id>      (chunk, with or without Content-Range)
//   PUT    /v2/<name>/blobs/uploads/<id>?digest=
//   GET    /v2/<name>/blobs/uploads/<id>      (status)
//   DELETE /v2/<name>/blobs/uploads/<id>      (cancel)
#include "core/api/api.h"
#include "core/events/event_log.h"

namespace wharf {
namespace {

using Lease = UploadSessions::Lease;

std::string uploadLocation(const std::string& name, const std::string& id) {
  return "/v2/" + name + "/blobs/uploads/" + id;
}

// The spec's Range header for an upload holding `size` bytes ("0-0" when empty, as
// Docker's registry answers).
std::string rangeHeader(uint64_t size) { return "0-" + std::to_string(size == 0 ? 0 : size - 1); }

Response uploadStatus(int status, const std::string& name, const std::string& id, uint64_t size) {
  Response r;
  r.status = status;
  r.headers.add("Location", uploadLocation(name, id));
  r.headers.add("Range", rangeHeader(size));
  r.headers.add("Docker-Upload-UUID", id);
  return r;
}

Response blobCreated(const std::string& name, const std::string& digest) {
  Response r;
  r.status = 201;
  r.headers.add("Location", "/v2/" + name + "/blobs/" + digest);
  r.headers.add("Docker-Content-Digest", digest);
  return r;
}

// What follows the body: the upload stays open for more chunks (its bytes are flushed
// to the blob store, so that any replica can take the next one), or it is finished now.
enum class After { kMoreChunks, kFinish };

// Reads the request body piece by piece and appends each piece to the leased upload on
// a worker, so at most one piece per request is in memory beyond what the connection
// buffers. done(status) runs on the loop thread.
class BodyPump : public std::enable_shared_from_this<BodyPump> {
 public:
  BodyPump(ApiContext& ctx, ExchangePtr ex, std::shared_ptr<Lease> lease, After after, std::function<void(Status)> done)
      : ctx_(ctx),
        ex_(std::move(ex)),
        lease_(std::move(lease)),
        after_(after),
        done_(std::move(done)),
        length_(ex_->request().content_length) {}

  void start() { next(); }

 private:
  void next() {
    auto self = shared_from_this();
    ex_->readBody([self](Status st, std::string data, bool end) {
      if (!st.isOk()) return self->done_(st);
      if (data.empty() && !end) return self->next();
      auto piece = std::make_shared<std::string>(std::move(data));
      self->ctx_.work.submit([self, piece, end] {
        if (!std::exchange(self->announced_, true)) {
          if (self->length_ && *self->length_ > 0) self->ctx_.registry.announceAppend(*self->lease_, *self->length_);
        }
        Status s = piece->empty() ? Status::ok() : self->ctx_.registry.append(*self->lease_, *piece, self->ctx_.hash);
        piece->clear();
        if (s.isOk() && end && self->after_ == After::kMoreChunks) s = self->ctx_.registry.flushUpload(*self->lease_);
        self->ex_->loop().post([self, piece, s, end] {
          self->ex_->recycleBody(std::move(*piece));
          if (!s.isOk()) return self->done_(s);
          if (end) return self->done_(Status::ok());
          self->next();
        });
      });
    });
  }

  ApiContext& ctx_;
  ExchangePtr ex_;
  std::shared_ptr<Lease> lease_;
  After after_;
  std::function<void(Status)> done_;
  std::optional<uint64_t> length_;  // the body's Content-Length, if it has one
  bool announced_ = false;          // length_ was given to the blob store (with the first piece)
};

void pump(ApiContext& ctx, const ExchangePtr& ex, std::shared_ptr<Lease> lease, After after,
          std::function<void(Status)> done) {
  if (!ex->request().hasBody()) return done(Status::ok());
  std::make_shared<BodyPump>(ctx, ex, std::move(lease), after, std::move(done))->start();
}

// Starts an upload and, when the request carries a body, takes it for this request (on
// a worker: both ask the blob store).
struct Started {
  std::string id;
  std::shared_ptr<Lease> lease;  // set when asked for
};
Result<Started> startAndTake(ApiContext& ctx, const std::string& name, bool recorded, const std::string& owner,
                             bool take) {
  auto id = ctx.registry.startUpload(name, recorded, owner);
  if (!id.isOk()) return id.status();
  Started out{*id, nullptr};
  if (take) {
    auto lease = ctx.registry.sessions().acquire(*id);
    if (!lease.isOk()) return lease.status();
    out.lease = std::shared_ptr<Lease>(std::move(lease).value());
  }
  return out;
}

// Checks a Content-Range ("<start>-<end>", optionally prefixed "bytes ") against the
// upload's offset and the body length.
Status checkContentRange(const Request& req, uint64_t offset) {
  const std::string* h = req.headers.get("content-range");
  if (h == nullptr) return Status::ok();
  std::string v = *h;
  if (v.rfind("bytes ", 0) == 0) v = v.substr(6);
  if (v.rfind("bytes=", 0) == 0) v = v.substr(6);
  auto slash = v.find('/');
  if (slash != std::string::npos) v = v.substr(0, slash);
  auto dash = v.find('-');
  auto num = [](const std::string& s, uint64_t* out) {
    if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string::npos) return false;
    *out = std::stoull(s);
    return true;
  };
  uint64_t start = 0, end = 0;
  if (dash == std::string::npos || !num(v.substr(0, dash), &start) || !num(v.substr(dash + 1), &end) || end < start) {
    return Status(Code::kRangeInvalid, "malformed Content-Range");
  }
  if (start != offset) {
    return Status(Code::kRangeInvalid, "chunk starts at " + std::to_string(start) + " but the upload has " +
                                           std::to_string(offset) + " bytes");
  }
  if (req.content_length && *req.content_length != end - start + 1) {
    return Status(Code::kRangeInvalid, "Content-Range does not match Content-Length");
  }
  return Status::ok();
}

// Answers a 416 with the upload's current range, as clients need it to resume.
void replyRange(const ExchangePtr& ex, const std::string& name, const std::string& id, uint64_t offset,
                const Status& st) {
  Response r = errorResponse(st);
  r.headers.add("Location", uploadLocation(name, id));
  r.headers.add("Range", rangeHeader(offset));
  r.headers.add("Docker-Upload-UUID", id);
  reply(ex, std::move(r));
}

// Finishes a leased upload: commit on a worker, answer 201.
void finish(ApiContext& ctx, const ExchangePtr& ex, const std::string& name, std::shared_ptr<Lease> lease,
            const Digest& digest, bool recorded, const Caller& caller) {
  offload<Result<uint64_t>>(
      ctx, ex, [&ctx, name, lease, digest, recorded] { return ctx.registry.finishUpload(name, *lease, digest, recorded); },
      [&ctx, ex, name, digest, lease, caller](Result<uint64_t> size) {
        lease->release();
        if (!size.isOk()) return replyError(ex, size.status());
        emitEvent(ctx, caller, event_type::kBlobPush, name, EventTarget{"application/octet-stream", digest.str(), *size, "", ""},
                  ex->request());
        reply(ex, blobCreated(name, digest.str()));
      });
}

void startSession(ApiContext& ctx, const ExchangePtr& ex, const std::string& name, const Caller& caller) {
  std::string owner = caller.account.name;
  bool body = ex->request().hasBody();
  offload<Result<Started>>(
      ctx, ex, [&ctx, name, owner, body] { return startAndTake(ctx, name, /*recorded=*/true, owner, body); },
      [&ctx, ex, name](Result<Started> started) {
        if (!started.isOk()) return replyError(ex, started.status());
        if (!started->lease) return reply(ex, uploadStatus(202, name, started->id, 0));
        // A body on the POST is the first chunk.
        std::shared_ptr<Lease> shared = started->lease;
        pump(ctx, ex, shared, After::kMoreChunks, [ex, name, id = started->id, shared](Status st) {
          uint64_t offset = shared->session().offset;
          shared->release();
          if (!st.isOk()) return replyError(ex, st);
          reply(ex, uploadStatus(202, name, id, offset));
        });
      });
}

void writeChunk(ApiContext& ctx, const ExchangePtr& ex, const std::string& name, const std::string& id,
                std::shared_ptr<Lease> shared, std::optional<Digest> digest, const Caller& caller);

}  // namespace

void handleUploadStart(ApiContext& ctx, const ExchangePtr& ex, const Route& route, const Caller& caller) {
  const Request& req = ex->request();
  if (req.method != "POST") return replyError(ex, Status(Code::kMethodNotAllowed, "method not allowed"));
  const std::string name = route.name;

  if (auto mount = req.queryParam("mount")) {
    auto digest = Digest::parse(*mount);
    if (!digest.isOk()) return replyError(ex, digest.status());
    std::string from = req.queryParam("from").value_or("");
    Digest d = *digest;
    // Mounting reads the source: without pull access to it, the client uploads instead.
    if (!from.empty() && !caller.may(from, "pull")) return startSession(ctx, ex, name, caller);
    if (from.empty() && !caller.all_access) return startSession(ctx, ex, name, caller);
    offload<Result<bool>>(
        ctx, ex, [&ctx, name, from, d] { return ctx.registry.mount(name, from, d); },
        [&ctx, ex, name, d, caller](Result<bool> mounted) {
          if (!mounted.isOk()) return replyError(ex, mounted.status());
          if (*mounted) {
            auto size = ctx.registry.metadata().blobSize(d.str());
            emitEvent(ctx, caller, event_type::kBlobPush, name,
                      EventTarget{"application/octet-stream", d.str(), size.isOk() ? *size : 0, "", ""}, ex->request());
            return reply(ex, blobCreated(name, d.str()));
          }
          startSession(ctx, ex, name, caller);  // not mountable: the client uploads instead
        });
    return;
  }

  if (auto digest_param = req.queryParam("digest")) {
    // Monolithic upload: the body is the whole blob.
    auto digest = Digest::parse(*digest_param);
    if (!digest.isOk()) return replyError(ex, digest.status());
    Digest d = *digest;
    offload<Result<Started>>(
        ctx, ex, [&ctx, name] { return startAndTake(ctx, name, /*recorded=*/false, "", /*take=*/true); },
        [&ctx, ex, name, d, caller](Result<Started> started) {
          if (!started.isOk()) return replyError(ex, started.status());
          std::shared_ptr<Lease> shared = started->lease;
          pump(ctx, ex, shared, After::kFinish, [&ctx, ex, name, d, shared, caller](Status st) {
            if (!st.isOk()) {
              // The body never arrived whole: drop the unrecorded upload file now.
              ctx.work.submit([&ctx, shared] { ctx.registry.discardUpload(*shared); });
              return replyError(ex, st);
            }
            finish(ctx, ex, name, shared, d, /*recorded=*/false, caller);
          });
        });
    return;
  }

  startSession(ctx, ex, name, caller);
}

void handleUpload(ApiContext& ctx, const ExchangePtr& ex, const Route& route, const Caller& caller) {
  const Request& req = ex->request();
  const std::string name = route.name;
  const std::string id = route.reference;
  Status st = ctx.registry.checkUpload(name, id, caller.all_access ? std::nullopt
                                                                   : std::optional<std::string>(caller.account.name));
  if (!st.isOk()) return replyError(ex, st);

  if (req.method == "GET") {
    offload<Result<uint64_t>>(
        ctx, ex, [&ctx, name, id] { return ctx.registry.uploadOffset(name, id); },
        [ex, name, id](Result<uint64_t> offset) {
          if (!offset.isOk()) return replyError(ex, offset.status());
          reply(ex, uploadStatus(204, name, id, *offset));
        });
    return;
  }
  if (req.method == "DELETE") {
    offload<Status>(
        ctx, ex, [&ctx, name, id] { return ctx.registry.cancelUpload(name, id); },
        [ex](Status s) {
          if (!s.isOk()) return replyError(ex, s);
          Response r;
          r.status = 204;
          reply(ex, std::move(r));
        });
    return;
  }
  if (req.method != "PATCH" && req.method != "PUT") {
    return replyError(ex, Status(Code::kMethodNotAllowed, "method not allowed"));
  }

  std::optional<Digest> digest;
  if (req.method == "PUT") {
    auto p = req.queryParam("digest");
    if (!p) return replyError(ex, Status(Code::kDigestInvalid, "PUT of an upload needs ?digest="));
    auto d = Digest::parse(*p);
    if (!d.isOk()) return replyError(ex, d.status());
    digest = *d;
  }
  // Taking the upload asks the blob store (its stored size): on a worker.
  struct Taken {
    std::shared_ptr<Lease> lease;
    Status refusal;
    uint64_t offset = 0;  // with a kRangeInvalid refusal: the upload's size, for the client
  };
  offload<Taken>(
      ctx, ex,
      [&ctx, name, id] {
        Taken t;
        auto lease = ctx.registry.sessions().acquire(id);
        if (lease.isOk()) {
          t.lease = std::shared_ptr<Lease>(std::move(lease).value());
        } else {
          t.refusal = lease.status();
          if (t.refusal.code() == Code::kRangeInvalid) {
            auto offset = ctx.registry.uploadOffset(name, id);
            t.offset = offset.isOk() ? *offset : 0;
          }
        }
        return t;
      },
      [&ctx, ex, name, id, digest, caller](Taken taken) {
        if (!taken.lease) {
          if (taken.refusal.code() == Code::kRangeInvalid) return replyRange(ex, name, id, taken.offset, taken.refusal);
          return replyError(ex, taken.refusal);
        }
        writeChunk(ctx, ex, name, id, taken.lease, digest, caller);
      });
}

namespace {

void writeChunk(ApiContext& ctx, const ExchangePtr& ex, const std::string& name, const std::string& id,
                std::shared_ptr<Lease> shared, std::optional<Digest> digest, const Caller& caller) {
  const Request& req = ex->request();
  uint64_t offset = shared->session().offset;
  if (Status range = checkContentRange(req, offset); !range.isOk()) {
    shared->release();
    return replyRange(ex, name, id, offset, range);
  }
  pump(ctx, ex, shared, digest ? After::kFinish : After::kMoreChunks,
       [&ctx, ex, name, id, shared, digest, caller](Status s) {
    uint64_t offset = shared->session().offset;
    if (s.code() == Code::kInsufficientStorage) {
      // The disk is full: the upload cannot go on, and its bytes go now, not at the purge.
      ctx.work.submit([&ctx, shared] { ctx.registry.discardUpload(*shared); });
      return replyError(ex, s);
    }
    if (!s.isOk() || !digest) shared->release();
    if (!s.isOk()) return replyError(ex, s);
    if (!digest) return reply(ex, uploadStatus(202, name, id, offset));
    finish(ctx, ex, name, shared, *digest, /*recorded=*/true, caller);
  });
}

}  // namespace

}  // namespace wharf
