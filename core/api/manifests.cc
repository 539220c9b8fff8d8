// GET|HEAD|PUT|DELETE /v2/<name>/manifests/<reference>
#include "core/api/api.h"
#include "core/events/event_log.h"
#include "core/scan/scanner.h"
#include "core/trust/trust_enforcer.h"
#include "shared/oci/manifest.h"

namespace wharf {

void handleManifest(ApiContext& ctx, const ExchangePtr& ex, const Route& route, const Caller& caller) {
  const Request& req = ex->request();
  const std::string name = route.name;
  const std::string reference = route.reference;

  if (req.method == "GET" || req.method == "HEAD") {
    auto hit = ctx.registry.resolveManifest(name, reference);
    if (!hit.isOk()) {
      // A reference that is neither a valid tag nor a valid digest names no manifest:
      // 404, as the conformance suite (distribution-spec v1.1.1) expects of GET and HEAD.
      Code c = hit.status().code();
      if (c == Code::kTagInvalid || c == Code::kDigestInvalid) {
        return replyError(ex, Status(Code::kManifestUnknown, "manifest unknown: " + hit.status().message()));
      }
      return replyError(ex, hit.status());
    }
    Response r;
    r.headers.add("Content-Type", hit->record.media_type);
    r.headers.add("Docker-Content-Digest", hit->digest);
    r.headers.add("ETag", "\"" + hit->digest + "\"");
    if (!hit->record.subject.empty()) r.headers.add("OCI-Subject", hit->record.subject);
    // A trust policy (core/trust): a tag resolves (HEAD or GET) only when it is signed for
    // this digest.
    if (ctx.trust_policies != nullptr && reference.find(':') == std::string::npos) {
      if (auto why = ctx.trust_policies->refusal(name, reference, hit->digest, hit->record.size)) {
        audit(ctx, caller, "pull", name + ":" + reference, "denied", *why);
        return replyError(ex, Status(Code::kDenied, "pull of " + name + ":" + reference + " " + *why));
      }
    }
    if (req.isHead()) {
      r.head_length = hit->record.size;
      return reply(ex, std::move(r));
    }
    // A vulnerability policy (core/scan): before the 304, so that an edge revalidating a
    // cached tag is refused too.
    if (ctx.scanner != nullptr) {
      if (auto why = ctx.scanner->refusal(name, hit->digest)) {
        audit(ctx, caller, "pull", name + "@" + hit->digest, "denied", *why);
        return replyError(ex, Status(Code::kDenied, "pull of " + name + "@" + hit->digest + " " + *why));
      }
    }
    audit(ctx, caller, "pull", name + "@" + hit->digest, "success");
    // A conditional GET (edges revalidating a cached tag): unchanged is a 304.
    if (const std::string* inm = req.headers.get("if-none-match");
        inm != nullptr && (inm->find("\"" + hit->digest + "\"") != std::string::npos || *inm == "*")) {
      r.status = 304;
      return reply(ex, std::move(r));
    }
    auto digest = Digest::parse(hit->digest);
    if (!digest.isOk()) return replyError(ex, digest.status());
    // A pull is a GET that sends the manifest (not a HEAD, not a 304). Tags have no ':'.
    emitEvent(ctx, caller, event_type::kManifestPull, name,
              EventTarget{hit->record.media_type, hit->digest, hit->record.size,
                          reference.find(':') == std::string::npos ? reference : std::string(), {}},
              req);
    // A store with files opens the manifest here (cheap); others keep manifests in
    // memory, read on a worker the first time.
    if (!ctx.registry.blobStore().hasFiles()) {
      if (auto cached = ctx.registry.cachedManifest(hit->digest)) {
        r.body = *cached;
        return reply(ex, std::move(r));
      }
      auto response = std::make_shared<Response>(std::move(r));
      offload<Result<std::shared_ptr<const std::string>>>(
          ctx, ex, [&ctx, d = hit->digest] { return ctx.registry.manifestBytes(d); },
          [ex, response](Result<std::shared_ptr<const std::string>> bytes) {
            if (!bytes.isOk()) return replyError(ex, bytes.status());
            response->body = **bytes;
            reply(ex, std::move(*response));
          });
      return;
    }
    auto f = ctx.registry.openContent(hit->digest);
    if (!f.isOk()) return replyError(ex, f.status());
    BlobFile file = *f;
    return replyBlob(ctx, ex, std::move(r), file, *digest, 0, file.size);
  }

  if (req.method == "PUT") {
    std::string content_type;
    if (const std::string* ct = req.headers.get("content-type")) content_type = *ct;
    ex->readFullBody(kMaxManifestBytes, [&ctx, ex, name, reference, content_type, caller](Status st, std::string body) {
      if (!st.isOk()) return replyError(ex, st);
      auto shared_body = std::make_shared<std::string>(std::move(body));
      bool is_tag = reference.find(':') == std::string::npos;
      auto previous = std::make_shared<std::string>();  // what the tag named before, for tag.move
      offload<Result<PutManifestResult>>(
          ctx, ex,
          [&ctx, name, reference, content_type, shared_body, is_tag, previous] {
            if (is_tag) {
              if (auto t = ctx.registry.metadata().resolveTag(name, reference); t.isOk()) *previous = *t;
            }
            return ctx.registry.putManifest(name, reference, *shared_body, content_type);
          },
          [&ctx, ex, name, reference, caller, is_tag, previous, size = shared_body->size()](Result<PutManifestResult> put) {
            audit(ctx, caller, "push", name + ":" + reference, put.isOk() ? "success" : "failure",
                  put.isOk() ? put->digest : put.status().message());
            if (!put.isOk()) return replyError(ex, put.status());
            if (ctx.events != nullptr) {
              EventTarget t{"", put->digest, size, is_tag ? reference : std::string(), {}};
              if (auto m = ctx.registry.metadata().manifest(name, put->digest); m.isOk()) t.media_type = m->media_type;
              auto make = [&](const char* type) {
                Event e;
                e.type = type;
                e.actor = caller.name();
                e.repository = name;
                e.target = t;
                e.addr = ex->request().peer;
                e.method = ex->request().method;
                return e;
              };
              std::vector<Event> events = {make(event_type::kManifestPush)};
              if (is_tag) {
                bool moved = !previous->empty() && *previous != put->digest;
                if (moved) t.previous_digest = *previous;
                events.push_back(make(moved ? event_type::kTagMove : event_type::kTagPush));
              }
              ctx.events->append(std::move(events));  // adjacent, in one batch
            }
            Response r;
            r.status = 201;
            r.headers.add("Location", "/v2/" + name + "/manifests/" + put->digest);
            r.headers.add("Docker-Content-Digest", put->digest);
            if (!put->subject.empty()) r.headers.add("OCI-Subject", put->subject);
            reply(ex, std::move(r));
          });
    });
    return;
  }

  if (req.method == "DELETE") {
    offload<Status>(
        ctx, ex, [&ctx, name, reference] { return ctx.registry.deleteManifest(name, reference); },
        [&ctx, ex, name, reference, caller](Status st) {
          audit(ctx, caller, "delete", name + ":" + reference, st.isOk() ? "success" : "failure");
          if (!st.isOk()) return replyError(ex, st);
          bool is_tag = reference.find(':') == std::string::npos;
          emitEvent(ctx, caller, is_tag ? event_type::kTagDelete : event_type::kManifestDelete, name,
                    EventTarget{"", is_tag ? std::string() : reference, 0, is_tag ? reference : std::string(), {}},
                    ex->request());
          Response r;
          r.status = 202;
          reply(ex, std::move(r));
        });
    return;
  }
  replyError(ex, Status(Code::kMethodNotAllowed, "method not allowed"));
}

}  // namespace wharf
