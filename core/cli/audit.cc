// wharfctl's audit log and token-signing keys (administrators).
#include <cstdlib>

#include "core/cli/cli.h"
#include "shared/http/url.h"

namespace wharf::cli {

int audit(const Args& a, Api& api) {
  std::string q;
  for (const char* k : {"actor", "action", "object", "outcome", "limit", "after", "since", "until"}) {
    if (a.has(k)) q += std::string(q.empty() ? "?" : "&") + k + "=" + percentEncode(a.get(k));
  }
  return print(api.call("GET", "/audit" + q), a.has("json")), 0;
}

int keys(const Args& a, Api& api) {
  std::string sub = a.pos.size() > 1 ? a.pos[1] : "";
  if (sub != "rotate") die("unknown command (see --help)", 2);
  json body = json::object();
  if (a.has("overlap-seconds")) body["overlap_seconds"] = std::atoll(a.get("overlap-seconds").c_str());
  return print(api.call("POST", "/auth/keys/rotate", body), a.has("json")), 0;
}

}  // namespace wharf::cli
