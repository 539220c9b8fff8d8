// Browsing images (the web UI's repository and image pages, wharfctl):
//
//   GET /api/v1/repositories/<name>/tags  -> {"repository","may":["push"?,"delete"?],
//       "tags":[{"tag","digest","pushed","media_type","size","total_size"?,"platforms",
//       "immutable"?,"scan"?:{"status","counts"},"signatures"?:{"notary","cosign",
//       "signed","policy_satisfied"?}}]}, the most recently pushed first; "may": what the
//       caller may do besides pulling (the UI offers tag deletion with "delete")
//   GET /api/v1/repositories/<name>/manifests/<tag|digest>  -> the image's view
//       (core/registry/image_view.h: layers, config, the history as Dockerfile lines;
//       an index: its platforms)
//
// Whoever may pull <name> (apiReader: a Bearer token within its scopes, Basic to the
// account's access, anonymous for public repositories); others get 404 (401 without
// credentials), as in the registry API.
#include "core/api/api.h"
#include "core/metadata/policy.h"
#include "core/registry/image_view.h"
#include "core/scan/scanner.h"
#include "core/trust/trust_enforcer.h"
#include "shared/oci/names.h"

namespace wharf {
namespace {

using nlohmann::json;

constexpr std::string_view kBrowsePrefix = "/api/v1/repositories/";

// A tag's line in the list: the image's size and platforms, its scan's verdict and its
// signatures (what the image page shows in full).
void summarize(ApiContext& ctx, const std::string& repo, const std::string& digest, uint64_t size, json& item) {
  json platforms = json::array();
  if (auto view = imageView(ctx.registry, repo, digest); view.isOk()) {
    if (view->contains("total_size")) item["total_size"] = (*view)["total_size"];
    auto platform = [](const json& p) {
      std::string s = p.value("os", "") + "/" + p.value("architecture", "");
      if (!p.value("variant", "").empty()) s += "/" + p.value("variant", "");
      return s;
    };
    if (view->contains("manifests")) {
      for (const auto& child : (*view)["manifests"])
        if (child.contains("platform")) platforms.push_back(platform(child["platform"]));
    } else if (view->contains("config")) {
      platforms.push_back(platform((*view)["config"]));
    }
  }
  item["platforms"] = std::move(platforms);
  if (ctx.scanner != nullptr) {
    if (auto r = ctx.scanner->result(digest); r.isOk()) {
      item["scan"] = {{"status", r->value("status", "")}, {"counts", r->value("counts", json::object())}};
    } else {
      item["scan"] = {{"status", "not_scanned"}, {"counts", json::object()}};
    }
  }
  if (ctx.trust_policies != nullptr) {
    json s = ctx.trust_policies->status(repo, digest, size);
    json sig = {{"notary", s["notary"].size()}, {"cosign", s["cosign"].size()}, {"signed", s.value("signed", false)}};
    if (s.contains("policy")) sig["policy_satisfied"] = s["policy"].value("satisfied", false);
    item["signatures"] = std::move(sig);
  }
}

ApiReply browse(ApiContext& ctx, const Request& req) {
  if (req.method != "GET") return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
  std::string rest = req.path.substr(kBrowsePrefix.size());
  std::string repo, reference;
  bool tags = rest.size() > 5 && rest.compare(rest.size() - 5, 5, "/tags") == 0;
  if (tags) {
    repo = rest.substr(0, rest.size() - 5);
  } else {
    auto m = rest.rfind("/manifests/");
    repo = rest.substr(0, m);
    reference = rest.substr(m + std::string("/manifests/").size());
  }
  WHARF_RETURN_IF_ERROR_REPLY(validateRepositoryName(repo));
  auto who = repositoryReader(ctx, req, repo);
  if (!who.isOk()) return fail(who.status());
  MetadataStore& meta = ctx.registry.metadata();
  if (tags) {
    auto records = meta.tagRecords(repo);
    if (!records.isOk()) return fail(records.status());
    std::sort(records->begin(), records->end(), [](const TagRecord& a, const TagRecord& b) {
      return a.pushed_ms != b.pushed_ms ? a.pushed_ms > b.pushed_ms : a.tag < b.tag;
    });
    auto policies = ctx.registry.policies();
    json out = json::array();
    for (const auto& t : *records) {
      json item = {{"tag", t.tag}, {"digest", t.digest}, {"pushed", t.pushed_ms}};
      auto m = meta.manifest(repo, t.digest);
      if (m.isOk()) {
        item["media_type"] = m->media_type;
        item["size"] = m->size;
        summarize(ctx, repo, t.digest, m->size, item);
      }
      if (auto rule = immutableRule(*policies, repo, t.tag)) item["immutable"] = *rule;
      out.push_back(std::move(item));
    }
    json may = json::array();
    for (const char* action : {"push", "delete"})
      if (callerMay(ctx, *who, repo, action)) may.push_back(action);
    return ok({{"repository", repo}, {"may", may}, {"tags", out}});
  }
  auto digest = referenceDigest(ctx, repo, reference);
  if (!digest.isOk()) return fail(digest.status());
  auto view = imageView(ctx.registry, repo, *digest);
  if (!view.isOk()) return fail(view.status());
  return ok(std::move(*view));
}

}  // namespace

bool isBrowsePath(std::string_view path) {
  if (path.substr(0, kBrowsePrefix.size()) != kBrowsePrefix) return false;
  if (path.size() > 5 && path.substr(path.size() - 5) == "/tags") return true;
  auto m = path.rfind("/manifests/");
  return m != std::string_view::npos && path.find('/', m + 11) == std::string_view::npos && m + 11 < path.size();
}

void handleBrowse(ApiContext& ctx, const ExchangePtr& ex) {
  serveApi(ctx, ex, kMaxApiBody, [&ctx, ex](std::string) { return browse(ctx, ex->request()); });
}

}  // namespace wharf
