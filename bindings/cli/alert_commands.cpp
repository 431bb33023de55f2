// `runbook alert test CHANNEL`: sends a test notification and prints what the receiver answered;
// and run_alerts, the dispatcher of a run started from the command line.
#include "bindings/cli/alert_commands.hpp"
#include "bindings/cli/options.hpp"

#include <unistd.h>

#include <cxxopts.hpp>
#include <iostream>

#include "bindings/config.hpp"
#include "bindings/open_all.hpp"
#include "engine/error.hpp"
#include "engine/run/state.hpp"
#include "engine/util/duration.hpp"
#include "engine/util/hash.hpp"
#include "engine/util/secrets.hpp"
#include "engine/util/text.hpp"

namespace rb::cli {
namespace fs = std::filesystem;

int cmd_alert(std::vector<std::string> args) {
  command_parser p("alert", "Send a test notification to a configured channel and print what the receiver answered. "
                            "Exit 0 when it was delivered.",
                   std::move(args));
  p.options.add_options()("config", "config file (default: ./runbook.lua)", cxxopts::value<std::string>())(
      "severity", "severity of the test notification (default: info)", cxxopts::value<std::string>())(
      "summary", "its summary", cxxopts::value<std::string>())(
      "action", "test", cxxopts::value<std::string>())("channel", "channel name", cxxopts::value<std::string>());
  p.options.parse_positional({"action", "channel"});
  p.options.positional_help("test CHANNEL");
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  if (!r.count("action") || r["action"].as<std::string>() != "test" || !r.count("channel"))
    throw error(error_kind::usage, "usage: runbook alert test CHANNEL");
  std::string name = r["channel"].as<std::string>();
  auto sb = lua::make_sandbox({});
  run::config cfg = lua::load_config(*sb, config_file(r));
  if (!cfg.channels.count(name)) {
    std::vector<std::string> known;
    for (const auto& [n, c] : cfg.channels) known.push_back(n);
    throw error(error_kind::usage, "no alert channel '" + name + "'" + did_you_mean(name, known) +
                                       (known.empty() ? "; the config has no channels" : "; channels: " + join(known, ", ")));
  }
  audit::log log(audit_file(r), audit::key_from_env());
  system_clock clk;
  alert::dispatcher_options opts;
  opts.print = [](const std::string& line) { std::cout << line << "\n"; };
  alert::dispatcher d(cfg.channels, log, clk, std::move(opts));
  alert::notification n;
  n.severity = r.count("severity") ? r["severity"].as<std::string>() : alert::severity::info;
  if (alert::severity_rank(n.severity) < 0)
    throw error(error_kind::usage, "--severity '" + n.severity + "' is not one of critical, error, warning, info");
  n.summary = r.count("summary") ? r["summary"].as<std::string>() : "runbook test notification to channel '" + name + "'";
  n.run_id = "alert-test-" + compact_utc_now() + "-" + random_hex(3);
  n.runbook = "alert.test";
  n.details = {{"test", true}, {"host", run::host_name()}};
  n.dedup = n.run_id;
  std::string id = d.send(name, n);
  d.drain(cfg.alert_wait);
  auto res = d.result(id);
  const auto& ch = cfg.channels.at(name);
  std::cout << "channel " << name << " (" << alert::to_string(ch.type) << "), delivery " << id << "\n";
  if (!res) {
    std::cout << "not delivered\n";
    return exit_codes::failed;
  }
  if (res->skipped) {
    std::cout << "not sent: severity " << n.severity << " is below the channel's min_severity " << ch.min_severity << "\n";
    return exit_codes::failed;
  }
  if (res->status) std::cout << "answer: " << res->status << "\n";
  if (!res->body.empty()) std::cout << "body: " << secrets::redact(bounded_text(valid_utf8(res->body), 2000)) << "\n";
  std::cout << "attempts: " << res->attempts << ", " << res->duration.count() << " ms\n";
  if (res->delivered) {
    std::cout << "delivered\n";
    return exit_codes::ok;
  }
  std::cout << "not delivered: " << secrets::redact(res->reason) << "\n";
  return exit_codes::failed;
}

}  // namespace rb::cli
