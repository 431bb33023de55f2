// `runbook list | show | check`: the runbooks on the search path, one runbook's shape, and
// validating runbooks without running them.
#include <iostream>

#include "bindings/cli/commands.hpp"
#include "bindings/cli/options.hpp"
#include "bindings/config.hpp"
#include "bindings/loader.hpp"
#include "bindings/open_all.hpp"
#include "engine/error.hpp"
#include "engine/run/catalog.hpp"
#include "engine/schedule/cron.hpp"
#include "engine/util/duration.hpp"
#include "engine/util/secrets.hpp"
#include "engine/util/text.hpp"

namespace rb::cli {
namespace fs = std::filesystem;

// ---- list ------------------------------------------------------------------------------

int cmd_list(std::vector<std::string> args) {
  command_parser p("list", "List the runbooks on the search path.", std::move(args));
  p.options.add_options()("json", "print JSON");
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  auto dirs = run::search_path();
  auto entries = run::list_runbooks(dirs);
  json out = json::array();
  for (const auto& e : entries) {
    json item = {{"name", e.name}, {"file", e.file.string()}};
    try {
      auto sb = lua::make_sandbox(lib_dirs(dirs));
      auto def = lua::load_runbook(*sb, e.file, e.name);
      item["title"] = def.title;
      item["tags"] = def.tags;
    } catch (const error& err) {
      item["error"] = secrets::redact(err.what());
    }
    out.push_back(item);
  }
  if (r.count("json")) {
    print_json(out, 2);
    return 0;
  }
  if (entries.empty()) {
    std::cout << "no runbooks found (looked in ./runbooks and RUNBOOK_PATH)\n";
    return 0;
  }
  std::size_t w = 4;
  for (const auto& e : entries) w = std::max(w, e.name.size());
  for (const auto& item : out) {
    std::cout << pad(item["name"].get<std::string>(), w + 2);
    if (item.contains("error")) std::cout << "(broken: run 'runbook check " << item["file"].get<std::string>() << "')";
    else std::cout << item["title"].get<std::string>();
    if (item.contains("tags") && !item["tags"].empty()) {
      std::vector<std::string> tags = item["tags"].get<std::vector<std::string>>();
      std::cout << "  [" << join(tags, ", ") << "]";
    }
    std::cout << "\n";
  }
  return 0;
}

// ---- show ------------------------------------------------------------------------------

namespace {

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
  j["on_error"] = std::string(run::to_string(s.on_err ? *s.on_err : phase.on_err ? *phase.on_err : book.on_err));
  return j;
}

/// The schedule and its next due time (in its zone and UTC), for show.
json schedule_json(const run::schedule_def& s) {
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
    json pj = {{"name", ph.name}, {"source", ph.where.str()}, {"transaction", ph.transaction}, {"steps", steps}};
    if (!ph.description.empty()) pj["description"] = ph.description;
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

void print_book_text(const run::runbook_def& book) {
  std::cout << book.name;
  if (!book.title.empty()) std::cout << " — " << book.title;
  std::cout << "\n  file: " << book.file.string() << "\n";
  if (!book.description.empty()) std::cout << "  " << book.description << "\n";
  if (!book.tags.empty()) std::cout << "  tags: " << join(book.tags, ", ") << "\n";
  if (book.escalation) std::cout << "  escalation: " << *book.escalation << " (when a run fails)\n";
  if (book.schedule) {
    json sj = schedule_json(*book.schedule);
    std::cout << "  schedule: " << book.schedule->cron << " (" << book.schedule->tz << ", missed: " << sj["missed"].get<std::string>();
    if (book.schedule->target) std::cout << ", target " << *book.schedule->target;
    if (!book.schedule->params.empty()) std::cout << ", params " << book.schedule->params.dump();
    std::cout << ")\n    next due " << sj["next_local"].get<std::string>() << " (" << sj["next"].get<std::string>() << ")\n";
  }
  if (!book.params.empty()) {
    std::cout << "\nparams (--param name=value):\n";
    for (const auto& p : book.params) {
      std::cout << "  " << pad(p.name, 16) << pad(std::string(run::to_string(p.type)), 10);
      if (p.default_text) std::cout << "default " << *p.default_text;
      else if (p.required) std::cout << "required";
      if (!p.values.empty()) std::cout << "  one of: " << join(p.values, ", ");
      if (!p.doc.empty()) std::cout << "  — " << p.doc;
      std::cout << "\n";
    }
  }
  std::cout << "\nphases:\n";
  std::size_t pn = 0, sn = 0;
  for (const auto& ph : book.phases) {
    std::cout << "  " << ++pn << ". " << ph.name;
    if (ph.transaction) std::cout << "  (one transaction, a savepoint per step)";
    if (!ph.description.empty()) std::cout << " — " << ph.description;
    std::cout << "\n";
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
      if (s.confirm) notes.push_back("CONFIRM: " + *s.confirm);
      std::cout << "     " << pad(std::to_string(++sn) + ".", 4) << pad(s.name, 28) << "[" << join(notes, ", ") << "]\n";
    }
  }
}

}  // namespace

int cmd_show(std::vector<std::string> args) {
  command_parser p("show", "Show a runbook: params, phases and steps.", std::move(args));
  p.options.add_options()("format", "text or json", cxxopts::value<std::string>()->default_value("text"))(
      "name", "runbook name", cxxopts::value<std::string>());
  p.options.parse_positional({"name"});
  p.options.positional_help("NAME");
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  if (!r.count("name")) throw error(error_kind::usage, "show needs a runbook name: runbook show NAME");
  std::string format = r["format"].as<std::string>();
  if (format != "text" && format != "json") throw error(error_kind::usage, "--format must be text or json, not '" + format + "'");
  auto dirs = run::search_path();
  auto sb = lua::make_sandbox(lib_dirs(dirs));
  auto book = load_named(*sb, dirs, r["name"].as<std::string>());
  if (format == "json") print_json(book_json(book), 2);
  else print_book_text(book);
  return 0;
}

// ---- check -----------------------------------------------------------------------------

int cmd_check(std::vector<std::string> args) {
  command_parser p("check", "Load and validate runbooks without running them.", std::move(args));
  p.options.add_options()("paths", "files or directories", cxxopts::value<std::vector<std::string>>())(
      "config", "config file whose escalation policies runbooks name (default: ./runbook.lua)", cxxopts::value<std::string>());
  p.options.parse_positional({"paths"});
  p.options.positional_help("[PATH...]");
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  auto dirs = run::search_path();
  std::vector<run::catalog_entry> todo;
  if (r.count("paths")) {
    for (const auto& path : r["paths"].as<std::vector<std::string>>()) {
      std::error_code ec;
      if (fs::is_directory(path, ec)) {
        for (auto& e : run::list_runbooks({path})) todo.push_back(e);
      } else if (fs::is_regular_file(path, ec)) {
        // Name it by its place below a search directory when it has one.
        std::string name;
        fs::path abs = fs::weakly_canonical(path);
        for (const auto& d : dirs) {
          fs::path dabs = fs::weakly_canonical(d);
          auto rel = abs.lexically_relative(dabs);
          if (!rel.empty() && *rel.begin() != "..") name = run::name_for(dabs, abs);
        }
        todo.push_back({name, path});
      } else {
        throw error(error_kind::usage, "no such file or directory: '" + path + "'");
      }
    }
  } else {
    todo = run::list_runbooks(dirs);
    if (todo.empty()) throw error(error_kind::usage, "no runbooks to check (no ./runbooks and RUNBOOK_PATH is empty)");
  }
  int bad = 0;
  std::optional<run::config> cfg;
  for (const auto& e : todo) {
    try {
      auto sb = lua::make_sandbox(lib_dirs(dirs));
      auto book = lua::load_runbook(*sb, e.file, e.name);
      if (book.escalation) {
        if (!cfg) cfg = lua::load_config(*sb, config_file(r));
        cfg->escalation.require(*book.escalation, "runbook '" + book.name + "' (" + book.where.str() + ")",
                                cfg->file.string());
      }
      std::cout << "ok     " << book.name << " (" << e.file.string() << ", " << book.step_count() << " steps)\n";
    } catch (const error& err) {
      ++bad;
      std::cout << "error  " << secrets::redact(err.what()) << "\n";
    }
  }
  if (bad) std::cout << bad << " of " << todo.size() << " runbooks have errors\n";
  return bad ? exit_codes::usage : exit_codes::ok;
}

}  // namespace rb::cli
