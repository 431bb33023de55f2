// Running the real runbook binary from tests.
#include "tests/support/cli.hpp"

#include "engine/audit/log.hpp"

namespace rb::testing {

cli_sandbox::cli_sandbox(const std::filesystem::path& dir) : m_dir(dir) {}

std::map<std::string, std::string> cli_sandbox::env() const {
  return {{"RUNBOOK_STATE_DIR", (m_dir / "state").string()},
          {"RUNBOOK_PATH", ""},
          {"RUNBOOK_STDLIB", std::string(RUNBOOK_SOURCE_DIR) + "/stdlib"},
          {"NO_COLOR", "1"}};
}

rb::shell::process_result cli_sandbox::run(const std::vector<std::string>& args,
                                           std::map<std::string, std::string> env,
                                           std::optional<std::string> stdin_data) const {
  rb::shell::process_options o;
  o.argv.push_back(RUNBOOK_BINARY);
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.cwd = m_dir;
  o.env = this->env();
  for (auto& [k, v] : env) o.env[k] = v;
  o.stdin_data = std::move(stdin_data);
  o.timeout = std::chrono::seconds(120);
  return rb::shell::run(o);
}

std::vector<nlohmann::json> cli_sandbox::records() const {
  std::vector<nlohmann::json> out;
  rb::audit::for_each_record(audit_log(), [&](const nlohmann::json& r) { out.push_back(r); });
  return out;
}

std::vector<nlohmann::json> cli_sandbox::events(const std::string& event, const std::string& step) const {
  std::vector<nlohmann::json> out;
  for (auto& r : records())
    if (r.value("event", "") == event && (step.empty() || r.value("step", "") == step)) out.push_back(r);
  return out;
}

}  // namespace rb::testing
