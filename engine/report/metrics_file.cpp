// The metrics textfile: series from the audit log and its incidents, under a lock, then renamed into place.
#include "engine/report/metrics_file.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/audit/log.hpp"
#include "engine/error.hpp"
#include "engine/incident/store.hpp"

namespace rb::report {
namespace {

/// An exclusive flock on a file beside the textfile, held while it is rebuilt.
class textfile_lock {
 public:
  explicit textfile_lock(const std::filesystem::path& dir) {
    std::filesystem::path file = dir / ".runbook.prom.lock";
    m_fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (m_fd < 0)
      throw error(error_kind::io, "unable to write the metrics file '" + (dir / "runbook.prom").string() +
                                      "': cannot open its lock file '" + file.string() + "': " + std::strerror(errno));
    while (::flock(m_fd, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
  ~textfile_lock() { ::close(m_fd); }  // closing releases the lock
  textfile_lock(const textfile_lock&) = delete;
  textfile_lock& operator=(const textfile_lock&) = delete;

 private:
  int m_fd = -1;
};

}  // namespace

void write_metrics(const std::filesystem::path& dir, const std::filesystem::path& audit_path,
                   const std::vector<schedule_series>& schedules) {
  textfile_lock lock(dir);
  metrics m;
  run_series_builder runs;
  audit::for_each_record(audit_path, [&](const nlohmann::json& r) { runs.add_record(r); });
  m.runs = runs.take();
  audit::log journal(audit_path);  // read only: the store reads incidents back from it
  incident::store incidents(journal);
  incidents.refresh();
  for (const incident::incident* inc : incidents.list())
    if (inc->is_open()) ++m.open_incidents[inc->severity];
  m.schedules = schedules;
  write_textfile(dir, render(m));
}

}  // namespace rb::report
