// `runbook history | log`: past runs and how they ended, and every audit record of one run.
#include <cctype>
#include <iostream>

#include "bindings/cli/commands.hpp"
#include "bindings/cli/options.hpp"
#include "engine/error.hpp"
#include "engine/run/journal.hpp"
#include "engine/run/liveness.hpp"
#include "engine/util/duration.hpp"
#include "engine/util/json_text.hpp"
#include "engine/util/text.hpp"

namespace rb::cli {

int cmd_history(std::vector<std::string> args) {
  command_parser p("history", "List past runs, oldest first.", std::move(args));
  p.options.add_options()("json", "print JSON (fields in docs/json.md)")("name", "only runs of this runbook", cxxopts::value<std::string>());
  p.options.parse_positional({"name"});
  p.options.positional_help("[NAME]");
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  auto runs = run::history(audit_file(r), opt_string(r, "name"));
  for (auto& s : runs) {
    if (s.status == "running" && run::process_owner_state(s.host, s.pid) == run::owner_state::gone)
      s.status = "interrupted";
  }
  if (r.count("json")) {
    json out = json::array();
    for (const auto& s : runs)
      out.push_back({{"run", s.run_id}, {"runbook", s.runbook}, {"status", s.status}, {"started", s.started},
                     {"ended", s.ended}, {"operator", s.op}, {"reason", s.reason}, {"resumes", s.resumes},
                     {"failed_steps", s.continued}});
    for (std::size_t i = 0; i < runs.size(); ++i)
      if (!runs[i].skip_reason.empty()) out[i]["skip_reason"] = runs[i].skip_reason;
    print_json(out, 2);
    return 0;
  }
  if (runs.empty()) {
    std::cout << "no runs recorded in " << audit_file(r).string() << "\n";
    return 0;
  }
  std::cout << pad("RUN", 24) << pad("RUNBOOK", 30) << pad("STATUS", 25) << pad("STARTED", 26) << "OPERATOR\n";
  for (const auto& s : runs) {
    std::cout << pad(s.run_id, 24) << pad(s.runbook, 30) << pad(s.status, 25) << pad(s.started, 26) << s.op
              << (s.reason.empty() ? "" : "  (" + s.reason + ")") << "\n";
    if (!s.continued.empty()) std::cout << "  failed steps: " << join(s.continued, ", ") << "\n";
    if (!s.skip_reason.empty()) std::cout << "  skipped: " << s.skip_reason << "\n";
  }
  return 0;
}

int cmd_log(std::vector<std::string> args) {
  command_parser p("log", "Show every audit record of one run.", std::move(args));
  p.options.add_options()("json", "print the raw JSON records, one a line (fields in docs/json.md)")("run", "run id (or a unique prefix)",
                                                                  cxxopts::value<std::string>());
  p.options.parse_positional({"run"});
  p.options.positional_help("RUN");
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  if (!r.count("run")) throw error(error_kind::usage, "log needs a run id: runbook log RUN (see 'runbook history')");
  auto state = run::load_run(audit_file(r), r["run"].as<std::string>());
  for (const auto& rec : state.records) {
    if (r.count("json")) {
      print_json(rec);
      continue;
    }
    std::string ev = rec.value("event", "");
    std::cout << rec.value("ts", "") << "  " << pad(ev, 15);
    std::string where = run::text_field(rec, "phase");
    if (rec.contains("step")) where += "/" + run::text_field(rec, "step");
    if (!where.empty()) std::cout << pad(where, 28);
    if (ev == "run.start")
      std::cout << rec.value("runbook", "") << " by " << rec.value("operator", "") << " params " << json_text(rec["params"])
                << (rec.value("reason", "").empty() ? "" : " reason: " + rec.value("reason", ""));
    if (ev == "sql") {
      std::string text;
      for (char c : rec.value("sql", "")) {
        if (std::isspace(static_cast<unsigned char>(c))) {
          if (!text.empty() && text.back() != ' ') text += ' ';
        } else {
          text += c;
        }
      }
      if (text.size() > 72) text = text.substr(0, 69) + "...";
      std::cout << text << "  [" << rec.value("params", 0) << " params, " << rec.value("rows", 0LL) << " rows"
                << (rec.contains("sqlstate") ? ", SQLSTATE " + rec.value("sqlstate", "") : "") << "]";
    }
    if (ev == "verify") std::cout << (rec.value("ok", false) ? "ok" : "failed");
    if (ev == "guard" && rec.contains("ok"))
      std::cout << rec.value("scope", "") << " guard " << rec.value("index", 0) << " of " << rec.value("of", 0) << ": "
                << (rec["ok"].is_boolean() ? (rec["ok"].get<bool>() ? "yes" : "no: " + rec.value("reason", "")) : "raised");
    if (ev == "checklist.item") {
      std::cout << rec.value("outcome", "");
      if (rec.contains("detail")) std::cout << ": " << (rec["detail"].is_string() ? rec.value("detail", "") : rec["detail"].dump());
    }
    if (ev == "checklist.end")
      std::cout << rec.value("passed", 0) << " passed, " << rec.value("failed", 0) << " failed, " << rec.value("confirmed", 0)
                << " confirmed, " << rec.value("unconfirmed", 0) << " unconfirmed";
    if (rec.contains("status")) std::cout << rec.value("status", "");
    if (rec.contains("attempt") && rec.value("attempt", 1) > 1) std::cout << " attempt " << rec.value("attempt", 1);
    if (rec.contains("duration_ms")) std::cout << " (" << format_duration(std::chrono::milliseconds(rec.value("duration_ms", 0LL))) << ")";
    if (rec.contains("skip_reason")) std::cout << " (" << rec.value("skip_reason", "") << ")";
    if (rec.contains("reason") && ev != "run.start" && ev != "guard") std::cout << " " << rec.value("reason", "");
    if (rec.contains("message")) std::cout << rec.value("message", "");
    if (rec.contains("answer")) std::cout << rec.value("answer", "") << " (by " << rec.value("by", "") << ")";
    if (rec.contains("error") && rec["error"].is_object()) std::cout << "  error: " << rec["error"].value("message", "");
    std::cout << "\n";
  }
  return 0;
}

}  // namespace rb::cli
