// `runbook audit verify | head`: check the audit log's hash chain, or print its head to keep.
#include <iostream>

#include "bindings/cli/commands.hpp"
#include "bindings/cli/options.hpp"
#include "engine/audit/log.hpp"
#include "engine/error.hpp"

namespace rb::cli {
namespace fs = std::filesystem;

int cmd_audit(std::vector<std::string> args) {
  command_parser p("audit",
                   "Check the audit log, or print its head to keep elsewhere:\n"
                   "  runbook audit verify [FILE] [--head SEQ:HASH]   check the hash chain (and the anchor)\n"
                   "  runbook audit head [FILE] [--json]              print the last record's SEQ:HASH",
                   std::move(args));
  p.options.add_options()("action", "verify or head", cxxopts::value<std::string>())(
      "file", "audit log file", cxxopts::value<std::string>())(
      "head", "verify: an anchor SEQ:HASH from 'runbook audit head'; the log must hold that record",
      cxxopts::value<std::string>())("json", "head: print JSON");
  p.options.parse_positional({"action", "file"});
  p.options.positional_help("verify|head [FILE]");
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  std::string action = r.count("action") ? r["action"].as<std::string>() : "";
  if (action != "verify" && action != "head")
    throw error(error_kind::usage, "usage: runbook audit verify [FILE] [--head SEQ:HASH] | runbook audit head [FILE] [--json]");
  if (action == "head" && r.count("head")) throw error(error_kind::usage, "--head goes with 'runbook audit verify'");
  std::optional<audit::anchor> anchor;
  if (r.count("head")) anchor = audit::parse_anchor(r["head"].as<std::string>());
  fs::path file = r.count("file") ? fs::path(r["file"].as<std::string>()) : audit_file(r);
  auto v = audit::verify(file, audit::key_from_env(), anchor);
  if (!v.ok) {
    std::cout << "audit log " << file.string() << ": BROKEN at record on line " << v.bad_line << ": " << v.problem
              << " (" << v.records << " records before it are intact)\n";
    return exit_codes::failed;
  }
  if (action == "head") {
    // Only a verified head is worth keeping: it vouches for every record up to it.
    if (r.count("json")) print_json({{"file", file.string()}, {"seq", v.records}, {"hash", v.last_hash}});
    else std::cout << v.records << ":" << v.last_hash << "\n";
    return 0;
  }
  std::cout << "audit log " << file.string() << ": " << v.records << " records, chain intact"
            << (anchor ? ", record " + std::to_string(anchor->seq) + " matches the anchor" : "") << "\n";
  return 0;
}

}  // namespace rb::cli
