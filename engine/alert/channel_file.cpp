// The `file` channel: one JSON line per notification, appended atomically (O_APPEND, flock, one write).
#include "engine/alert/channel.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "engine/util/json_text.hpp"

namespace rb::alert {

json file_record(const channel_config& cfg, const notification& n, const std::string& delivery) {
  json j = {{"ts", n.timestamp},       {"delivery", delivery},   {"channel", cfg.name},
            {"severity", n.severity},  {"summary", n.summary},   {"details", n.details},
            {"action", n.action},      {"dedup", dedup_key(n)},  {"runbook", n.runbook},
            {"target", n.target},      {"run", n.run_id}};
  if (!n.incident.empty()) {
    j["incident"] = n.incident;
    j["level"] = n.level;
  }
  if (auto link = run_link(cfg.run_url, n); !link.empty()) j["link"] = link;
  return j;
}

namespace {

class file_channel final : public channel {
 public:
  using channel::channel;
  attempt_result attempt(const notification& n, const std::string& delivery, interrupt&) override {
    attempt_result r;
    std::string line = json_text(file_record(m_cfg, n, delivery)) + "\n";
    std::error_code ec;
    auto dir = std::filesystem::path(m_cfg.path).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    int fd = ::open(m_cfg.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
      r.reason = "unable to open " + m_cfg.path + ": " + std::strerror(errno);
      return r;  // a file that cannot be opened will not open on retry soon: failed
    }
    // Other writers (another run, logrotate's copytruncate) never see half a line: one write
    // of the whole line under an exclusive lock, at the end of the file.
    ::flock(fd, LOCK_EX);
    ssize_t w = ::write(fd, line.data(), line.size());
    int err = errno;
    if (w == static_cast<ssize_t>(line.size())) ::fdatasync(fd);
    ::flock(fd, LOCK_UN);
    ::close(fd);
    if (w != static_cast<ssize_t>(line.size())) {
      r.reason = "unable to append to " + m_cfg.path + ": " + (w < 0 ? std::strerror(err) : "short write");
      r.outcome = attempt_result::verdict::retry;
      return r;
    }
    r.outcome = attempt_result::verdict::delivered;
    return r;
  }
};

}  // namespace

std::unique_ptr<channel> make_file_channel(const channel_config& cfg) { return std::make_unique<file_channel>(cfg); }

}  // namespace rb::alert
