#include "core/scan/osv_ranges.h"

#include <algorithm>

namespace wharf {
namespace {

constexpr size_t kMaxEvents = 1000;  // far more than any real advisory has

Status invalid(const std::string& why) { return Status(Code::kInvalidArgument, "OSV ranges: " + why); }

}  // namespace

Result<std::vector<OsvRange>> parseOsvRanges(const nlohmann::json& ranges) {
  if (!ranges.is_array()) return invalid("not an array");
  std::vector<OsvRange> out;
  for (const auto& r : ranges) {
    if (!r.is_object() || !r.contains("type") || !r["type"].is_string()) return invalid("a range without a type");
    OsvRange range;
    const std::string type = r["type"].get<std::string>();
    if (type == "SEMVER") {
      range.type = OsvRange::Type::kSemver;
    } else if (type == "ECOSYSTEM") {
      range.type = OsvRange::Type::kEcosystem;
    } else if (type == "GIT") {
      range.type = OsvRange::Type::kGit;
    } else {
      return invalid("unknown range type \"" + type.substr(0, 50) + "\"");
    }
    if (!r.contains("events") || !r["events"].is_array() || r["events"].empty()) {
      return invalid("a range without events");
    }
    if (r["events"].size() > kMaxEvents) return invalid("more than 1000 events in a range");
    for (const auto& e : r["events"]) {
      if (!e.is_object() || e.size() != 1 || !e.begin()->is_string()) {
        return invalid("an event must have exactly one of introduced, fixed, last_affected, limit");
      }
      const std::string& key = e.begin().key();
      OsvEvent ev{OsvEvent::Kind::kIntroduced, e.begin()->get<std::string>()};
      if (key == "introduced") {
        ev.kind = OsvEvent::Kind::kIntroduced;
      } else if (key == "fixed") {
        ev.kind = OsvEvent::Kind::kFixed;
      } else if (key == "last_affected") {
        ev.kind = OsvEvent::Kind::kLastAffected;
      } else if (key == "limit") {
        ev.kind = OsvEvent::Kind::kLimit;
      } else {
        return invalid("unknown event \"" + key.substr(0, 50) + "\"");
      }
      if (ev.version.empty()) return invalid("an event with an empty version");
      range.events.push_back(std::move(ev));
    }
    out.push_back(std::move(range));
  }
  return out;
}

Result<VersionScheme> versionSchemeOf(std::string_view ecosystem) {
  std::string_view base = ecosystem.substr(0, ecosystem.find(':'));
  if (base == "Debian" || base == "Ubuntu") return VersionScheme::kDpkg;
  if (base == "Alpine") return VersionScheme::kApk;
  if (base == "Red Hat" || base == "Rocky Linux" || base == "AlmaLinux" || base == "openSUSE" || base == "SUSE") {
    return VersionScheme::kRpm;
  }
  if (base == "npm" || base == "crates.io") return VersionScheme::kSemver;
  if (base == "Go") return VersionScheme::kGo;
  if (base == "PyPI") return VersionScheme::kPep440;
  if (base == "Maven") return VersionScheme::kMaven;
  return Status(Code::kNotFound, "ecosystem not supported yet: " + std::string(ecosystem.substr(0, 50)));
}

namespace {

bool isZeroEvent(const OsvEvent& e) { return e.kind == OsvEvent::Kind::kIntroduced && e.version == "0"; }

VersionScheme schemeOf(const OsvRange& range, VersionScheme ecosystem) {
  // Go module versions in a SEMVER range: semver accepts the v.
  return range.type == OsvRange::Type::kSemver ? VersionScheme::kSemver : ecosystem;
}

// The events checked and sorted (introduced "0" first).
Result<std::vector<const OsvEvent*>> orderedEvents(const OsvRange& range, VersionScheme scheme) {
  std::vector<const OsvEvent*> events;
  for (const auto& e : range.events) {
    if (!isZeroEvent(e)) {
      if (auto c = compareVersions(scheme, e.version, e.version); !c.isOk()) return c.status();
    }
    events.push_back(&e);
  }
  std::stable_sort(events.begin(), events.end(), [&](const OsvEvent* a, const OsvEvent* b) {
    if (isZeroEvent(*a) || isZeroEvent(*b)) return isZeroEvent(*a) && !isZeroEvent(*b);
    return *compareVersions(scheme, a->version, b->version) < 0;
  });
  return events;
}

}  // namespace

Status prepareOsvRange(OsvRange& range, VersionScheme ecosystem) {
  if (range.type == OsvRange::Type::kGit) return Status::ok();
  auto ordered = orderedEvents(range, schemeOf(range, ecosystem));
  if (!ordered.isOk()) return ordered.status();
  std::vector<OsvEvent> events;
  events.reserve(ordered->size());
  for (const OsvEvent* e : *ordered) events.push_back(*e);
  range.events = std::move(events);
  range.prepared = true;
  return Status::ok();
}

Result<bool> osvRangeIncludes(const OsvRange& range, VersionScheme ecosystem, std::string_view version) {
  if (range.type == OsvRange::Type::kGit) return false;
  VersionScheme scheme = schemeOf(range, ecosystem);
  std::vector<const OsvEvent*> unprepared;
  if (!range.prepared) {  // parse every version first: a bad one fails the range, not the sort
    auto ordered = orderedEvents(range, scheme);
    if (!ordered.isOk()) return ordered.status();
    unprepared = std::move(*ordered);
  }
  size_t n = range.prepared ? range.events.size() : unprepared.size();
  auto event = [&](size_t i) -> const OsvEvent& { return range.prepared ? range.events[i] : *unprepared[i]; };
  // The installed version against each event, in order; an installed version that does
  // not parse fails at the first comparison.
  bool affected = false, compared = false;
  for (size_t i = 0; i < n; ++i) {
    const OsvEvent& e = event(i);
    if (isZeroEvent(e)) {
      affected = true;
      continue;
    }
    auto c = compareVersions(scheme, version, e.version);
    if (!c.isOk()) return c.status();
    compared = true;
    switch (e.kind) {
      case OsvEvent::Kind::kIntroduced:
        if (*c >= 0) affected = true;
        break;
      case OsvEvent::Kind::kFixed:
        if (*c >= 0) affected = false;
        break;
      case OsvEvent::Kind::kLastAffected:
        if (*c > 0) affected = false;
        break;
      case OsvEvent::Kind::kLimit:
        if (*c >= 0) return false;
        break;
    }
    // Events are in order: past the version, none can change the answer but a limit
    // below it, which was already seen.
    if (*c < 0) break;
  }
  if (!compared) {
    if (auto c = compareVersions(scheme, version, version); !c.isOk()) return c.status();
  }
  return affected;
}

Result<bool> osvAffects(const std::vector<OsvRange>& ranges, const std::vector<std::string>& versions,
                        VersionScheme ecosystem, std::string_view version) {
  if (std::find(versions.begin(), versions.end(), version) != versions.end()) return true;
  for (const auto& r : ranges) {
    auto in = osvRangeIncludes(r, ecosystem, version);
    if (!in.isOk()) return in.status();
    if (*in) return true;
  }
  return false;
}

}  // namespace wharf
