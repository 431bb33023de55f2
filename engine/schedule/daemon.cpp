// The scheduler's decisions: due and missed times, one run per entry at a time, a clean stop.
#include "engine/schedule/daemon.hpp"

namespace rb::schedule {

std::string outcome_for_exit(int code) {
  switch (code) {
    case 0: return "succeeded";
    case 1: return "failed";
    case 2: return "usage_error";
    case 3: return "rollback_failed";
    case 4: return "succeeded_with_failures";
    case 75: return "locked";
    case 130: return "cancelled";
    default: return code < 0 ? "killed by signal " + std::to_string(-code) : "exit " + std::to_string(code);
  }
}

daemon::daemon(std::vector<entry> entries, launcher& l, claims& c, event_sink sink, std::chrono::seconds first_lookback)
    : m_entries(std::move(entries)), m_launcher(l), m_claims(c), m_sink(std::move(sink)), m_first_lookback(first_lookback) {}

void daemon::reload(std::vector<entry> entries) {
  m_entries = std::move(entries);
  m_sink("schedule.reload", {{"entries", m_entries.size()}});
}

void daemon::reap() {
  for (const auto& [pid, code] : m_launcher.reap()) {
    auto it = m_children.find(pid);
    if (it == m_children.end()) continue;
    std::string outcome = outcome_for_exit(code);
    if (code != 0) ++m_unsuccessful;
    m_claims.finished(it->second.what, it->second.due, outcome);
    m_sink("schedule.end", {{"runbook", it->second.what.runbook}, {"target", it->second.what.target},
                            {"due", it->second.due}, {"pid", pid}, {"exit_code", code}, {"outcome", outcome}});
    m_children.erase(it);
    m_terminated.erase(pid);
    m_killed.erase(pid);
  }
}

void daemon::start(const entry& e, sys_seconds due, const char* why) {
  const std::string due_utc = utc_string(due);
  json where = {{"runbook", e.runbook}, {"target", e.target}, {"due", due_utc}};
  for (const auto& [pid, c] : m_children)
    if (c.what.key() == e.key()) {
      json f = where;
      f["reason"] = "its run of " + c.due + " is still going (pid " + std::to_string(pid) + ")";
      m_sink("schedule.skip", std::move(f));
      return;
    }
  if (!m_claims.try_claim(e, due_utc)) {
    std::string why = m_claims.why_not();
    if (why.empty()) {
      m_sink("schedule.claimed_elsewhere", where);
    } else {
      where["reason"] = why;
      m_sink("schedule.skip", std::move(where));
    }
    return;
  }
  long long pid = m_launcher.start(e, due_utc);
  m_claims.started(e, due_utc, pid);
  m_children[pid] = child{e, due_utc};
  json f = where;
  f["pid"] = pid;
  f["why"] = why;
  m_sink("schedule.start", std::move(f));
}

sys_seconds daemon::tick(sys_seconds now) {
  reap();
  sys_seconds next = sys_seconds::max();
  for (const entry& e : m_entries) {
    const std::string key = e.key();
    sys_seconds last = m_claims.last_checked(key).value_or(now - m_first_lookback);
    if (last < now) {
      std::vector<sys_seconds> due = e.when.due_between(last, now, 100'000);
      if (!due.empty()) {
        sys_seconds latest = due.back();
        std::size_t missed = due.size() - 1;
        bool on_time = now - latest <= k_on_time;
        if (!on_time) ++missed;
        if (missed > 0)
          m_sink("schedule.missed", {{"runbook", e.runbook}, {"target", e.target}, {"missed", missed},
                                     {"first", utc_string(due.front())}, {"latest", utc_string(latest)},
                                     {"policy", e.missed == missed_policy::once ? "once" : "skip"}});
        if (on_time) start(e, latest, "due");
        else if (e.missed == missed_policy::once) start(e, latest, "missed");
      }
      m_claims.set_last_checked(key, now);
    }
    next = std::min(next, e.when.next_after(now));
  }
  m_claims.flush();
  return next;
}

bool daemon::stop(sys_seconds now, sys_seconds requested, std::chrono::seconds grace) {
  reap();
  for (const auto& [pid, c] : m_children) {
    if (now >= requested + grace && !m_terminated.count(pid)) {
      m_terminated.insert(pid);
      m_launcher.terminate(pid);
      m_sink("schedule.cancel", {{"runbook", c.what.runbook}, {"target", c.what.target}, {"due", c.due}, {"pid", pid},
                                 {"reason", "still running when the grace period ended: stopped as Ctrl-C would"}});
    } else if (now >= requested + 2 * grace && !m_killed.count(pid)) {
      m_killed.insert(pid);
      m_launcher.kill(pid);
      m_sink("schedule.kill", {{"runbook", c.what.runbook}, {"target", c.what.target}, {"due", c.due}, {"pid", pid},
                               {"reason", "did not stop within a second grace period; resume it with 'runbook resume'"}});
    }
  }
  return m_children.empty();
}

}  // namespace rb::schedule
