// A notifier for tests that keeps what it was asked to send (in memory, and optionally as
// lines appended to a file, so that several processes can be counted).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "engine/alert/notification.hpp"
#include "engine/error.hpp"
#include "engine/util/clock.hpp"

namespace rb::testing {

class recording_notifier final : public alert::notifier {
 public:
  struct sent {
    std::string channel;
    alert::notification n;
  };
  explicit recording_notifier(std::vector<std::string> channels = {"team", "oncall", "dba"},
                              std::filesystem::path file = {})
      : m_channels(std::move(channels)), m_file(std::move(file)) {}

  std::string send(const std::string& channel, const alert::notification& n) override {
    bool known = false;
    for (const auto& c : m_channels) known = known || c == channel;
    if (!known) throw error(error_kind::usage, "no channel '" + channel + "'");
    m_sent.push_back({channel, n});
    if (!m_file.empty()) {
      // One write of one short line to an O_APPEND file: lines from processes never mix.
      std::string line = n.incident + " " + std::to_string(n.level) + " " + channel + " " + n.action + "\n";
      int fd = ::open(m_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      if (fd >= 0) {
        [[maybe_unused]] ssize_t w = ::write(fd, line.data(), line.size());
        ::close(fd);
      }
    }
    return "delivery-" + std::to_string(m_sent.size());
  }
  const std::vector<sent>& all() const { return m_sent; }
  /// The notifications sent to one channel.
  std::vector<alert::notification> to(const std::string& channel) const {
    std::vector<alert::notification> out;
    for (const auto& s : m_sent)
      if (s.channel == channel) out.push_back(s.n);
    return out;
  }
  void clear() { m_sent.clear(); }

 private:
  std::vector<std::string> m_channels;
  std::filesystem::path m_file;
  std::vector<sent> m_sent;
};

/// Time that moves only when told: steady and wall time advance together.
class fake_clock final : public clock {
 public:
  std::chrono::steady_clock::time_point now() const override { return std::chrono::steady_clock::time_point{} + m_offset; }
  void sleep_for(std::chrono::milliseconds d) override { m_offset += d; }
  std::chrono::system_clock::time_point wall_now() const override { return m_start + m_offset; }
  void advance(std::chrono::milliseconds d) { m_offset += d; }

 private:
  // Whole milliseconds, as the journal writes times.
  std::chrono::system_clock::time_point m_start =
      std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
  std::chrono::milliseconds m_offset{0};
};

}  // namespace rb::testing
