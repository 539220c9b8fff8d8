// GET|HEAD|DELETE /v2/<name>/blobs/<digest>
#include "core/api/api.h"
#include "core/events/event_log.h"
#include "shared/base/log.h"
#include "shared/http/range.h"

namespace wharf {
namespace {

// A blob of a store without files (S3), sent as it is read: one ranged read of up to
// kPiece bytes on a worker each time the connection has written the last piece, so a
// slow client holds one piece, never the blob. The first piece is read before the
// response starts, so a store that is away is a clean 503, not a cut body.
class StoreBody final : public BodySource, public std::enable_shared_from_this<StoreBody> {
 public:
  static constexpr uint64_t kPiece = 4ull << 20;
  StoreBody(ApiContext& ctx, Loop& loop, Digest digest, std::string first, uint64_t start, uint64_t length)
      : ctx_(ctx), loop_(loop), digest_(std::move(digest)), first_(std::move(first)), next_(start + first_.size()),
        end_(start + length), length_(length) {}

  void next(std::function<void(Status, Piece)> cb) override {
    if (!first_.empty()) {
      std::string data = std::move(first_);
      first_.clear();
      return cb(Status::ok(), Piece{std::move(data), {}, next_ >= end_});
    }
    if (next_ >= end_) return cb(Status::ok(), Piece{"", {}, true});
    uint64_t n = std::min(kPiece, end_ - next_);
    uint64_t at = next_;
    next_ += n;
    auto self = shared_from_this();
    ctx_.work.submit([self, at, n, cb = std::move(cb)]() mutable {
      auto data = std::make_shared<std::string>(n, '\0');
      Status st = self->ctx_.registry.blobStore().read(self->digest_, at, data->data(), n);
      self->loop_.post([self, st, data, cb = std::move(cb)] {
        if (!st.isOk()) {
          logWarn("blob read from the store failed mid-response", {{"digest", self->digest_.str()}, {"error", st.message()}});
          return cb(st, Piece{});
        }
        cb(Status::ok(), Piece{std::move(*data), {}, self->next_ >= self->end_});
      });
    });
  }
  std::optional<uint64_t> length() const override { return length_; }

 private:
  ApiContext& ctx_;
  Loop& loop_;
  Digest digest_;
  std::string first_;
  uint64_t next_;
  uint64_t end_;
  uint64_t length_;
};

}  // namespace

void replyBlob(ApiContext& ctx, const ExchangePtr& ex, Response r, const BlobFile& file, const Digest& digest,
               uint64_t start, uint64_t length) {
  if (file.fd) {
    r.body = FileBody{file.fd, start, length};
    return reply(ex, std::move(r));
  }
  if (length == 0) {
    r.body = std::string();
    return reply(ex, std::move(r));
  }
  uint64_t n = std::min(StoreBody::kPiece, length);
  auto response = std::make_shared<Response>(std::move(r));
  offload<Result<std::string>>(
      ctx, ex,
      [&ctx, digest, start, n]() -> Result<std::string> {
        std::string first(n, '\0');
        Status st = ctx.registry.blobStore().read(digest, start, first.data(), n);
        if (!st.isOk()) return st;
        return first;
      },
      [&ctx, ex, response, digest, start, length](Result<std::string> first) {
        if (!first.isOk()) return replyError(ex, first.status());
        response->body = std::shared_ptr<BodySource>(
            std::make_shared<StoreBody>(ctx, ex->loop(), digest, std::move(first).value(), start, length));
        reply(ex, std::move(*response));
      });
}

void handleBlob(ApiContext& ctx, const ExchangePtr& ex, const Route& route, const Caller& caller) {
  const Request& req = ex->request();
  auto digest = Digest::parse(route.reference);
  if (!digest.isOk()) return replyError(ex, digest.status());
  if (req.method == "DELETE") {
    Digest d = *digest;
    std::string name = route.name;
    offload<Status>(
        ctx, ex, [&ctx, name, d] { return ctx.registry.deleteBlob(name, d); },
        [&ctx, ex, name, d, caller](Status st) {
          audit(ctx, caller, "delete", name + "@" + d.str(), st.isOk() ? "success" : "failure");
          if (!st.isOk()) return replyError(ex, st);
          emitEvent(ctx, caller, event_type::kBlobDelete, name, EventTarget{"", d.str(), 0, "", ""}, ex->request());
          Response r;
          r.status = 202;
          reply(ex, std::move(r));
        });
    return;
  }
  if (req.method != "GET" && req.method != "HEAD") return replyError(ex, Status(Code::kMethodNotAllowed, "method not allowed"));
  auto file = ctx.registry.openBlob(route.name, *digest);
  if (!file.isOk()) return replyError(ex, file.status());
  std::string d = digest->str();
  Response r;
  r.headers.add("Content-Type", "application/octet-stream");
  r.headers.add("Docker-Content-Digest", d);
  r.headers.add("ETag", "\"" + d + "\"");
  r.headers.add("Accept-Ranges", "bytes");
  r.headers.add("Cache-Control", "max-age=31536000");
  Response refusal;
  auto span = applyRange(req, file->size, &r, &refusal);
  if (!span) return reply(ex, std::move(refusal));
  const auto [start, length] = *span;
  if (req.isHead()) {
    r.head_length = length;
    return reply(ex, std::move(r));
  }
  // The store serves the bytes itself (presigned URL) when so configured: the client or
  // edge follows the redirect, the replica carries no blob bytes. An edge whose site
  // cannot reach the store asks for the bytes themselves (X-Wharf-Edge).
  if (ctx.options.blob_redirect_s > 0 && req.headers.get("x-wharf-edge") == nullptr) {
    if (auto url = ctx.registry.blobStore().directUrl(*digest, ctx.options.blob_redirect_s)) {
      Response redirect;
      redirect.status = 307;
      redirect.headers.add("Location", *url);
      redirect.headers.add("Docker-Content-Digest", d);
      return reply(ex, std::move(redirect));
    }
  }
  replyBlob(ctx, ex, std::move(r), *file, *digest, start, length);
}

}  // namespace wharf
