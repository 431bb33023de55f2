// `runbook schedule [--list | --once | --claims]`: the scheduler over every runbook of the
// catalog that has a `schedule`. Parses options and reads runbooks and the config (Lua); the
// loop, the claims and the child runs are the engine's (engine/schedule).
#include <unistd.h>

#include <iostream>
#include <set>

#include "bindings/cli/commands.hpp"
#include "bindings/cli/incident_commands.hpp"
#include "bindings/cli/options.hpp"
#include "bindings/config.hpp"
#include "bindings/loader.hpp"
#include "bindings/open_all.hpp"
#include "engine/db/connection.hpp"
#include "engine/error.hpp"
#include "engine/incident/escalator.hpp"
#include "engine/run/catalog.hpp"
#include "engine/run/fleet.hpp"
#include "engine/run/state.hpp"
#include "engine/schedule/launcher.hpp"
#include "engine/schedule/registry.hpp"
#include "engine/schedule/service.hpp"
#include "engine/schedule/state.hpp"
#include "engine/shell/child.hpp"
#include "engine/util/clock.hpp"
#include "engine/util/duration.hpp"
#include "engine/util/secrets.hpp"
#include "engine/util/text.hpp"

namespace rb::cli {
namespace fs = std::filesystem;

namespace {

/// The scheduled runbooks of the catalog, and the runbooks that could not be read.
struct catalog_schedules {
  std::vector<schedule::entry> entries;
  std::vector<std::string> errors;  ///< "file:line: ..." per broken runbook
  std::set<std::string> broken;     ///< their names
};

/// The targets a schedule runs on: its `target` (a name, a glob or a list, as run --target
/// takes), else the runbook's `target`, else the config's default_target, else its only target.
std::vector<std::string> schedule_targets(const run::runbook_def& book, const run::config& cfg) {
  std::optional<std::string> spec = book.schedule->target ? book.schedule->target : book.target;
  std::vector<std::string> known;
  for (const auto& [name, t] : cfg.targets) known.push_back(name);
  if (spec && run::is_fleet_spec(*spec)) {
    try {
      return run::select_targets(*spec, known);
    } catch (const error& e) {
      throw error(error_kind::bad_runbook, book.where.str() + ": runbook '" + book.name + "': schedule: " + e.what());
    }
  }
  if (spec) {
    if (!cfg.targets.count(*spec))
      throw error(error_kind::bad_runbook, book.where.str() + ": runbook '" + book.name + "': schedule: target '" + *spec +
                                               "' is not configured" + did_you_mean(*spec, known) +
                                               (cfg.file.empty() ? " (no config file)" : " in " + cfg.file.string()));
    return {*spec};
  }
  if (cfg.default_target) return {*cfg.default_target};
  if (cfg.targets.size() == 1) return {cfg.targets.begin()->first};
  return {""};  // the run decides (--dsn-less runbooks that use no database)
}

catalog_schedules read_catalog(const run::config& cfg) {
  auto dirs = run::search_path();
  catalog_schedules out;
  for (const auto& c : run::list_runbooks(dirs)) {
    try {
      auto sb = lua::make_sandbox(lib_dirs(dirs));
      run::runbook_def book = lua::load_runbook(*sb, c.file, c.name);
      if (!book.schedule) continue;
      const run::schedule_def& s = *book.schedule;
      schedule::cron when = schedule::cron::parse(s.cron, s.tz);
      for (const auto& t : schedule_targets(book, cfg))
        out.entries.push_back({book.name, t, when, s.missed_once ? schedule::missed_policy::once : schedule::missed_policy::skip,
                               s.params});
    } catch (const error& e) {
      out.errors.push_back(secrets::redact(e.what()));
      out.broken.insert(c.name);
    }
  }
  return out;
}

std::string hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

schedule::sys_seconds parse_now(const std::string& text) {
  auto t = parse_rfc3339(text);
  if (!t) throw error(error_kind::usage, "--now '" + text + "' is not an RFC 3339 UTC time such as 2026-12-03T03:00:00Z");
  return std::chrono::floor<std::chrono::seconds>(*t);
}

// ---- --list ------------------------------------------------------------------------------

/// --list --json: one object per schedule, its next due times in UTC and in its zone.
int print_list_json(const catalog_schedules& cat, schedule::sys_seconds from, int next) {
  for (const auto& e : cat.errors) std::cerr << "runbook: " << e << "\n";
  json out = json::array();
  for (const auto& e : cat.entries) {
    json times = json::array();
    schedule::sys_seconds t = from;
    for (int i = 0; i < next; ++i) {
      t = e.when.next_after(t);
      times.push_back({{"utc", schedule::utc_string(t)}, {"local", e.when.local_string(t)}});
    }
    out.push_back({{"runbook", e.runbook},
                   {"target", e.target.empty() ? json(nullptr) : json(e.target)},
                   {"cron", e.when.text()},
                   {"tz", e.when.zone()},
                   {"missed", e.missed == schedule::missed_policy::once ? "once" : "skip"},
                   {"next", times}});
  }
  print_json(out, 2);
  return cat.errors.empty() ? exit_codes::ok : exit_codes::usage;
}

int print_list(const catalog_schedules& cat, schedule::sys_seconds from, int next) {
  for (const auto& e : cat.errors) std::cerr << "runbook: " << e << "\n";
  std::vector<std::string> head = {"RUNBOOK", "TARGET", "CRON", "TZ", "MISSED", "NEXT (ITS ZONE)", "NEXT (UTC)"};
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : cat.entries) {
    schedule::sys_seconds t = from;
    for (int i = 0; i < next; ++i) {
      t = e.when.next_after(t);
      if (i == 0)
        rows.push_back({e.runbook, e.target.empty() ? "-" : e.target, e.when.text(), e.when.zone(),
                        e.missed == schedule::missed_policy::once ? "once" : "skip", e.when.local_string(t),
                        schedule::utc_string(t)});
      else
        rows.push_back({"", "", "", "", "", e.when.local_string(t), schedule::utc_string(t)});
    }
  }
  if (rows.empty()) {
    std::cout << "no scheduled runbooks (give one schedule = \"0 3 * * *\")\n";
    return cat.errors.empty() ? exit_codes::ok : exit_codes::usage;
  }
  std::vector<std::size_t> w(head.size());
  for (std::size_t i = 0; i < head.size(); ++i) {
    w[i] = head[i].size();
    for (const auto& r : rows) w[i] = std::max(w[i], r[i].size());
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& c) {
    std::string l;
    for (std::size_t i = 0; i < c.size(); ++i) l += i + 1 < c.size() ? pad(c[i], w[i] + 1) : c[i];
    out += l.substr(0, l.find_last_not_of(' ') + 1) + "\n";
  };
  line(head);
  for (const auto& r : rows) line(r);
  std::cout << out;
  return cat.errors.empty() ? exit_codes::ok : exit_codes::usage;
}

// ---- --claims ----------------------------------------------------------------------------

std::unique_ptr<db::connection> registry_connection(const run::config& cfg) {
  auto t = run::resolve_target(cfg, cfg.registry, std::nullopt, std::nullopt);
  db::connection_options o;
  o.dsn = t->dsn;
  o.name = "registry target '" + *cfg.registry + "'";
  o.application_name = "runbook scheduler";
  return std::make_unique<db::connection>(o);
}

int print_claims(const run::config& cfg) {
  if (!cfg.registry) throw error(error_kind::usage, "--claims reads the schedule registry: set registry = \"<target>\" in the config");
  auto conn = registry_connection(cfg);
  schedule::registry reg(*conn);
  std::cout << "DUE                   RUNBOOK / TARGET                       STATUS      HOST / PID                 SCHEDULER\n";
  for (const auto& c : reg.recent("", 100)) {
    bool open = c.status == "claimed" || c.status == "running";
    std::string scheduler = c.scheduler_alive ? "alive" : open ? "gone" : "-";
    if (c.status == "lost") scheduler = "gone (claim lost)";
    std::cout << pad(c.due, 22) << pad(c.runbook + " / " + c.target, 39) << pad(c.status, 12)
              << pad(c.host + " / " + std::to_string(c.pid), 27) << scheduler << "\n";
  }
  return exit_codes::ok;
}

}  // namespace

// ---- the scheduler -----------------------------------------------------------------------

int cmd_schedule(std::vector<std::string> args) {
  command_parser p("schedule",
                   "Start scheduled runbooks when they are due: a foreground daemon (systemd, Kubernetes), or --once\n"
                   "(cron, a Kubernetes CronJob). Exactly once per due time across schedulers that share the config's\n"
                   "registry target; without one, one scheduler per state directory.\n",
                   std::move(args));
  p.options.add_options()("list", "print every schedule and its next due time (its zone and UTC), then exit")(
      "next", "with --list: this many next due times per schedule", cxxopts::value<int>()->default_value("1"))(
      "once", "start what is due now (within the last minute), wait for those runs, exit (0: all succeeded)")(
      "now", "pretend it is this time, RFC 3339 UTC (for testing schedules and catch-up; with --once or --list)",
      cxxopts::value<std::string>())(
      "grace", "on SIGTERM/SIGINT: how long running runs may go on before they are stopped as Ctrl-C would",
      cxxopts::value<std::string>()->default_value("5m"))(
      "log-format", "text or json (one JSON object per line on stderr)", cxxopts::value<std::string>()->default_value("text"))(
      "json", "with --list: print JSON (fields in docs/json.md)")(
      "claims", "print the registry's latest claims (due time, status, host, pid, whether its scheduler lives)")(
      "metrics-dir", "rewrite the Prometheus textfile DIR/runbook.prom at every wake, with each schedule's next due "
                     "time (default: the config's metrics_dir); the runs it starts write it too",
      cxxopts::value<std::string>())(
      "config", "config file (default: ./runbook.lua)", cxxopts::value<std::string>());
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  std::optional<schedule::sys_seconds> now;
  if (r.count("now")) {
    if (!r.count("once") && !r.count("list")) throw error(error_kind::usage, "--now goes with --once or --list");
    now = parse_now(r["now"].as<std::string>());
  }
  std::string format = r["log-format"].as<std::string>();
  if (format != "text" && format != "json") throw error(error_kind::usage, "--log-format must be text or json, not '" + format + "'");
  std::chrono::milliseconds grace{};
  if (!try_parse_duration(r["grace"].as<std::string>(), grace))
    throw error(error_kind::usage, "--grace '" + r["grace"].as<std::string>() + "' is not a duration (e.g. 30s, 5m)");

  if (r.count("list")) {
    int next = r["next"].as<int>();
    if (next < 1 || next > 100) throw error(error_kind::usage, "--next must be from 1 to 100");
    auto sb = lua::make_sandbox({});
    run::config cfg = lua::load_config(*sb, config_file(r));
    auto from = now.value_or(std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()));
    if (r.count("json")) return print_list_json(read_catalog(cfg), from, next);
    return print_list(read_catalog(cfg), from, next);
  }
  if (r.count("json")) throw error(error_kind::usage, "--json goes with --list (the daemon's own log: --log-format json)");
  if (r.count("claims")) {
    auto sb = lua::make_sandbox({});
    return print_claims(lua::load_config(*sb, config_file(r)));
  }

  // Signals become events of the loop; blocked before any thread (the alert dispatcher's) starts.
  schedule::signal_inbox signals;
  bool as_json = format == "json";
  schedule::event_sink log = [as_json](const std::string& event, json fields) {
    secrets::redact(fields);
    std::cerr << secrets::redact(schedule::format_event(event, fields, as_json)) << "\n";
    std::cerr.flush();
  };
  auto sb = lua::make_sandbox({});
  run::config cfg = lua::load_config(*sb, config_file(r));
  fs::path state_path = fs::absolute(run::state_dir(opt_string(r, "state-dir")));
  schedule::state_dir state(state_path);  // one scheduler per state directory

  std::unique_ptr<db::connection> registry_conn;
  std::unique_ptr<schedule::registry> reg;
  std::unique_ptr<schedule::claims> claims;
  if (cfg.registry) {
    registry_conn = registry_connection(cfg);
    reg = std::make_unique<schedule::registry>(*registry_conn);
    claims = std::make_unique<schedule::registry_claims>(*reg, state, hostname(), static_cast<long long>(::getpid()));
  } else {
    claims = std::make_unique<schedule::local_claims>(state);
  }
  // Child runs see what this scheduler was given: its config, its state directory.
  std::vector<std::string> extra;
  if (!cfg.file.empty()) extra.insert(extra.end(), {"--config", fs::absolute(cfg.file).string()});
  extra.insert(extra.end(), {"--state-dir", state_path.string()});
  if (auto m = opt_string(r, "metrics-dir")) extra.insert(extra.end(), {"--metrics-dir", fs::absolute(*m).string()});
  schedule::process_launcher launcher(shell::self_program(), extra);

  catalog_schedules cat = read_catalog(cfg);
  for (const auto& e : cat.errors) log("schedule.runbook_error", {{"error", e}});
  schedule::daemon d(cat.entries, launcher, *claims, log);

  audit::log journal(run::audit_path(state_path), audit::key_from_env());
  auto notifier = make_notifier(cfg, journal);
  incident::store incidents(journal);
  system_clock clk;
  incident::escalator esc(incidents, notifier.get(), clk);

  schedule::service_options so;
  so.once = r.count("once") > 0;
  so.now = now;
  so.grace = std::chrono::duration_cast<std::chrono::seconds>(grace);
  schedule::service_hooks hooks;
  hooks.reload = [&] {
    auto sb2 = lua::make_sandbox({});
    run::config fresh = lua::load_config(*sb2, config_file(r));
    if (fresh.registry != cfg.registry)
      log("schedule.note", {{"note", "the registry target changed in the config; restart the scheduler to use it"}});
    catalog_schedules next = read_catalog(fresh);
    for (const auto& e : next.errors) log("schedule.runbook_error", {{"error", e}, {"kept", "its previous schedule"}});
    for (const auto& e : d.entries())  // a runbook broken by an edit keeps the schedule it had
      if (next.broken.count(e.runbook)) next.entries.push_back(e);
    return next.entries;
  };
  std::optional<fs::path> metrics_dir = opt_string(r, "metrics-dir") ? std::optional(fs::path(*opt_string(r, "metrics-dir")))
                                                                    : cfg.metrics_dir;
  if (metrics_dir) *metrics_dir = fs::absolute(*metrics_dir);
  hooks.on_wake = [&]() -> std::optional<std::chrono::system_clock::time_point> {
    incidents.refresh();
    for (const auto& c : esc.advance()) log("incident.escalate", {{"change", incident::describe(c)}});
    if (metrics_dir)
      schedule::write_metrics(d, *metrics_dir, journal.path(),
                              now.value_or(std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now())), log);
    return esc.next_due();
  };
  int code = schedule::serve(d, signals, so, hooks, log);
  if (metrics_dir)  // after the last runs ended: their outcomes beside the next due times
    schedule::write_metrics(d, *metrics_dir, journal.path(),
                            now.value_or(std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now())), log);
  if (notifier)
    for (const auto& u : notifier->drain(cfg.alert_wait))
      log("alert.undelivered", {{"delivery", u.delivery}, {"channel", u.channel}, {"reason", u.reason}});
  return code;
}

}  // namespace rb::cli
