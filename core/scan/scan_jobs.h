// The scanner's job kinds, and the trigger that scans what is pushed.
//
//   scan           {"repository": "team/app", "digest": "sha256:..."}  one image or index
//   scan-all       {"rescan": false}  every stored manifest without a result of this scanner
//                  (rescan: all of them); submitted at start after an upgrade of the
//                  scanner (kLayerScanVersion changed)
//   vulndb-update  {}  fetches the configured OSV sources (conditional GETs) and imports
//                  them when one changed; scheduled every --vulndb-interval
//   vulndb-import  {"upload": "<uuid>"}  imports a zip uploaded by POST /api/v1/vulndb
//
// ScanTrigger follows the event log: each manifest.push of a repository whose policy (or
// the core's default) says on_push gets a scan job. Its position in the log is kept, so a
// push acknowledged just before a crash is still scanned after the restart.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/jobs/job_runner.h"
#include "core/scan/scanner.h"

namespace wharf {

class EventLog;
class Registry;

void registerScanJobs(JobRunner& runner, Scanner& scanner, Registry& registry);

// Submits scan-all once per version of the scanner (kLayerScanVersion, kept in the store).
Status submitScanAfterUpgrade(JobRunner& runner, ScanStore& store, Registry& registry);

// Where uploaded database files wait for their vulndb-import job.
std::string vulndbUploadPath(const Scanner& scanner, const std::string& uuid);

// Scan on push: follows the event log and submits a scan job per pushed image the
// policies want scanned (one per push across the replicas sharing the store). Also keeps
// this core's vulnerability database at the stored generation, which another replica
// may have switched (looked at every few seconds).
class ScanTrigger {
 public:
  ScanTrigger(EventLog& events, JobRunner& runner, Registry& registry, ScanStore& store, Scanner& scanner,
              bool on_push_default);
  ~ScanTrigger();  // stop()
  void start();
  void stop();

 private:
  void run();
  bool wanted(const std::string& repo);

  EventLog& events_;
  JobRunner& runner_;
  Registry& registry_;
  ScanStore& store_;
  Scanner& scanner_;
  bool on_push_default_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace wharf
