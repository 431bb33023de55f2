// `runbook show`: a runbook's outline as text and as JSON.
#include "engine/report/outline.hpp"

#include <chrono>
#include <sstream>

#include "engine/schedule/cron.hpp"

#include "engine/trigger/watch.hpp"
#include "engine/util/duration.hpp"
#include "engine/util/secrets.hpp"
#include "engine/util/text.hpp"

namespace rb::report {
namespace {

using run::milliseconds;

std::string pad(const std::string& s, std::size_t w) {
  return s.size() >= w ? s + "  " : s + std::string(w - s.size(), ' ');
}

json step_json(const run::runbook_def& book, const run::phase_def& phase, const run::step_def& s) {
  json j = {{"name", s.name}, {"source", s.where.str()}, {"verify", s.has_verify}, {"rollback", s.has_rollback},
            {"when", s.has_when}, {"idempotent", s.idempotent}};
  if (!s.description.empty()) j["description"] = s.description;
  j["timeout"] = format_duration(s.timeout ? *s.timeout : phase.timeout ? *phase.timeout : book.timeout);
  if (s.retry.attempts > 1) {
    j["retry"] = {{"attempts", s.retry.attempts},
                  {"backoff", s.retry.backoff == run::backoff_kind::fixed ? "fixed" : "exponential"},
                  {"initial", format_duration(s.retry.initial)},
                  {"max", format_duration(s.retry.max)},
                  {"on", s.retry.on}};
  }
  if (s.confirm) j["confirm"] = *s.confirm;
  if (s.confirm && s.skip_on_decline) j["on_decline"] = "skip";
  j["on_error"] = std::string(run::to_string(s.on_err ? *s.on_err : phase.on_err ? *phase.on_err : book.on_err));
  return j;
}

/// "key": "5m" and "key_ms": 300000, or both null.
void put_duration(json& j, const std::string& key, const std::optional<milliseconds>& d) {
  j[key] = d ? json(format_duration(*d)) : json(nullptr);
  j[key + "_ms"] = d ? json(d->count()) : json(nullptr);
}

json condition_json(const std::optional<trigger::condition>& c) {
  if (!c) return nullptr;
  if (c->expr) return {{"kind", "expression"}, {"text", c->text}, {"metrics", c->expr->names()}};
  return {{"kind", "function"}, {"text", c->text}};
}

json action_json(const trigger::action& a) {
  json j = {{"kind", std::string(trigger::kind_name(a.what))}, {"text", a.describe()}};
  switch (a.what) {
    case trigger::action::kind::escalate:
    case trigger::action::kind::alert: j["args"] = a.args; break;
    case trigger::action::kind::investigate:
      put_duration(j, "window", a.window);
      j["unless"] = condition_json(a.unless);
      j["then"] = a.then ? action_json(*a.then) : json(nullptr);
      break;
    case trigger::action::kind::call: j["function"] = a.args.value("function", "function"); break;
    default: break;
  }
  return j;
}

json watch_json(const trigger::watch_def& w, const std::string& file) {
  json j = json::object();
  // null when the runbook's code computes it at run time
  if (w.every_fn) j["every"] = nullptr;
  else put_duration(j, "every", w.every);
  if (w.lasting_fn) j["lasting"] = nullptr;
  else put_duration(j, "lasting", w.lasting);
  put_duration(j, "sample_timeout", w.sample_timeout);
  json metrics = json::array();
  for (const auto& m : w.metrics) {
    if (m.fn) metrics.push_back({{"name", m.name}, {"kind", "function"}, {"function", m.function}});
    else metrics.push_back({{"name", m.name}, {"kind", "sql"}, {"sql", m.sql}});
  }
  j["metrics"] = metrics;
  json triggers = json::array();
  int order = 0;
  for (const auto& t : w.triggers) {
    json tj = {{"name", t.name}, {"order", ++order}, {"source", run::source_loc{file, t.line}.str()}};
    put_duration(tj, "after", t.after);
    put_duration(tj, "before", t.before);
    put_duration(tj, "sustained", t.sustained);
    tj["when"] = condition_json(t.when);
    tj["clear_when"] = condition_json(t.clear_when);
    tj["action"] = action_json(t.act);
    triggers.push_back(tj);
  }
  j["triggers"] = triggers;
  return j;
}

/// Lines of an action as a branch of the tree: `lead` starts its first line, `indent` the rest.
void action_lines(std::ostream& out, const trigger::action& a, const std::string& indent, const std::string& lead) {
  if (a.what != trigger::action::kind::investigate) {
    out << indent << lead << a.describe() << "\n";
    return;
  }
  out << indent << lead << "investigate for " << format_duration(a.window) << "\n";
  std::string in = indent + std::string(lead.empty() ? 0 : 3, ' ');
  if (a.unless) out << in << "├─ unless " << one_line(a.unless->text) << " holds in that time: stand down\n";
  if (a.then) action_lines(out, *a.then, in, "└─ then ");
  else out << in << "└─ then nothing\n";
}

void watch_text(std::ostream& out, const trigger::watch_def& w, const std::string& file) {
  out << "     every " << trigger::describe_every(w) << " for " << trigger::describe_lasting(w) << ", sample timeout "
      << format_duration(w.sample_timeout) << "\n";
  out << "     metrics (SQL in one read-only snapshot per sample):\n";
  std::size_t width = 12;
  for (const auto& m : w.metrics) width = std::max(width, m.name.size());
  for (const auto& m : w.metrics) out << "       " << pad(m.name, width + 2) << metric_source(m) << "\n";
  out << "     triggers, in order (at each sample the first that holds acts):\n";
  for (std::size_t i = 0; i < w.triggers.size(); ++i) {
    const auto& t = w.triggers[i];
    bool last = i + 1 == w.triggers.size();
    std::string bar = last ? "        " : "     │  ";
    out << "     " << (last ? "└─ " : "├─ ") << i + 1 << ". " << t.name << "  [" << band(t) << "]  ("
        << run::source_loc{file, t.line}.str() << ")\n";
    std::string when = "when " + one_line(t.when.text);
    if (t.sustained) when += ", sustained " + format_duration(*t.sustained);
    out << bar << "   " << when << "\n";
    if (t.clear_when) out << bar << "   clear_when " << one_line(t.clear_when->text) << " (re-arms only then)\n";
    action_lines(out, t.act, bar + "   ", "└─ ");
  }
}

}  // namespace

std::string one_line(std::string_view text) {
  std::string out;
  bool space = false;
  for (char c : trim(text)) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = true;
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

std::string metric_source(const trigger::metric_def& m, std::size_t max) {
  if (m.fn) return m.function.empty() ? "function" : m.function;
  std::string_view sql = trim(m.sql);
  std::size_t nl = sql.find('\n');
  std::string first(trim(sql.substr(0, nl)));
  bool more = nl != std::string_view::npos;
  if (first.size() > max) {
    first = valid_utf8(first.substr(0, max));
    more = true;
  }
  return more ? first + " …" : first;
}

std::string band(const trigger::trigger_def& t) {
  if (t.after && t.before) return format_duration(*t.after) + " to " + format_duration(*t.before);
  if (t.after) return "after " + format_duration(*t.after);
  if (t.before) return "before " + format_duration(*t.before);
  return "any time";
}

/// The schedule and its next due time (in its zone and UTC).
static json schedule_json(const run::schedule_def& s) {
  auto c = schedule::cron::parse(s.cron, s.tz);
  auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  auto next = c.next_after(now);
  json j = {{"cron", s.cron}, {"tz", s.tz}, {"missed", s.missed_once ? "once" : "skip"}, {"params", s.params},
            {"next", schedule::utc_string(next)}, {"next_local", c.local_string(next)}};
  if (s.target) j["target"] = *s.target;
  return j;
}

json book_json(const run::runbook_def& book) {
  json params = json::array();
  for (const auto& p : book.params) {
    json pj = {{"name", p.name}, {"type", std::string(run::to_string(p.type))}, {"required", p.required}};
    if (p.default_text) pj["default"] = *p.default_text;
    if (!p.doc.empty()) pj["doc"] = p.doc;
    if (!p.values.empty()) pj["values"] = p.values;
    params.push_back(pj);
  }
  json phases = json::array();
  for (const auto& ph : book.phases) {
    json steps = json::array();
    for (const auto& s : ph.steps) steps.push_back(step_json(book, ph, s));
    json pj = {{"name", ph.name}, {"kind", ph.watch ? "watch" : "steps"}, {"source", ph.where.str()},
               {"transaction", ph.transaction}, {"steps", steps}};
    if (!ph.description.empty()) pj["description"] = ph.description;
    if (ph.watch) pj["watch"] = watch_json(*ph.watch, ph.where.file);
    phases.push_back(pj);
  }
  json j = {{"name", book.name},   {"title", book.title},       {"description", book.description},
            {"lock", book.lock},   {"target", book.target ? json(*book.target) : json(nullptr)},
            {"tags", book.tags},   {"file", book.file.string()}, {"sha256", book.file_sha256},
            {"params", params},    {"phases", phases},          {"on_error", std::string(run::to_string(book.on_err))}};
  if (book.escalation) j["escalation"] = *book.escalation;
  if (book.schedule) j["schedule"] = schedule_json(*book.schedule);
  return j;
}

std::string book_text(const run::runbook_def& book) {
  std::ostringstream out;
  out << book.name;
  if (!book.title.empty()) out << " — " << book.title;
  out << "\n  file: " << book.file.string() << "\n";
  if (!book.description.empty()) out << "  " << book.description << "\n";
  if (!book.tags.empty()) out << "  tags: " << join(book.tags, ", ") << "\n";
  if (book.escalation) out << "  escalation: " << *book.escalation << " (when a run fails)\n";
  if (book.schedule) {
    json sj = schedule_json(*book.schedule);
    out << "  schedule: " << book.schedule->cron << " (" << book.schedule->tz << ", missed: " << sj["missed"].get<std::string>();
    if (book.schedule->target) out << ", target " << *book.schedule->target;
    if (!book.schedule->params.empty()) out << ", params " << book.schedule->params.dump();
    out << ")\n    next due " << sj["next_local"].get<std::string>() << " (" << sj["next"].get<std::string>() << ")\n";
  }
  if (!book.params.empty()) {
    out << "\nparams (--param name=value):\n";
    for (const auto& p : book.params) {
      out << "  " << pad(p.name, 16) << pad(std::string(run::to_string(p.type)), 10);
      if (p.default_text) out << "default " << *p.default_text;
      else if (p.required) out << "required";
      if (!p.values.empty()) out << "  one of: " << join(p.values, ", ");
      if (!p.doc.empty()) out << "  — " << p.doc;
      out << "\n";
    }
  }
  out << "\nphases:\n";
  std::size_t pn = 0, sn = 0;
  for (const auto& ph : book.phases) {
    out << "  " << ++pn << ". " << (ph.watch ? "watch " : "") << ph.name;
    if (ph.transaction) out << "  (one transaction, a savepoint per step)";
    if (!ph.description.empty()) out << " — " << ph.description;
    out << "\n";
    if (ph.watch) watch_text(out, *ph.watch, ph.where.file);
    for (const auto& s : ph.steps) {
      json j = step_json(book, ph, s);
      std::vector<std::string> notes;
      if (s.has_when) notes.push_back("conditional");
      if (s.has_verify) notes.push_back("verify");
      if (s.has_rollback) notes.push_back("rollback");
      if (s.idempotent) notes.push_back("idempotent");
      if (s.retry.attempts > 1)
        notes.push_back("retry " + std::to_string(s.retry.attempts) + "x " + j["retry"]["backoff"].get<std::string>() +
                        (s.retry.on.empty() ? "" : " on " + join(s.retry.on, ",")));
      notes.push_back("timeout " + j["timeout"].get<std::string>());
      if (j["on_error"] != "rollback") notes.push_back("on_error " + j["on_error"].get<std::string>());
      if (s.confirm) notes.push_back("CONFIRM: " + *s.confirm + (s.skip_on_decline ? " (skipped if declined)" : ""));
      out << "     " << pad(std::to_string(++sn) + ".", 4) << pad(s.name, 28) << "[" << join(notes, ", ") << "]\n";
    }
  }
  return secrets::redact(out.str());
}

}  // namespace rb::report
