// wharfctl's audit log and token-signing keys (administrators).
#include <algorithm>
#include <cstdlib>

#include "core/cli/cli.h"
#include "shared/http/url.h"

namespace wharf::cli {

// A table in reading order: TIME (local), ACTOR, ACTION, TARGET (the entry's object),
// OUTCOME, and DETAIL when an entry has one. A full page ends with the --after that
// shows the next one.
int audit(const Args& a, Api& api) {
  std::string q;
  for (const char* k : {"actor", "action", "object", "outcome", "limit", "after", "since", "until"}) {
    if (a.has(k)) q += std::string(q.empty() ? "?" : "&") + k + "=" + percentEncode(a.get(k));
  }
  json r = api.call("GET", "/audit" + q);
  if (a.has("json")) return printJson(r), 0;
  const json& items = r.value("items", json::array());
  std::vector<Column> cols = {timeField("TIME", "time"), field("ACTOR", "actor"), field("ACTION", "action"),
                              field("TARGET", "object"), field("OUTCOME", "outcome")};
  bool detail = std::any_of(items.begin(), items.end(), [](const json& e) { return !e.value("detail", "").empty(); });
  if (detail) cols.push_back(field("DETAIL", "detail"));
  printTable(items, cols);
  if (r.contains("next") && !r["next"].is_null()) std::cout << "(more: --after " << cell(r["next"]) << ")\n";
  return 0;
}

int keys(const Args& a, Api& api) {
  std::string sub = a.pos.size() > 1 ? a.pos[1] : "";
  if (sub != "rotate") die("unknown command (see --help)", 2);
  json body = json::object();
  if (a.has("overlap-seconds")) body["overlap_seconds"] = std::atoll(a.get("overlap-seconds").c_str());
  return print(api.call("POST", "/auth/keys/rotate", body), a.has("json")), 0;
}

}  // namespace wharf::cli
