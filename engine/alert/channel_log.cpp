// The `log` channel: the alert goes to the run's output and its audit record only.
#include "engine/alert/channel.hpp"

#include "engine/util/json_text.hpp"

namespace rb::alert {

std::string log_line(const notification& n) {
  std::string line = "alert [" + n.severity + "] " + n.summary;
  if (n.action != "trigger") line += " (" + n.action + ")";
  if (!n.incident.empty()) line += " incident " + n.incident + (n.level > 0 ? " level " + std::to_string(n.level) : "");
  if (n.details.is_object() && !n.details.empty()) line += " " + json_text(n.details);
  return line;
}

namespace {

class log_channel final : public channel {
 public:
  using channel::channel;
  attempt_result attempt(const notification& n, const std::string&, interrupt&) override {
    attempt_result r;
    r.outcome = attempt_result::verdict::delivered;
    r.body = log_line(n);
    return r;
  }
};

}  // namespace

std::unique_ptr<channel> make_log_channel(const channel_config& cfg) { return std::make_unique<log_channel>(cfg); }

}  // namespace rb::alert
