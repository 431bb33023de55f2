// A run's report read back from its audit records: the model `runbook report` renders.
#include "engine/report/run_report.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <regex>
#include <set>

#include "engine/run/journal.hpp"
#include "engine/util/clock.hpp"

namespace rb::report {
namespace {

using run::text_field;

long long epoch_ms(const std::string& ts) {
  auto t = parse_rfc3339(ts);
  if (!t) return -1;
  return std::chrono::duration_cast<std::chrono::milliseconds>(t->time_since_epoch()).count();
}

long long int_field(const json& r, const char* key, long long fallback = 0) {
  auto it = r.find(key);
  if (it == r.end() || !it->is_number()) return fallback;
  return it->is_number_float() ? static_cast<long long>(it->get<double>()) : it->get<long long>();
}

bool bool_field(const json& r, const char* key) {
  auto it = r.find(key);
  return it != r.end() && it->is_boolean() && it->get<bool>();
}

/// An error object's message (or a string error as it is).
std::string error_text(const json& r) {
  auto it = r.find("error");
  if (it == r.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) return text_field(*it, "message");
  return "";
}

/// A metric value as a number for the sparkline: numbers as they are, booleans as 0 and 1.
std::optional<double> numeric(const json& v) {
  if (v.is_number()) return v.get<double>();
  if (v.is_boolean()) return v.get<bool>() ? 1.0 : 0.0;
  return std::nullopt;
}

/// What one line of a record says, for a step's notes.
std::string note_of(const json& r, const std::string& ev) {
  if (ev == "log") return "log: " + text_field(r, "message");
  if (ev == "note") return "note: " + text_field(r, "message");
  if (ev == "verify") return std::string("verify: ") + (bool_field(r, "ok") ? "ok" : "failed") +
                             (error_text(r).empty() ? "" : " (" + error_text(r) + ")");
  if (ev == "confirm")
    return "confirm: " + text_field(r, "text") + " → " + text_field(r, "answer") + " (by " + text_field(r, "by") + ")";
  if (ev == "checklist.item") {
    std::string detail = r.contains("detail") ? (r["detail"].is_string() ? r["detail"].get<std::string>() : r["detail"].dump()) : "";
    return "checklist: " + text_field(r, "outcome") + (detail.empty() ? "" : ": " + detail);
  }
  if (ev == "step.recovered") return "recovered after a crash (by " + text_field(r, "by") + ")";
  if (ev == "step.rerun") return "re-run after a crash: " + text_field(r, "reason");
  if (ev == "step.in_doubt") return "in doubt after a crash: " + text_field(r, "reason");
  return "";
}

class builder {
 public:
  run_report take() {
    if (m_r.ended.empty()) m_r.duration_ms = m_last;  // no run.end: as far as the records go
    return std::move(m_r);
  }

  void add(const json& r) {
    const std::string ev = text_field(r, "event");
    const std::string ts = text_field(r, "ts");
    if (ev == "run.start" && m_t0 < 0) {
      m_t0 = epoch_ms(ts);
      m_r.run_id = text_field(r, "run");
      m_r.runbook = text_field(r, "runbook");
      m_r.title = text_field(r, "title");
      m_r.file = text_field(r, "file");
      m_r.file_sha256 = text_field(r, "sha256");
      m_r.target = text_field(r, "target");
      m_r.op = text_field(r, "operator");
      m_r.reason = text_field(r, "reason");
      m_r.started = ts;
      if (r.contains("params")) m_r.params = r["params"];
      m_r.status = "unfinished";
      return;
    }
    const long long at = rel(ts);
    m_last = std::max(m_last, at);
    const std::string phase = text_field(r, "phase"), step = text_field(r, "step");
    if (ev == "run.resume") {
      ++m_r.resumes;
      m_r.status = "unfinished";
    } else if (ev == "run.end") {
      m_r.status = text_field(r, "status");
      m_r.ended = ts;
      m_r.duration_ms = at;
      m_r.error = error_text(r);
      m_r.failed_step = text_field(r, "failed_step");
    } else if (ev == "phase.start") {
      phase_report& p = phase_of(phase);
      if (p.start_ms < 0) p.start_ms = at;
      p.transaction = p.transaction || bool_field(r, "transaction");
    } else if (ev == "phase.end") {
      phase_report& p = phase_of(phase);
      p.end_ms = at;
      p.status = text_field(r, "status");
      if (r.contains("transaction") && r["transaction"].is_string()) p.transaction_outcome = r["transaction"];
    } else if (ev == "step.start") {
      step_report& s = step_of(phase, step);
      if (s.start_ms < 0) s.start_ms = at;
      s.attempts.push_back({static_cast<int>(int_field(r, "attempt", 1)), at, -1, "", "", 0});
    } else if (ev == "step.retry") {
      step_report& s = step_of(phase, step);
      long long delay = int_field(r, "delay_ms");
      if (!s.attempts.empty()) {
        attempt& a = s.attempts.back();
        a.end_ms = at;
        a.status = "retried";
        a.error = error_text(r);
        a.delay_ms = delay;
      }
      s.attempts.push_back({static_cast<int>(int_field(r, "attempt", 2)), at + delay, -1, "", "", 0});
    } else if (ev == "step.end") {
      step_report& s = step_of(phase, step);
      s.end_ms = at;
      s.status = text_field(r, "status");
      s.error = error_text(r);
      if (s.attempts.empty()) s.attempts.push_back({1, s.start_ms < 0 ? at : s.start_ms, -1, "", "", 0});
      attempt& a = s.attempts.back();
      a.end_ms = at;
      a.status = s.status;
      a.error = s.error;
    } else if (ev == "rollback.start") {
      step_report& s = step_of(phase, step);
      s.rollbacks.push_back({at, -1, "", ""});
      m_in_rollback.insert({phase, step});
    } else if (ev == "rollback.end") {
      step_report& s = step_of(phase, step);
      if (s.rollbacks.empty()) s.rollbacks.push_back({at, -1, "", ""});
      s.rollbacks.back().end_ms = at;
      s.rollbacks.back().status = text_field(r, "status");
      s.rollbacks.back().error = error_text(r);
      m_in_rollback.erase({phase, step});
    } else if (ev == "sql") {
      sql_statement q;
      q.at_ms = at;
      q.sql = text_field(r, "sql");
      q.params = int_field(r, "params");
      q.rows = int_field(r, "rows");
      q.executions = int_field(r, "executions", 1);
      q.duration_ms = int_field(r, "duration_ms");
      q.sqlstate = text_field(r, "sqlstate");
      q.in_rollback = m_in_rollback.count({phase, step}) > 0;
      step_of(phase, step).sql.push_back(std::move(q));
    } else if (ev == "shell") {
      shell_command c;
      c.at_ms = at;
      if (r.contains("argv") && r["argv"].is_array())
        for (const auto& a : r["argv"]) c.argv.push_back(a.is_string() ? a.get<std::string>() : a.dump());
      c.exit_code = static_cast<int>(int_field(r, "exit_code", -1));
      c.duration_ms = int_field(r, "duration_ms");
      c.stdout_tail = text_field(r, "stdout_tail");
      c.stderr_tail = text_field(r, "stderr_tail");
      c.psql = bool_field(r, "psql");
      c.in_rollback = m_in_rollback.count({phase, step}) > 0;
      step_of(phase, step).shell.push_back(std::move(c));
    } else if (ev == "watch.start") {
      watch_start(r, at);
    } else if (ev == "sample" || ev == "sample.summary" || ev == "decision" || ev == "watch.end") {
      watch_record(r, ev, at);
    } else if (ev == "alert.sent" || ev == "alert.failed" || ev == "alert.skipped") {
      notify(r, ev, at);
    } else if (!step.empty()) {
      std::string note = note_of(r, ev);
      if (!note.empty()) step_of(phase, step).notes.push_back(std::move(note));
    }
  }

  void add_incident(const json& r) {
    const std::string ev = text_field(r, "event");
    const std::string id = text_field(r, "run");
    if (ev.rfind("alert.", 0) == 0) return notify(r, ev, rel(text_field(r, "ts")));
    if (ev == "incident.open") {
      incident_report inc;
      inc.id = id;
      inc.severity = text_field(r, "severity");
      inc.summary = text_field(r, "summary");
      inc.cause = text_field(r, "cause");
      inc.level = int_field(r, "level", 1);
      inc.state = "open";
      inc.opened = text_field(r, "ts");
      m_r.incidents.push_back(std::move(inc));
    }
    incident_report* inc = nullptr;
    for (auto& i : m_r.incidents)
      if (i.id == id) inc = &i;
    if (!inc) return;
    std::string detail;
    if (ev == "incident.open") detail = "level " + std::to_string(inc->level) + ", " + inc->severity + ": " + inc->summary;
    else if (ev == "incident.escalate") {
      inc->level = int_field(r, "level", inc->level);
      detail = "to level " + std::to_string(inc->level) + " (" + text_field(r, "reason") + ")";
    } else if (ev == "incident.ack") {
      inc->state = "acknowledged";
      detail = "by " + text_field(r, "by") + (text_field(r, "note").empty() ? "" : ": " + text_field(r, "note"));
    } else if (ev == "incident.resolve") {
      inc->state = "resolved";
      detail = "by " + text_field(r, "by") + (text_field(r, "reason").empty() ? "" : " (" + text_field(r, "reason") + ")") +
               (text_field(r, "note").empty() ? "" : ": " + text_field(r, "note"));
    } else {
      return;
    }
    inc->events.push_back({text_field(r, "ts"), ev, detail});
  }

 private:
  long long rel(const std::string& ts) const {
    long long t = epoch_ms(ts);
    return t < 0 || m_t0 < 0 ? 0 : t - m_t0;
  }

  phase_report& phase_of(const std::string& name) {
    for (auto& p : m_r.phases)
      if (p.name == name) return p;
    m_r.phases.push_back({});
    m_r.phases.back().name = name;
    return m_r.phases.back();
  }

  /// The step a record names; statements and commands outside any step (a guard's, say) go to
  /// a step "(outside a step)" of their phase, or of a phase "(run)".
  step_report& step_of(const std::string& phase_name, const std::string& name) {
    const std::string phase = phase_name.empty() ? "(run)" : phase_name;
    phase_report& p = phase_of(phase);
    std::string step = name.empty() ? "(outside a step)" : name;
    for (auto& s : p.steps)
      if (s.name == step) return s;
    p.steps.push_back({});
    p.steps.back().phase = phase;
    p.steps.back().name = step;
    // Not a step that ran: a place for the phase's own statements (BEGIN, COMMIT, a guard's
    // queries), so it never reads as an unfinished step.
    if (name.empty()) p.steps.back().status = "phase statements";
    return p.steps.back();
  }

  watch_report* watch_of(const json& r) {
    std::string name = text_field(r, "watch");
    for (auto it = m_r.watches.rbegin(); it != m_r.watches.rend(); ++it)
      if (it->name == name) return &*it;
    return nullptr;
  }

  void watch_start(const json& r, long long at) {
    watch_report w;
    w.name = text_field(r, "watch");
    w.phase = text_field(r, "phase");
    w.start_ms = at;
    w.every_ms = int_field(r, "every_ms");
    w.lasting_ms = int_field(r, "lasting_ms");
    if (r.contains("triggers") && r["triggers"].is_array())
      for (const auto& t : r["triggers"])
        w.triggers.push_back({text_field(t, "name"), t.contains("when") && t["when"].is_string() ? t["when"].get<std::string>() : "function",
                              t.contains("action") && t["action"].is_string() ? t["action"].get<std::string>() : ""});
    if (r.contains("metrics") && r["metrics"].is_object())
      for (const auto& [name, source] : r["metrics"].items()) {
        metric_series m;
        m.name = name;
        m.source = source.is_string() ? source.get<std::string>() : source.dump();
        for (const auto& t : w.triggers)
          for (auto th : thresholds_in(t.when, name)) {
            th.trigger = t.name;
            m.thresholds.push_back(std::move(th));
          }
        w.metrics.push_back(std::move(m));
      }
    phase_of(w.phase).is_watch = true;
    m_r.watches.push_back(std::move(w));
  }

  static metric_series& series(watch_report& w, const std::string& name) {
    for (auto& m : w.metrics)
      if (m.name == name) return m;
    w.metrics.push_back({});
    w.metrics.back().name = name;
    return w.metrics.back();
  }

  void watch_record(const json& r, const std::string& ev, long long at) {
    watch_report* w = watch_of(r);
    if (!w) return;
    if (ev == "sample" && r.contains("values") && r["values"].is_object()) {
      long long el = int_field(r, "elapsed_ms");
      for (const auto& [name, v] : r["values"].items())
        if (auto d = numeric(v)) series(*w, name).points.emplace_back(el, *d);
    } else if (ev == "sample.summary" && r.contains("metrics") && r["metrics"].is_object()) {
      long long from = int_field(r, "from_ms"), to = int_field(r, "to_ms");
      for (const auto& [name, m] : r["metrics"].items()) {
        metric_series& s = series(*w, name);
        if (m.contains("min") && m.contains("max") && m["min"].is_number() && m["max"].is_number())
          s.bands.push_back({from, to, m["min"].get<double>(), m["max"].get<double>()});
        if (m.contains("last"))
          if (auto d = numeric(m["last"])) s.points.emplace_back(to, *d);
      }
    } else if (ev == "decision") {
      watch_decision d;
      d.elapsed_ms = int_field(r, "elapsed_ms");
      d.trigger = text_field(r, "trigger");
      d.decision = text_field(r, "decision");
      d.condition = text_field(r, "condition");
      d.action = text_field(r, "action");
      d.reason = text_field(r, "reason");
      if (r.contains("values")) d.values = r["values"];
      w->decisions.push_back(std::move(d));
    } else if (ev == "watch.end") {
      w->end_ms = at;
      w->end = text_field(r, "end");
      w->end_trigger = text_field(r, "trigger");
      w->end_reason = text_field(r, "reason");
      w->samples = int_field(r, "samples");
    }
  }

  void notify(const json& r, const std::string& ev, long long at) {
    std::string delivery = text_field(r, "delivery");
    if (!delivery.empty() && !m_deliveries.insert(delivery + "/" + ev + "/" + text_field(r, "channel")).second) return;
    notification n;
    n.at_ms = at;
    n.ts = text_field(r, "ts");
    n.outcome = ev.substr(6);
    n.channel = text_field(r, "channel");
    n.type = text_field(r, "type");
    n.severity = text_field(r, "severity");
    n.action = text_field(r, "action");
    n.incident = text_field(r, "incident");
    n.reason = text_field(r, "reason");
    if (r.contains("status")) n.status = r["status"].is_string() ? r["status"].get<std::string>() : r["status"].dump();
    n.level = int_field(r, "level");
    m_r.notifications.push_back(std::move(n));
  }

  run_report m_r;
  long long m_t0 = -1;
  long long m_last = 0;  ///< the latest record's time
  std::set<std::pair<std::string, std::string>> m_in_rollback;
  std::set<std::string> m_deliveries;
};

/// Flips a comparison written constant-first ("10 < x" is "x > 10").
std::string flipped(const std::string& op) {
  if (op == "<") return ">";
  if (op == ">") return "<";
  if (op == "<=") return ">=";
  if (op == ">=") return "<=";
  return op;
}

}  // namespace

std::vector<const step_report*> run_report::steps() const {
  std::vector<const step_report*> out;
  for (const auto& p : phases)
    for (const auto& s : p.steps) out.push_back(&s);
  return out;
}

std::vector<threshold> thresholds_in(const std::string& when, const std::string& metric) {
  static const std::string op = R"((<=|>=|==|~=|!=|<|>))";
  static const std::string num = R"((-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?))";
  static const std::regex name_first(R"(([A-Za-z_][A-Za-z0-9_]*)\s*)" + op + R"(\s*)" + num);
  // A number that is not the end of a name ("x2 > y" compares two metrics).
  static const std::regex number_first(R"((?:^|[^A-Za-z0-9_.]))" + num + R"(\s*)" + op + R"(\s*([A-Za-z_][A-Za-z0-9_]*))");
  std::vector<threshold> out;
  for (std::sregex_iterator it(when.begin(), when.end(), name_first), end; it != end; ++it)
    if ((*it)[1] == metric) out.push_back({"", (*it)[2], std::stod((*it)[3])});
  for (std::sregex_iterator it(when.begin(), when.end(), number_first), end; it != end; ++it)
    if ((*it)[3] == metric) out.push_back({"", flipped((*it)[2]), std::stod((*it)[1])});
  return out;
}

run_report build_from(const std::vector<json>& run_records, const std::vector<json>& incident_records) {
  builder b;
  for (const auto& r : run_records) b.add(r);
  for (const auto& r : incident_records) b.add_incident(r);
  return b.take();
}

run_report build(const std::filesystem::path& log, const std::string& id, const std::optional<std::string>& key) {
  run::run_state state = run::load_run(log, id);
  std::set<std::string> incidents;
  std::vector<json> incident_records;
  audit::for_each_record(log, [&](const json& r) {
    std::string run = text_field(r, "run");
    if (text_field(r, "event") == "incident.open" && text_field(r, "source_run") == state.run_id) incidents.insert(run);
    if (incidents.count(run)) incident_records.push_back(r);
  });
  run_report out = build_from(state.records, incident_records);
  out.audit_file = log;
  out.chain = audit::verify(log, key);
  return out;
}

}  // namespace rb::report
