#include "shared/metrics/metrics.h"

#include <cstdio>
#include <mutex>

#include "shared/base/status.h"

namespace wharf {

void Histogram::observe(double seconds) {
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

std::string Histogram::render(const std::string& name, const std::string& labels) const {
  std::string out;
  std::string sep = labels.empty() ? "" : ",";
  uint64_t cumulative = 0;
  char buf[64];
  for (size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    std::snprintf(buf, sizeof buf, "%g", kBounds[i]);
    out += name + "_bucket{" + labels + sep + "le=\"" + buf + "\"} " + std::to_string(cumulative) + "\n";
  }
  cumulative += counts_[kBounds.size()].load(std::memory_order_relaxed);
  out += name + "_bucket{" + labels + sep + "le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
  std::snprintf(buf, sizeof buf, "%.6f", static_cast<double>(sum_micros_.load()) / 1e6);
  std::string lb = labels.empty() ? "" : "{" + labels + "}";
  out += name + "_sum" + lb + " " + buf + "\n";
  out += name + "_count" + lb + " " + std::to_string(cumulative) + "\n";
  return out;
}

MetricsRegistry& MetricsRegistry::global() {
  static MetricsRegistry* registry = new MetricsRegistry();  // never destroyed: metrics outlive threads
  return *registry;
}

MetricsRegistry::Family& MetricsRegistry::family(const std::string& name, const std::string& help, Kind kind) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(name, Family{kind, help, {}, {}, {}}).first;
  }
  WHARF_ASSERT(it->second.kind == kind);
  return it->second;
}

template <typename T>
static T& getOrCreate(std::map<std::string, std::unique_ptr<T>>& m, const std::string& labels) {
  auto& slot = m[labels];
  if (!slot) slot = std::make_unique<T>();
  return *slot;
}

Counter& MetricsRegistry::counter(const std::string& name, const std::string& help, const std::string& labels) {
  {
    std::shared_lock lock(mu_);
    auto it = families_.find(name);
    if (it != families_.end()) {
      auto c = it->second.counters.find(labels);
      if (c != it->second.counters.end()) return *c->second;
    }
  }
  std::unique_lock lock(mu_);
  return getOrCreate(family(name, help, Kind::kCounter).counters, labels);
}

Gauge& MetricsRegistry::gauge(const std::string& name, const std::string& help, const std::string& labels) {
  std::unique_lock lock(mu_);
  return getOrCreate(family(name, help, Kind::kGauge).gauges, labels);
}

Histogram& MetricsRegistry::histogram(const std::string& name, const std::string& help, const std::string& labels) {
  std::unique_lock lock(mu_);
  return getOrCreate(family(name, help, Kind::kHistogram).histograms, labels);
}

std::string MetricsRegistry::render() const {
  std::shared_lock lock(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    const char* type = f.kind == Kind::kCounter ? "counter" : f.kind == Kind::kGauge ? "gauge" : "histogram";
    out += "# HELP " + name + " " + f.help + "\n# TYPE " + name + " " + type + "\n";
    auto lb = [](const std::string& l) { return l.empty() ? std::string() : "{" + l + "}"; };
    for (const auto& [labels, c] : f.counters) out += name + lb(labels) + " " + std::to_string(c->value()) + "\n";
    for (const auto& [labels, g] : f.gauges) out += name + lb(labels) + " " + std::to_string(g->value()) + "\n";
    for (const auto& [labels, h] : f.histograms) out += h->render(name, labels);
  }
  return out;
}

}  // namespace wharf
