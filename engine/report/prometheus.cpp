// Prometheus metrics: series from the audit, the exposition format, an atomic textfile.
#include "engine/report/prometheus.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "engine/error.hpp"
#include "engine/util/clock.hpp"

namespace rb::report {
namespace {

using label_list = std::vector<std::pair<std::string, std::string>>;

std::string label_value(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string labels(const label_list& kv) {
  std::string out = "{";
  for (std::size_t i = 0; i < kv.size(); ++i) out += (i ? "," : "") + kv[i].first + "=\"" + label_value(kv[i].second) + "\"";
  return out + "}";
}

void family(std::string& out, const std::string& name, const char* type, const std::string& help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

template <class S>
label_list key(const S& s) {
  return {{"runbook", s.runbook}, {"target", s.target}};
}

}  // namespace

std::optional<double> unix_time(const std::string& ts) {
  auto t = parse_rfc3339(ts);
  if (!t) return std::nullopt;
  return std::chrono::duration<double>(t->time_since_epoch()).count();
}

void run_series_builder::add_record(const nlohmann::json& r) {
  std::string event = r.value("event", "");
  std::string run = r.value("run", "");
  if (event == "run.start") {
    std::string target;
    // run.start names its target as a string ("primary", "dsn", "sandbox"), null without one
    if (r.contains("target") && r["target"].is_string()) target = r["target"].get<std::string>();
    else if (r.contains("target") && r["target"].is_object()) target = r["target"].value("name", "");
    m_run_keys[run] = {r.value("runbook", ""), target};
    return;
  }
  if (event != "run.end") return;
  auto k = m_run_keys.find(run);
  if (k == m_run_keys.end()) return;
  run_series& s = m_series[k->second];
  s.runbook = k->second.first;
  s.target = k->second.second;
  std::string status = r.value("status", "unknown");
  auto ts = unix_time(r.value("ts", ""));
  s.last_run = ts;
  if (status == "succeeded" || status == "succeeded_with_failures") s.last_success = ts;
  if (r.contains("duration_ms") && r["duration_ms"].is_number()) s.last_duration = r["duration_ms"].get<double>() / 1000.0;
  ++s.outcomes[status];
}

std::vector<run_series> run_series_builder::take() {
  std::vector<run_series> out;
  for (auto& [k, s] : m_series) out.push_back(std::move(s));
  m_series.clear();
  return out;
}

std::string render(const metrics& m) {
  std::string out;
  family(out, "runbook_last_run_timestamp_seconds", "gauge", "When the runbook last ended on the target, as Unix time.");
  for (const auto& s : m.runs)
    if (s.last_run) out += "runbook_last_run_timestamp_seconds" + labels(key(s)) + " " + number(*s.last_run) + "\n";
  family(out, "runbook_last_success_timestamp_seconds", "gauge", "When the runbook last succeeded on the target, as Unix time.");
  for (const auto& s : m.runs)
    if (s.last_success) out += "runbook_last_success_timestamp_seconds" + labels(key(s)) + " " + number(*s.last_success) + "\n";
  family(out, "runbook_last_run_duration_seconds", "gauge", "How long the runbook's last run on the target took.");
  for (const auto& s : m.runs)
    if (s.last_duration) out += "runbook_last_run_duration_seconds" + labels(key(s)) + " " + number(*s.last_duration) + "\n";
  family(out, "runbook_runs_total", "counter", "Runs ended, by runbook, target and outcome.");
  for (const auto& s : m.runs)
    for (const auto& [status, n] : s.outcomes) {
      label_list l = key(s);
      l.emplace_back("outcome", status);
      out += "runbook_runs_total" + labels(l) + " " + std::to_string(n) + "\n";
    }
  family(out, "runbook_incidents_open", "gauge", "Incidents open or acknowledged, by severity.");
  for (const char* sev : {"critical", "error", "warning", "info"}) {
    auto it = m.open_incidents.find(sev);
    out += std::string("runbook_incidents_open{severity=\"") + sev + "\"} " +
           std::to_string(it == m.open_incidents.end() ? 0 : it->second) + "\n";
  }
  family(out, "runbook_schedule_next_due_timestamp_seconds", "gauge", "When the schedule next starts the runbook, as Unix time.");
  for (const auto& s : m.schedules)
    out += "runbook_schedule_next_due_timestamp_seconds" + labels(key(s)) + " " + number(s.next_due) + "\n";
  return out;
}

void write_textfile(const std::filesystem::path& dir, const std::string& text) {
  std::filesystem::path file = dir / "runbook.prom";
  std::filesystem::path tmp = dir / (".runbook.prom." + std::to_string(::getpid()));
  auto fail = [&](const std::string& what) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw error(error_kind::io, "unable to write the metrics file '" + file.string() + "': " + what + ": " + std::strerror(err));
  };
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("open");
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      fail("write");
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    fail("fsync");
  }
  ::close(fd);
  if (::rename(tmp.c_str(), file.c_str()) != 0) fail("rename");
}

}  // namespace rb::report
