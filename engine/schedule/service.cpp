// The scheduler's main loop on a signalfd: due times, child exits, reload and a graceful stop.
#include "engine/schedule/service.hpp"

#include "engine/report/metrics_file.hpp"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/error.hpp"
#include "engine/util/clock.hpp"
#include "engine/util/json_text.hpp"

namespace rb::schedule {
namespace {

using namespace std::chrono;
using wall = std::chrono::system_clock;

sigset_t handled() {
  sigset_t s;
  sigemptyset(&s);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&s, sig);
  return s;
}

sys_seconds real_now() { return floor<seconds>(wall::now()); }

/// Milliseconds from now until `t`, rounded up (so a wake at a due time is never early).
milliseconds until(wall::time_point t) {
  auto d = ceil<milliseconds>(t - wall::now());
  return d < milliseconds(0) ? milliseconds(0) : d + milliseconds(5);
}

std::string signal_name(int sig) {
  switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
    default: return "signal " + std::to_string(sig);
  }
}

}  // namespace

signal_inbox::signal_inbox() {
  sigset_t s = handled();
  if (int rc = ::pthread_sigmask(SIG_BLOCK, &s, nullptr); rc != 0)
    throw error(error_kind::internal, std::string("unable to block the scheduler's signals: ") + std::strerror(rc));
  m_fd = ::signalfd(-1, &s, SFD_NONBLOCK | SFD_CLOEXEC);
  if (m_fd < 0) throw error(error_kind::internal, std::string("unable to make a signalfd: ") + std::strerror(errno));
}

signal_inbox::~signal_inbox() {
  if (m_fd >= 0) ::close(m_fd);
}

std::vector<int> signal_inbox::wait(std::optional<milliseconds> timeout) {
  pollfd p{m_fd, POLLIN, 0};
  int ms = -1;
  if (timeout) ms = static_cast<int>(std::min<milliseconds::rep>(timeout->count(), 24LL * 3600 * 1000));
  int rc = ::poll(&p, 1, ms);
  std::vector<int> out;
  if (rc <= 0) return out;  // time is up (or EINTR: the loop looks again)
  signalfd_siginfo info{};
  while (::read(m_fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) out.push_back(static_cast<int>(info.ssi_signo));
  return out;
}

std::string format_event(const std::string& event, const json& fields, bool as_json) {
  if (as_json) {
    json j = {{"ts", rfc3339_now()}, {"event", event}};
    for (const auto& [k, v] : fields.items()) j[k] = v;
    return json_text(j, -1);
  }
  std::string line = rfc3339_now() + " " + event;
  for (const auto& [k, v] : fields.items()) {
    std::string text = v.is_string() ? v.get<std::string>() : v.dump();
    bool quote = text.empty() || text.find_first_of(" \"=") != std::string::npos;
    line += " " + k + "=" + (quote ? json(text).dump() : text);
  }
  return line;
}

int serve(daemon& d, signal_inbox& signals, const service_options& opts, const service_hooks& hooks,
          const event_sink& log) {
  // With once and --now, every tick looks at the same pretended time: reaping, no new due times.
  const sys_seconds once_at = opts.now.value_or(real_now());
  auto due_clock = [&] { return opts.once ? once_at : real_now(); };
  std::optional<sys_seconds> stop_requested;
  sys_seconds next = sys_seconds::max();

  auto tick = [&] {
    try {
      next = d.tick(due_clock());
    } catch (const std::exception& e) {
      // The registry may be unreachable for a while: say so and look again in a minute.
      log("schedule.error", {{"error", e.what()}, {"retry_in_s", 60}});
      next = real_now() + seconds(60);
    }
  };

  log("schedule.ready", {{"entries", d.entries().size()}, {"mode", opts.once ? "once" : "daemon"},
                         {"grace_s", opts.grace.count()}, {"pid", static_cast<long long>(::getpid())}});
  tick();
  for (;;) {
    std::optional<wall::time_point> escalation;
    if (hooks.on_wake) {
      try {
        escalation = hooks.on_wake();
      } catch (const std::exception& e) {
        log("schedule.error", {{"error", std::string("advancing incident escalations: ") + e.what()}});
      }
    }
    if (stop_requested) {
      if (d.stop(real_now(), *stop_requested, opts.grace)) break;
    } else if (opts.once && d.running().empty()) {
      break;
    }

    // Sleep until the next thing to do; signals (a child's exit among them) end it early.
    std::optional<wall::time_point> wake;
    auto sooner = [&](wall::time_point t) { wake = wake ? std::min(*wake, t) : t; };
    if (stop_requested) {
      for (auto t : {*stop_requested + opts.grace, *stop_requested + 2 * opts.grace})
        if (t > real_now()) sooner(t);
      sooner(wall::now() + seconds(1));  // a child that ignores SIGTERM is watched each second
    } else if (!opts.once && next != sys_seconds::max()) {
      sooner(next);
    }
    if (escalation) sooner(*escalation);
    // The wall clock may jump (NTP, suspend): look again at least every five minutes.
    sooner(wall::now() + minutes(5));
    for (int sig : signals.wait(until(*wake))) {
      if (sig == SIGTERM || sig == SIGINT) {
        if (!stop_requested) {
          stop_requested = ceil<seconds>(wall::now());  // the grace is never shorter than asked
          log("schedule.stopping", {{"signal", signal_name(sig)}, {"running", d.running().size()},
                                    {"grace_s", opts.grace.count()}});
        } else {
          // A second stop signal: no more waiting, the running children are asked to stop now.
          stop_requested = real_now() - opts.grace;
          log("schedule.stopping", {{"signal", signal_name(sig)}, {"running", d.running().size()}, {"grace_s", 0}});
        }
      } else if (sig == SIGHUP && !stop_requested && hooks.reload) {
        try {
          d.reload(hooks.reload());
        } catch (const std::exception& e) {
          log("schedule.reload_failed", {{"error", e.what()}, {"kept", d.entries().size()}});
        }
      }
    }
    if (!stop_requested) tick();
  }
  log("schedule.stopped", {{"unsuccessful", d.unsuccessful()}});
  if (stop_requested) return 0;
  return opts.once && d.unsuccessful() > 0 ? 1 : 0;
}

void write_metrics(const daemon& d, const std::filesystem::path& dir, const std::filesystem::path& audit_path,
                   sys_seconds now, const event_sink& log) {
  std::vector<report::schedule_series> series;
  for (const auto& e : d.entries()) {
    report::schedule_series s;
    s.runbook = e.runbook;
    s.target = e.target;
    s.next_due = static_cast<double>(e.when.next_after(now).time_since_epoch().count());
    series.push_back(std::move(s));
  }
  try {
    report::write_metrics(dir, audit_path, series);
  } catch (const std::exception& ex) {
    log("schedule.metrics_failed", {{"dir", dir.string()}, {"error", ex.what()}});
  }
}

}  // namespace rb::schedule
