// Secrets never shown: `run --json`, JSON keys in the audit log and `log --json`, load-time
// print and errors (`run`, `show`, `check`, `list`), descriptions, shell output tails, errors
// from PostgreSQL, and a --dsn password in the process's command line.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <iterator>
#include <sstream>

#include "engine/util/secrets.hpp"
#include "tests/support/cli.hpp"
#include "tests/support/pg_fixture.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using rb::testing::cli_sandbox;
using rb::testing::read_file;
using rb::testing::temp_dir;

const std::string k_password = "hunter2-s3cret-pw";
const std::map<std::string, std::string> k_env{{"APP_PW", k_password}};

bool holds(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// ---- the redaction primitives ------------------------------------------------------------------

TEST(Redaction, AStreamCatchesASecretSplitAcrossWrites) {
  rb::secrets::add("split-secret-value");
  std::ostringstream sink;
  {
    rb::secrets::redacting_buf buf(sink.rdbuf());
    std::ostream out(&buf);
    out << "a split-se" << std::flush;
    EXPECT_EQ(sink.str(), "a ") << "the possible start of a secret is held back";
    out << "cret-value b" << std::flush;
    EXPECT_EQ(sink.str(), "a *** b");
    out << " split-s";
  }
  EXPECT_EQ(sink.str(), "a *** b split-s") << "closing writes what was held back";
}

TEST(Redaction, JsonKeysAreRedactedAtAnyDepth) {
  rb::secrets::add("key-secret-value");
  auto j = nlohmann::json::parse(R"({"key-secret-value": 1, "***": 2, "a": [{"x key-secret-value": "key-secret-value"}]})");
  rb::secrets::redact(j);
  EXPECT_FALSE(holds(j.dump(), "key-secret-value")) << j.dump();
  EXPECT_EQ(j["***"], 2);
  EXPECT_EQ(j["*** (2)"], 1);
  EXPECT_EQ(j["a"][0]["x ***"], "***");
}

TEST(Redaction, ATailIsRedactedBeforeItIsCut) {
  rb::secrets::add("Tail-Secret-Tok-4471");
  std::string out = "Tail-Secret-Tok-4471" + std::string(10, 'x');
  EXPECT_EQ(rb::secrets::redact_tail(out, 18), "***" + std::string(10, 'x'));
  // A tail that was already cut elsewhere: its leading fragment of a secret is masked.
  EXPECT_EQ(rb::secrets::redact_tail("Tok-4471 then", 100, true), "*** then");
  EXPECT_EQ(rb::secrets::redact_tail("Tok-4471 then", 100, false), "Tok-4471 then");
}

TEST(Secrets, RunJsonRedactsTheErrorMessage) {
  temp_dir dir{"rb-secret-json"};
  dir.write("runbooks/ops/leaky.lua", R"lua(runbook "ops.leaky" {
    step "fail" { run = function(ctx) error("failing with " .. secret "APP_PW") end },
  })lua");
  cli_sandbox cli(dir.path());
  auto r = cli.run({"run", "ops.leaky", "--json"}, k_env);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_FALSE(holds(r.out, k_password)) << r.out;
  EXPECT_FALSE(holds(r.err, k_password)) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(holds(j["error"]["message"].get<std::string>(), "failing with ***")) << r.out;
}

TEST(Secrets, JsonKeysAreRedactedInTheAuditLogAndLogJson) {
  temp_dir dir{"rb-secret-keys"};
  dir.write("runbooks/ops/keys.lua", R"lua(runbook "ops.keys" {
    step "keys" { run = function(ctx)
      local pw = secret "APP_PW"
      audit.note("n", { [pw] = "v", nested = { [pw .. "-suffix"] = 1 } })
      return { [pw] = true }
    end },
  })lua");
  cli_sandbox cli(dir.path());
  auto r = cli.run({"run", "ops.keys", "--json"}, k_env);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  std::string run_id = cli.events("run.start").at(0)["run"];
  auto log_json = cli.run({"log", run_id, "--json"});
  auto log_text = cli.run({"log", run_id});
  std::string audit = read_file(cli.audit_log());
  for (const auto* text : {&r.out, &r.err, &log_json.out, &log_text.out, &audit})
    EXPECT_FALSE(holds(*text, k_password)) << *text;
  auto note = cli.events("note").at(0);
  EXPECT_TRUE(note["fields"].contains("***")) << note.dump();
  EXPECT_TRUE(note["fields"]["nested"].contains("***-suffix")) << note.dump();
  auto end = cli.events("step.end", "keys").at(0);
  EXPECT_EQ(end["result"]["***"], true) << end.dump();
  EXPECT_EQ(cli.run({"audit", "verify"}).exit_code, 0);
}

TEST(Secrets, LoadTimePrintIsRedactedForRunAndShow) {
  temp_dir dir{"rb-secret-print"};
  dir.write("runbooks/ops/loud.lua", R"lua(print("loading with " .. secret "APP_PW")
  runbook "ops.loud" { step "s" { run = function(ctx) end } })lua");
  cli_sandbox cli(dir.path());
  auto run = cli.run({"run", "ops.loud"}, k_env);
  auto show = cli.run({"show", "ops.loud"}, k_env);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(show.exit_code, 0) << show.err;
  for (const auto* text : {&run.out, &run.err, &show.out, &show.err}) EXPECT_FALSE(holds(*text, k_password)) << *text;
  EXPECT_TRUE(holds(run.err, "loading with ***")) << run.err;
  EXPECT_TRUE(holds(show.err, "loading with ***")) << show.err;
}

TEST(Secrets, LoadTimeErrorsAreRedactedInCheckListShowAndRun) {
  temp_dir dir{"rb-secret-loaderr"};
  dir.write("runbooks/ops/broken.lua", R"lua(error("cannot load with " .. secret "APP_PW")
  runbook "ops.broken" { step "s" { run = function(ctx) end } })lua");
  cli_sandbox cli(dir.path());
  auto check = cli.run({"check"}, k_env);
  auto list = cli.run({"list", "--json"}, k_env);
  auto list_text = cli.run({"list"}, k_env);
  auto show = cli.run({"show", "ops.broken"}, k_env);
  auto run = cli.run({"run", "ops.broken"}, k_env);
  EXPECT_EQ(check.exit_code, 2);
  for (const auto* r : {&check, &list, &list_text, &show, &run}) {
    EXPECT_FALSE(holds(r->out, k_password)) << r->out;
    EXPECT_FALSE(holds(r->err, k_password)) << r->err;
  }
  EXPECT_TRUE(holds(check.out, "cannot load with ***")) << check.out;
  auto j = nlohmann::json::parse(list.out);
  EXPECT_TRUE(holds(j.at(0)["error"].get<std::string>(), "cannot load with ***")) << list.out;
}

TEST(Secrets, ShowRedactsADescriptionBuiltFromASecret) {
  temp_dir dir{"rb-secret-show"};
  dir.write("runbooks/ops/described.lua", R"lua(local pw = secret "APP_PW"
  runbook "ops.described" {
    title = "title " .. pw, description = "connects with " .. pw,
    params = { p = { type = "string", default = pw, doc = "doc " .. pw } },
    phase ("phase " .. pw) { description = "phase text " .. pw,
      step ("step " .. pw) { description = "step text " .. pw, confirm = "confirm " .. pw, run = function(ctx) end } },
  })lua");
  cli_sandbox cli(dir.path());
  auto text = cli.run({"show", "ops.described"}, k_env);
  auto json = cli.run({"show", "ops.described", "--format", "json"}, k_env);
  auto list = cli.run({"list", "--json"}, k_env);
  auto dry = cli.run({"run", "ops.described", "--dry-run"}, k_env);
  for (const auto* r : {&text, &json, &list, &dry}) {
    EXPECT_EQ(r->exit_code, 0) << r->err;
    EXPECT_FALSE(holds(r->out, k_password)) << r->out;
    EXPECT_FALSE(holds(r->err, k_password)) << r->err;
  }
  EXPECT_TRUE(holds(text.out, "connects with ***")) << text.out;
  EXPECT_EQ(nlohmann::json::parse(json.out)["description"], "connects with ***") << json.out;
}

TEST(Secrets, AShellOutputTailIsRedactedBeforeItIsCut) {
  temp_dir dir{"rb-secret-tail"};
  // The secret ends 2040 bytes before the end of stdout: a 2048-byte tail cut first keeps
  // its last 8 bytes, "Tok-4471", which redaction of the tail alone no longer recognises.
  dir.write("runbooks/ops/tail.lua", R"lua(runbook "ops.tail" {
    step "out" { run = function(ctx)
      shell.run{ "/bin/sh", "-c", 'printf "%s" "$TOKEN"; head -c 2040 /dev/zero | tr "\\0" x',
                 env = { TOKEN = secret "TAIL_TOKEN" } }
    end },
    step "err" { run = function(ctx)
      shell.run{ "/bin/sh", "-c", 'printf "%s" "$TOKEN" >&2; head -c 492 /dev/zero | tr "\\0" y >&2; exit 3',
                 env = { TOKEN = secret "TAIL_TOKEN" }, check = true }
    end },
  })lua");
  cli_sandbox cli(dir.path());
  auto r = cli.run({"run", "ops.tail", "--json"}, {{"TAIL_TOKEN", "Secret-Tok-4471"}});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  std::string audit = read_file(cli.audit_log());
  for (const auto* text : {&r.out, &r.err, &audit}) EXPECT_FALSE(holds(*text, "Tok-4471")) << *text;
  auto shells = cli.events("shell");
  ASSERT_EQ(shells.size(), 2u);
  EXPECT_EQ(shells[0]["stdout_bytes"], 2055);
  EXPECT_TRUE(holds(shells[0]["stdout_tail"].get<std::string>(), "xxxx"));
  EXPECT_TRUE(holds(nlohmann::json::parse(r.out)["error"]["message"].get<std::string>(), "exited with code 3")) << r.out;
}

TEST(Secrets, ErrorsFromPostgresqlAreRedactedInJsonOutput) {
  temp_dir dir{"rb-secret-pg"};
  dir.write("runbooks/ops/pg.lua", R"lua(runbook "ops.pg" {
    step "twice" { run = function(ctx)
      ctx.db:exec("create table tokens(token text primary key)")
      ctx.db:exec("insert into tokens values ($1)", secret "APP_PW")
      ctx.db:exec("insert into tokens values ($1)", secret "APP_PW")  -- DETAIL: Key (token)=(...) already exists
    end },
  })lua");
  cli_sandbox cli(dir.path());
  std::string dsn = rb::testing::fresh_database("secret_pg");
  auto env = k_env;
  env["RUNBOOK_DSN"] = dsn;
  auto r = cli.run({"run", "ops.pg", "--json"}, env);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  auto run_id = cli.events("run.start").at(0)["run"].get<std::string>();
  auto log_json = cli.run({"log", run_id, "--json"});
  std::string audit = read_file(cli.audit_log());
  for (const auto* text : {&r.out, &r.err, &log_json.out, &audit}) EXPECT_FALSE(holds(*text, k_password)) << *text;
  EXPECT_TRUE(holds(r.out, "already exists")) << r.out;
  auto text = cli.run({"run", "ops.pg"}, env);
  EXPECT_FALSE(holds(text.out, k_password)) << text.out;
  EXPECT_TRUE(holds(text.out, "already exists")) << text.out;
}

std::string cmdline_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(Secrets, ADsnPasswordIsNotInTheProcessCommandLine) {
  temp_dir dir{"rb-secret-cmdline"};
  dir.write("runbooks/ops/sleepy.lua", R"lua(runbook "ops.sleepy" {
    step "sleep" { run = function(ctx) ctx.db:exec("select pg_sleep(60)") end },
  })lua");
  cli_sandbox cli(dir.path());
  std::string dsn = rb::testing::fresh_database("secret_cmdline") + " password=" + k_password;
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"run", "ops.sleepy", "--dsn", dsn},
        std::vector<std::string>{"run", "ops.sleepy", "--dsn=" + dsn}}) {
    std::size_t before = cli.events("step.start", "sleep").size();
    pid_t pid = cli.spawn(args);
    bool started = false;
    for (int i = 0; i < 1000 && !started; ++i) {
      started = cli.events("step.start", "sleep").size() > before;
      if (!started) ::usleep(20'000);
    }
    ASSERT_TRUE(started);
    std::string cmdline = cmdline_of(pid);
    ::kill(pid, SIGINT);  // cancels the pg_sleep
    int st = 0;
    ::waitpid(pid, &st, 0);
    EXPECT_TRUE(holds(cmdline, "--dsn")) << "the command line was not read";
    EXPECT_TRUE(holds(cmdline, "dbname=")) << cmdline;
    EXPECT_FALSE(holds(cmdline, k_password)) << cmdline;
  }
}

}  // namespace
