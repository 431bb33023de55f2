// The run session, the rehearsal and run liveness, driven from C++ with no Lua: step bodies and
// a fingerprinter written in C++, a real throwaway PostgreSQL, a real audit log.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "engine/db/sweeper.hpp"
#include "engine/run/context.hpp"
#include "engine/run/journal.hpp"
#include "engine/run/liveness.hpp"
#include "engine/run/rehearsal.hpp"
#include "engine/run/session.hpp"
#include "engine/run/state.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using namespace rb;
using nlohmann::json;

/// A step whose run and rollback are SQL statements on the run's target.
class sql_step final : public run::step_body {
 public:
  sql_step(std::string run_sql, std::string rollback_sql) : m_run(std::move(run_sql)), m_rollback(std::move(rollback_sql)) {}
  run::call_result run(const run::step_call& call) override { return exec(call, m_run); }
  run::call_result verify(const run::step_call&) override { return {}; }
  run::call_result rollback(const run::step_call& call) override { return exec(call, m_rollback); }
  run::call_result when(const run::step_call&) override { return {std::nullopt, true}; }

 private:
  static run::call_result exec(const run::step_call& call, const std::string& sql) {
    run::call_result r;
    try {
      if (!sql.empty()) call.ctx->database().exec(sql);
    } catch (const std::exception& e) {
      r.error = run::step_error_from(e);
    }
    return r;
  }
  std::string m_run, m_rollback;
};

/// Fingerprints as the sorted list of the public schema's tables.
class table_list final : public run::fingerprinter {
 public:
  int take(run::run_context& ctx, const run::fingerprint_options&) override {
    auto res = ctx.database().exec(
        "select coalesce(string_agg(tablename, ',' order by tablename), '') from pg_tables where schemaname = 'public'");
    m_prints.push_back(res.rows.at(0).at(0).text);
    return static_cast<int>(m_prints.size() - 1);
  }
  std::vector<std::string> diff(run::run_context&, int a, int b) override {
    if (m_prints.at(a) == m_prints.at(b)) return {};
    return {"tables were " + m_prints.at(a) + ", now " + m_prints.at(b)};
  }
  std::string digest(int fp) override { return m_prints.at(fp); }

 private:
  std::vector<std::string> m_prints;
};

class null_confirmer final : public run::confirmer {
 public:
  bool interactive() const override { return false; }
  bool ask(const std::string&) override { return false; }
};

/// A one-step runbook (create a table; its rollback drops it) with a fixture of one table.
class Session : public ::testing::Test {
 protected:
  rb::testing::temp_dir dir{"rb-session"};
  run::runbook_def book;
  std::ostringstream output, status;
  run::reporter out{output, run::reporter_options{}};
  null_confirmer confirm;
  system_clock clk;

  void SetUp() override {
    book.name = "t.session";
    book.file = dir.write("runbooks/t/session.lua", "-- not read: the steps are C++\n");
    book.fixture = dir.write("runbooks/t/session.sql", "create table accounts (id int primary key);\n");
    run::phase_def ph;
    ph.name = "main";
    run::step_def st;
    st.name = "add audit table";
    st.has_rollback = true;
    st.body = std::make_shared<sql_step>("create table audit_trail (id int)", "drop table audit_trail");
    ph.steps.push_back(std::move(st));
    book.phases.push_back(std::move(ph));
  }
  std::filesystem::path audit_file() const { return dir.path() / "state" / "audit.jsonl"; }
  std::size_t sandboxes_of_this_process() const {
    std::size_t n = 0;
    for (const auto& s : db::list_sandboxes())
      if (s.owner_pid && *s.owner_pid == ::getpid()) ++n;
    return n;
  }
};

TEST_F(Session, RunsOnASandboxSeededFromTheFixtureAndRemovesIt) {
  std::size_t before = sandboxes_of_this_process();
  run::run_outcome o;
  {
    run::session_options so;
    so.audit_file = audit_file();
    so.database.sandbox = true;
    so.status = &status;
    run::session s(book, run::config{}, so, out, confirm, clk);
    o = s.run(run::run_options{});
    EXPECT_EQ(s.target().get().exec("select count(*) from accounts").rows.at(0).at(0).text, "0");
    EXPECT_EQ(s.target().get().exec("select to_regclass('audit_trail') is not null").rows.at(0).at(0).text, "t");
  }
  EXPECT_EQ(o.status, "succeeded");
  EXPECT_NE(status.str().find("starting a sandbox PostgreSQL"), std::string::npos);
  EXPECT_NE(status.str().find("loading fixture"), std::string::npos);
  run::run_state st = run::load_run(audit_file(), o.run_id);
  ASSERT_TRUE(st.end.has_value());
  EXPECT_EQ(st.start.value("target", ""), "sandbox");
  EXPECT_EQ(sandboxes_of_this_process(), before);  // stopped and removed with the session
}

TEST_F(Session, ARehearsalWithAFaithfulRollbackRestoresTheCopy) {
  table_list fp;
  run::rehearsal_options ro;
  ro.audit_file = audit_file();
  ro.source.sandbox = true;
  auto res = run::rehearse(book, run::config{}, run::run_options{}, ro, fp, out, confirm, clk);
  EXPECT_EQ(res.forward.status, "succeeded");
  EXPECT_EQ(res.rollback, "rolled_back");
  EXPECT_TRUE(res.diff.empty());
  EXPECT_TRUE(res.ok);
  EXPECT_EQ(res.before_digest, "accounts");
  EXPECT_EQ(res.after_digest, "accounts");
  run::run_state st = run::load_run(audit_file(), res.forward.run_id);
  bool recorded = false;
  for (const auto& rec : st.records)
    if (rec.value("event", "") == "rehearsal") recorded = rec.value("restored", false);
  EXPECT_TRUE(recorded);
  EXPECT_TRUE(st.start.value("rehearsal", false));
}

TEST_F(Session, ARehearsalSaysWhatARollbackLeftBehind) {
  book.phases[0].steps[0].body = std::make_shared<sql_step>("create table audit_trail (id int)", "");
  table_list fp;
  run::rehearsal_options ro;
  ro.audit_file = audit_file();
  ro.source.sandbox = true;
  auto res = run::rehearse(book, run::config{}, run::run_options{}, ro, fp, out, confirm, clk);
  EXPECT_FALSE(res.ok);
  ASSERT_EQ(res.diff.size(), 1u);
  EXPECT_EQ(res.diff[0], "tables were accounts, now accounts,audit_trail");
}

TEST_F(Session, ARehearsalNeedsSomethingToClone) {
  table_list fp;
  run::rehearsal_options ro;
  ro.audit_file = audit_file();
  ro.source.sandbox = true;
  book.fixture.reset();
  try {
    run::rehearse(book, run::config{}, run::run_options{}, ro, fp, out, confirm, clk);
    FAIL() << "rehearsed without a fixture";
  } catch (const error& e) {
    EXPECT_EQ(e.kind(), error_kind::usage);
    EXPECT_NE(std::string(e.what()).find("has no fixture"), std::string::npos);
  }
}

run::run_state recorded(json start) {
  run::run_state st;
  st.run_id = "20261203T000000Z-abcdef";
  st.start = std::move(start);
  return st;
}

TEST(Continuation, UsesTheTargetTheRunUsedUnlessTheOperatorNamesOne) {
  auto st = recorded({{"target", "primary"}});
  EXPECT_EQ(run::continuation_choice(st, {}, "resume").target, "primary");
  run::database_choice flags;
  flags.target = "replica";
  EXPECT_EQ(run::continuation_choice(st, flags, "resume").target, "replica");
  // A run given --dsn recorded "dsn": the DSN is not in the journal, so nothing is assumed.
  EXPECT_FALSE(run::continuation_choice(recorded({{"target", "dsn"}}), {}, "resume").target);
}

TEST(Continuation, RefusesARunWhoseSandboxIsGoneUnlessADatabaseIsNamed) {
  auto st = recorded({{"target", "sandbox"}});
  try {
    run::continuation_choice(st, {}, "rollback");
    FAIL() << "continued a sandbox run with no database";
  } catch (const error& e) {
    EXPECT_EQ(e.kind(), error_kind::usage);
    EXPECT_NE(std::string(e.what()).find("rollback it with --dsn or --target"), std::string::npos);
  }
  run::database_choice flags;
  flags.dsn = "dbname=x";
  EXPECT_EQ(run::continuation_choice(st, flags, "rollback").dsn, "dbname=x");
}

TEST(Liveness, ADeadPidIsGone) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) ::_exit(0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);  // reaped: the pid names no process now
  EXPECT_EQ(run::process_owner_state(run::host_name(), pid), run::owner_state::gone);
}

/// Starts `argv` (argv[0] is what /proc/PID/cmdline shows first) as a child that sleeps.
pid_t spawn_sleeper(const char* shown_name) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sleep", shown_name, "30", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

bool execed(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string comm;
  return std::getline(in, comm) && comm == "sleep";
}

void stop(pid_t pid) {
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

TEST(Liveness, APidReusedByAnotherProgramIsGoneAndARunbookProcessIsAlive) {
  pid_t other = spawn_sleeper("sleep");
  pid_t runbook = spawn_sleeper("runbook");
  ASSERT_GT(other, 0);
  ASSERT_GT(runbook, 0);
  // Wait until exec has replaced both forked images (before, /proc shows the test binary).
  for (int i = 0; i < 1000 && !(execed(other) && execed(runbook)); ++i) ::usleep(10'000);
  EXPECT_EQ(run::process_owner_state(run::host_name(), runbook), run::owner_state::alive);
  EXPECT_EQ(run::process_owner_state(run::host_name(), other), run::owner_state::gone);
  // Another host's pid says nothing here; nor does a missing pid.
  EXPECT_EQ(run::process_owner_state("elsewhere.example", runbook), run::owner_state::unknown);
  EXPECT_EQ(run::process_owner_state(run::host_name(), 0), run::owner_state::unknown);
  // The latest run.resume owns the run.
  run::run_state st = recorded({{"host", run::host_name()}, {"pid", other}});
  st.records.push_back(json{{"event", "run.resume"}, {"pid", runbook}});
  EXPECT_EQ(run::owner_pid(st), runbook);
  EXPECT_EQ(run::run_owner_state(st), run::owner_state::alive);
  stop(runbook);
  EXPECT_EQ(run::run_owner_state(st), run::owner_state::gone);
  stop(other);
}

}  // namespace
