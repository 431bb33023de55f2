// A test base that runs runbooks from Lua source through the real executor.
#include "tests/support/runbook_test.hpp"

#include "bindings/loader.hpp"
#include "bindings/open_all.hpp"
#include "engine/run/target.hpp"

namespace rb::testing {

run::run_outcome RunbookTest::run(const std::string& source, nlohmann::json params, std::size_t memory) {
  auto file = dir.write("runbooks/t.lua", source);
  book = {};  // its steps hold references into the old sandbox: drop them first
  lua::sandbox_options o;
  o.memory_limit = memory;
  o.module_path.push_back(lua::stdlib_dir());
  sb = std::make_unique<lua::sandbox>(o);
  lua::open_all(*sb);
  book = lua::load_runbook(*sb, file, "t");
  log = std::make_unique<audit::log>(dir.path() / "audit.jsonl");
  std::optional<run::resolved_target> target;
  if (!dsn.empty()) {
    run::resolved_target t;
    t.name = "test";
    t.dsn = dsn;
    t.lock_timeout = std::chrono::seconds(5);
    t.settings = target_settings;
    target = t;
  }
  run::target_session session(target);
  run::executor exec(*log, out, clk, confirm);
  exec.use_target(session);
  run::run_options opts;
  opts.params = params;
  opts.yes = true;
  return exec.run(book, opts);
}

std::vector<nlohmann::json> RunbookTest::records(const std::string& event) {
  std::vector<nlohmann::json> r;
  audit::for_each_record(log->path(), [&](const nlohmann::json& rec) {
    if (rec["event"] == event) r.push_back(rec);
  });
  return r;
}

std::vector<std::string> RunbookTest::logged() {
  std::vector<std::string> m;
  for (auto& r : records("log")) m.push_back(r["message"]);
  return m;
}

}  // namespace rb::testing
