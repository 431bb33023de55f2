// `runbook incidents [--all] [--json] [--follow]`, `runbook ack ID`, `runbook resolve ID`, and
// the incidents a finished run opens or resolves.
#include "bindings/cli/incident_commands.hpp"
#include "bindings/cli/options.hpp"

#include <unistd.h>

#include <cxxopts.hpp>
#include <iostream>
#include <thread>

#include "bindings/config.hpp"
#include "bindings/open_all.hpp"
#include "engine/error.hpp"
#include "engine/incident/escalator.hpp"
#include "engine/incident/run_end.hpp"
#include "engine/run/cancel.hpp"
#include "engine/run/stop.hpp"
#include "engine/run/state.hpp"
#include "engine/util/json_text.hpp"
#include "engine/util/secrets.hpp"
#include "engine/util/text.hpp"

namespace rb::cli {
namespace {

using json = nlohmann::json;

/// A parser for one incident command: the shared options plus --config.
command_parser parser_for(const std::string& name, const std::string& help, std::vector<std::string> args) {
  command_parser p(name, help, std::move(args));
  p.options.add_options()("config", "config file (default: ./runbook.lua)", cxxopts::value<std::string>());
  return p;
}

/// The journal, the config and the notifier of one incident command.
struct desk {
  std::unique_ptr<audit::log> journal;
  run::config cfg;
  std::unique_ptr<alert::dispatcher> notifier;
  system_clock clk;
  /// Notifications of the changes this command made get at most alert_wait before it exits.
  ~desk() {
    if (!notifier) return;
    for (const auto& u : notifier->drain(cfg.alert_wait))
      std::cerr << "runbook: " << secrets::redact("notification " + u.delivery + " to channel '" + u.channel +
                                                  "' was not delivered: " + u.reason) << "\n";
  }

  explicit desk(const cxxopts::ParseResult& r) {
    journal = std::make_unique<audit::log>(audit_file(r), audit::key_from_env());
    auto sb = lua::make_sandbox({});
    cfg = lua::load_config(*sb, config_file(r));
    notifier = make_notifier(cfg, *journal);
  }
};


std::string age_text(long long s) {
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m";
  if (s < 86400) return std::to_string(s / 3600) + "h" + std::to_string(s / 60 % 60) + "m";
  return std::to_string(s / 86400) + "d" + std::to_string(s / 3600 % 24) + "h";
}

std::string last_notification_text(const json& n) {
  if (!n.is_object()) return "-";
  std::string channels = n.contains("channels") && n["channels"].is_array() && !n["channels"].empty()
                             ? join(n["channels"].get<std::vector<std::string>>(), ",") : "none";
  return n.value("action", "") + " L" + std::to_string(n.value("level", 0)) + " " + channels + " " + n.value("at", "");
}

/// The table `runbook incidents` prints.
std::string render(const std::vector<json>& rows) {
  if (rows.empty()) return "no open incidents ('runbook incidents --all' lists resolved ones too)\n";
  std::vector<std::string> head = {"ID", "STATE", "LEVEL", "SEVERITY", "RUNBOOK", "TARGET", "OPENED", "AGE", "LAST NOTIFICATION"};
  std::vector<std::vector<std::string>> cells;
  for (const auto& j : rows)
    cells.push_back({j["id"], j["state"], std::to_string(j["level"].get<int>()) + "/" + std::to_string(j["levels"].get<int>()),
                     j["severity"], j["runbook"], j["target"].get<std::string>().empty() ? "-" : j["target"].get<std::string>(),
                     j["opened"], age_text(j["age_s"].get<long long>()), last_notification_text(j["last_notification"])});
  std::vector<std::size_t> w(head.size());
  for (std::size_t i = 0; i < head.size(); ++i) {
    w[i] = head[i].size();
    for (const auto& c : cells) w[i] = std::max(w[i], c[i].size());
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& c) {
    std::string l;
    for (std::size_t i = 0; i < c.size(); ++i) l += i + 1 < c.size() ? pad(c[i], w[i] + 1) : c[i];
    out += l + "\n";
  };
  line(head);
  for (const auto& c : cells) line(c);
  return out;
}

std::vector<json> rows_of(incident::store& incidents, bool all, incident::wall_time now) {
  std::vector<json> rows;
  for (const incident::incident* inc : incidents.list())
    if (all || inc->is_open()) rows.push_back(inc->to_json(now));
  return rows;
}

void print_changes(const std::vector<incident::escalator::result>& changes) {
  for (const auto& c : changes) std::cout << secrets::redact(incident::describe(c)) << "\n";
}

}  // namespace

std::unique_ptr<alert::dispatcher> make_notifier(const run::config& cfg, audit::log& journal) {
  if (cfg.channels.empty()) return nullptr;
  static system_clock clk;
  alert::dispatcher_options opts;
  opts.print = [](const std::string& line) { std::cout << line << "\n"; };
  return std::make_unique<alert::dispatcher>(cfg.channels, journal, clk, std::move(opts));
}

int cmd_incidents(std::vector<std::string> args) {
  auto p = parser_for("incidents", "List incidents (open and acknowledged; --all: resolved too).", std::move(args));
  p.options.add_options()("all", "resolved incidents too")("json", "print JSON (fields in docs/json.md)")(
      "follow", "keep running: advance escalations when they fall due and reprint on change (Ctrl-C stops)");
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  bool all = r.count("all") > 0, as_json = r.count("json") > 0;
  desk d(r);
  incident::store incidents(*d.journal);
  incident::escalator esc(incidents, d.notifier.get(), d.clk);
  auto show = [&](std::string& last) {
    auto now = d.clk.wall_now();
    auto rows = rows_of(incidents, all, now);
    std::string key;  // what changed, ages aside
    for (auto row : rows) {
      row.erase("age_s");
      key += row.dump();
    }
    if (key == last) return;
    last = key;
    if (as_json) {
      json out = rows;
      secrets::redact(out);
      std::cout << json_text(out, -1) << "\n";
    } else {
      std::cout << secrets::redact(render(rows));
    }
    std::cout.flush();
  };
  std::string last = "\x01";
  if (!r.count("follow")) {
    show(last);
    return exit_codes::ok;
  }
  run::stop_source stop;
  run::cancel::install_handlers();
  run::cancel::forward signals(stop);
  while (!stop.requested()) {
    auto changes = esc.advance();
    if (!as_json) print_changes(changes);
    show(last);
    // Wake for the next due level or a change by another process each second; a signal at once.
    stop.wait_for(std::chrono::seconds(1));
    incidents.refresh();
  }
  return exit_codes::ok;
}

namespace {

/// ack and resolve: one incident, one change, told to its channels.
int change_incident(const std::string& what, const std::string& help, std::vector<std::string> args) {
  auto p = parser_for(what, help, std::move(args));
  p.options.add_options()("by", "who " + std::string(what == "ack" ? "acknowledges" : "resolves") +
                                    " (default: the operator, user@host)",
                          cxxopts::value<std::string>())(
      "note", "a note, kept in the journal and sent with the notification", cxxopts::value<std::string>())(
      "id", "incident id", cxxopts::value<std::string>());
  p.options.parse_positional({"id"});
  p.options.positional_help("ID");
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  if (!r.count("id"))
    throw error(error_kind::usage, what + " needs an incident id: runbook " + what + " INC-7F3A2C (see 'runbook incidents')");
  desk d(r);
  incident::store incidents(*d.journal);
  incident::escalator esc(incidents, d.notifier.get(), d.clk);
  std::string id = r["id"].as<std::string>(), by = opt_string(r, "by").value_or(run::operator_identity()),
              note = opt_string(r, "note").value_or("");
  auto res = what == "ack" ? esc.ack(id, by, note) : esc.resolve(id, by, note);
  if (!res.what.changed) {
    std::cout << res.what.inc.id << " is "
              << (res.what.inc.state == incident::state::resolved ? "already resolved" : "already acknowledged")
              << "; nothing to do\n";
    return exit_codes::ok;
  }
  print_changes({res});
  return exit_codes::ok;
}

}  // namespace

int cmd_ack(std::vector<std::string> args) {
  return change_incident("ack", "Acknowledge an incident: someone is on it, the escalation stops climbing.", std::move(args));
}

int cmd_resolve(std::vector<std::string> args) {
  return change_incident("resolve", "Resolve an incident. Resolving a resolved incident does nothing (not an error).",
                         std::move(args));
}

}  // namespace rb::cli
