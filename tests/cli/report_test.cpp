// `runbook report`: a real run that retried a step, had a watch decide to roll back and opened an
// incident, rendered as HTML and looked at in headless Chromium (its DOM and a screenshot, kept in
// build/test-artifacts/report.png), as Markdown, with a secret kept out of both; an unknown run is
// a usage error that suggests the closest id; a broken audit chain is said to be broken.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <thread>

#include "engine/db/connection.hpp"
#include "engine/report/run_report.hpp"
#include "engine/shell/process.hpp"
#include "tests/support/cli.hpp"
#include "tests/support/pg_fixture.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using rb::testing::cli_sandbox;
using rb::testing::read_file;
using rb::testing::temp_dir;

constexpr const char* k_token = "Rpt-Secret-Token-93417";

/// Retries "load <orders>" once, then a watch sees `load` (rising by 1 every 100 ms) stay above 3
/// for 300 ms and rolls back: the rollback handlers of the first two steps run.
constexpr const char* k_book = R"lua(runbook "ops.report" {
  title = "Load orders & watch the load",
  phase "prepare" {
    step "create orders" {
      run = function(ctx) ctx.db:exec("create table orders (id int, note text)") end,
      rollback = function(ctx) ctx.db:exec("drop table orders") end,
    },
    step "load <orders>" {
      run = function(ctx)
        ctx.db:exec("insert into tries values (1)")
        if ctx.db:scalar("select count(*) from tries") < 2 then error("transient failure, try again") end
        ctx.db:exec([[insert into orders select g, 'order ' || g from generate_series(1, 10) g /* </code></pre><script>alert(1)</script> */]])
      end,
      retry = { attempts = 3, backoff = "fixed", initial = "50ms" },
      rollback = function(ctx) ctx.db:exec("delete from orders") end,
    },
    step "notify with token" {
      run = function(ctx)
        ctx.db:exec("select 1 /* token " .. secret "REPORT_TOKEN" .. " */")
        shell.run{ "echo", "token=" .. secret "REPORT_TOKEN" }
        ctx.log("used token " .. secret "REPORT_TOKEN")
        ctx.db:exec("insert into started values (clock_timestamp())")
      end,
    },
  },
  watch "after load" {
    every = "100ms", lasting = "20s",
    metrics = { load = [[select extract(epoch from clock_timestamp() - t) * 10 from started]] },
    trigger "overload" { when = "load > 3", sustained = "300ms", action = "rollback" },
  },
})lua";

class Report : public ::testing::Test {
 protected:
  temp_dir dir{"rb-report"};
  cli_sandbox cli{dir.path()};
  std::string dsn = rb::testing::fresh_database("report");
  std::map<std::string, std::string> env{{"RUNBOOK_DSN", dsn}, {"REPORT_TOKEN", k_token}};
  std::string run_id;

  void SetUp() override {
    rb::db::connection admin{{dsn, "test", "test"}};
    admin.exec("create table tries (n int)");
    admin.exec("create table started (t timestamptz)");
    dir.write("runbook.lua", R"lua(return {
      channels = { archive = { type = "file", path = ")lua" + (dir.path() / "alerts.jsonl").string() + R"lua(" } },
      escalation = { database = { levels = { { after = "0m", notify = { "archive" } } } } },
      default_escalation = "database",
    })lua");
    dir.write("runbooks/ops/report.lua", k_book);
  }

  /// Runs ops.report to its rollback and remembers its run id.
  void run_the_book() {
    auto r = cli.run({"run", "ops.report", "--yes", "--reason", "report test"}, env);
    ASSERT_EQ(r.exit_code, 1) << r.out << r.err;
    ASSERT_EQ(cli.events("run.end").at(0)["status"], "rolled_back");
    ASSERT_EQ(cli.events("step.retry", "load <orders>").size(), 1u);
    ASSERT_FALSE(cli.events("decision").empty());
    run_id = cli.events("run.start").at(0)["run"];
  }

  /// Runs headless Chromium with its profile, home and temporary files inside the test's
  /// directory; waits until none of its processes is left.
  rb::shell::process_result chromium(const std::vector<std::string>& args) {
    fs::path home = dir.path() / "chromium";
    fs::create_directories(home / "tmp");
    rb::shell::process_options o;
    o.argv = {"chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-breakpad",
              "--user-data-dir=" + (home / "profile").string()};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.env = {{"HOME", home.string()}, {"XDG_CONFIG_HOME", (home / "config").string()},
             {"XDG_CACHE_HOME", (home / "cache").string()}, {"TMPDIR", (home / "tmp").string()}};
    o.timeout = std::chrono::seconds(120);
    auto r = rb::shell::run(o);
    EXPECT_TRUE(no_process_mentions(home.string())) << "a chromium process outlived the test's command";
    return r;
  }

  /// True once no process's command line mentions `text` (waits up to 10 s).
  static bool no_process_mentions(const std::string& text) {
    for (int i = 0; i < 200; ++i) {
      bool found = false;
      for (const auto& e : fs::directory_iterator("/proc")) {
        std::ifstream in(e.path() / "cmdline", std::ios::binary);
        std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (cmd.find(text) != std::string::npos) found = true;
      }
      if (!found) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
};

std::size_t count(const std::string& text, const std::string& pattern) {
  std::regex re(pattern);
  return static_cast<std::size_t>(std::distance(std::sregex_iterator(text.begin(), text.end(), re), std::sregex_iterator()));
}

TEST_F(Report, HtmlOfARetriedWatchedRolledBackRunReadsRightInChromium) {
  ASSERT_NO_FATAL_FAILURE(run_the_book());
  fs::path page = dir.path() / "report.html";
  auto r = cli.run({"report", run_id, "-o", page.string()}, env);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::string html = read_file(page);
  EXPECT_EQ(html.find("http://"), std::string::npos) << "no external URL";
  EXPECT_EQ(html.find("https://"), std::string::npos) << "no external URL";
  EXPECT_EQ(html.find("<script"), std::string::npos) << "no script, and none injected by the SQL";

  auto dom = chromium({"--dump-dom", "file://" + page.string()});
  ASSERT_EQ(dom.exit_code, 0) << dom.err;
  const std::string& d = dom.out;
  // The header, the outcome and what ran.
  EXPECT_NE(d.find("ops.report"), std::string::npos);
  EXPECT_NE(d.find("Load orders &amp; watch the load"), std::string::npos);
  EXPECT_NE(d.find(">rolled_back<"), std::string::npos);
  EXPECT_NE(d.find(run_id), std::string::npos);
  EXPECT_NE(d.find("report test"), std::string::npos) << "the reason";
  EXPECT_NE(d.find("create orders"), std::string::npos);
  EXPECT_NE(d.find("load &lt;orders&gt;"), std::string::npos) << "the step name, as text";
  EXPECT_NE(d.find("notify with token"), std::string::npos);
  EXPECT_NE(d.find("insert into orders select g, 'order ' || g from generate_series(1, 10) g"), std::string::npos);
  EXPECT_NE(d.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos) << "markup in SQL stays text";
  EXPECT_EQ(count(d, "<script"), 0u);
  EXPECT_NE(d.find("transient failure, try again"), std::string::npos) << "the failed attempt's error";
  EXPECT_NE(d.find("load &gt; 3"), std::string::npos) << "the trigger's condition";
  EXPECT_NE(d.find("INC-"), std::string::npos) << "the incident the rollback opened";
  EXPECT_NE(d.find("archive"), std::string::npos) << "the notification's channel";
  EXPECT_NE(d.find("intact"), std::string::npos) << "the audit chain's verification";
  // The drawings: bars for steps, the retried attempt and both rollback handlers; the metric's
  // sparkline with its threshold and the decision.
  EXPECT_GE(count(d, R"(<rect class="step")"), 3u);
  EXPECT_EQ(count(d, R"(<rect class="step retry")"), 1u);
  EXPECT_EQ(count(d, R"(<rect class="rollback")"), 2u);
  EXPECT_EQ(count(d, R"(<svg class="sparkline")"), 1u);
  EXPECT_EQ(count(d, R"(<polyline class="metric" points="[0-9.]+,[0-9.]+ [0-9.]+,[0-9.]+)"), 1u) << "a line through several samples";
  EXPECT_EQ(count(d, R"(<line class="threshold")"), 1u);
  EXPECT_GE(count(d, R"(<polygon class="decision")"), 2u) << "on the timeline and on the sparkline";

  fs::path shot = dir.path() / "report.png";
  auto s = chromium({"--screenshot=" + shot.string(), "--window-size=1280,2000", "file://" + page.string()});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  ASSERT_TRUE(fs::exists(shot));
  std::string png = read_file(shot);
  ASSERT_GT(png.size(), 24u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  auto be32 = [&](std::size_t at) {
    return (static_cast<unsigned>(static_cast<unsigned char>(png[at])) << 24) | (static_cast<unsigned char>(png[at + 1]) << 16) |
           (static_cast<unsigned char>(png[at + 2]) << 8) | static_cast<unsigned char>(png[at + 3]);
  };
  EXPECT_EQ(be32(16), 1280u);
  EXPECT_EQ(be32(20), 2000u);
  EXPECT_GT(png.size(), 40000u) << "a page with text and drawings, not a blank one";
  fs::path artifacts = fs::path(RUNBOOK_BINARY).parent_path() / "test-artifacts";
  fs::create_directories(artifacts);
  fs::copy_file(shot, artifacts / "report.png", fs::copy_options::overwrite_existing);
  fs::copy_file(page, artifacts / "report.html", fs::copy_options::overwrite_existing);
}

TEST_F(Report, MarkdownHasTheSameContentForAPostmortem) {
  ASSERT_NO_FATAL_FAILURE(run_the_book());
  auto r = cli.run({"report", run_id.substr(0, 20), "--format", "md"}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string& md = r.out;
  EXPECT_EQ(md.rfind("# Run report: ops.report\n", 0), 0u) << md;
  EXPECT_NE(md.find("| Outcome | **rolled_back** at after load |"), std::string::npos) << md;
  EXPECT_NE(md.find("| Reason | report test |"), std::string::npos) << md;
  EXPECT_NE(md.find("| | load \\<orders\\> |"), std::string::npos) << "the step in the timeline table\n" << md;
  EXPECT_NE(md.find("| **after load** (watch) |"), std::string::npos) << md;
  EXPECT_NE(md.find("- attempt 1 failed (transient failure, try again), retried after 50ms"), std::string::npos) << md;
  EXPECT_NE(md.find("```sql\ninsert into orders select g, 'order ' || g from generate_series(1, 10) g"), std::string::npos) << md;
  EXPECT_NE(md.find("```sql\ndrop table orders\n```"), std::string::npos) << "the rollback handler's SQL\n" << md;
  EXPECT_NE(md.find("| overload | `load > 3` | rollback |"), std::string::npos) << md;
  EXPECT_NE(md.find("| overload | fired | `load > 3` |"), std::string::npos) << md;
  EXPECT_NE(md.find("### Incident INC-"), std::string::npos) << md;
  EXPECT_NE(md.find("archive (file)"), std::string::npos) << md;
  EXPECT_NE(md.find("The hash chain of"), std::string::npos) << md;
  EXPECT_NE(md.find("generate_series(1, 10) g /* </code></pre><script>alert(1)</script> */\n```\n"), std::string::npos)
      << "markup in SQL is code, verbatim inside its block\n" << md;

  fs::path file = dir.path() / "postmortem.md";
  auto w = cli.run({"report", run_id, "-o", file.string()}, env);
  ASSERT_EQ(w.exit_code, 0) << w.err;
  EXPECT_EQ(read_file(file), md) << "-o FILE.md writes Markdown";
  EXPECT_EQ(w.out, "");
}

TEST_F(Report, ASecretFromTheEnvironmentAppearsInNeitherOutput) {
  ASSERT_NO_FATAL_FAILURE(run_the_book());
  auto html = cli.run({"report", run_id}, env);
  auto md = cli.run({"report", run_id, "--format", "md"}, env);
  fs::path file = dir.path() / "r.html";
  auto to_file = cli.run({"report", run_id, "--format", "html", "-o", file.string()}, env);
  ASSERT_EQ(html.exit_code, 0) << html.err;
  ASSERT_EQ(md.exit_code, 0) << md.err;
  ASSERT_EQ(to_file.exit_code, 0) << to_file.err;
  for (const std::string& out : {html.out, md.out, read_file(file), html.err, md.err, to_file.err})
    EXPECT_EQ(out.find(k_token), std::string::npos) << out;
  EXPECT_NE(html.out.find("token=***"), std::string::npos) << "the command is shown, redacted";
  EXPECT_NE(md.out.find("select 1 /* token *** */"), std::string::npos) << md.out;
  EXPECT_NE(md.out.find("log: used token \\*\\*\\*"), std::string::npos) << md.out;
}

TEST_F(Report, AnUnknownRunIsAUsageErrorThatSuggestsTheClosestId) {
  dir.write("runbooks/demo/quick.lua", R"lua(runbook "demo.quick" { step "hi" { run = function(ctx) end } })lua");
  ASSERT_EQ(cli.run({"run", "demo.quick"}).exit_code, 0);
  std::string id = cli.events("run.start").at(0)["run"];
  std::string typo = id;
  typo.back() = typo.back() == '0' ? '1' : '0';
  auto r = cli.run({"report", typo});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no run '" + typo + "'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("did you mean '" + id + "'?"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  auto no_run = cli.run({"report"});
  EXPECT_EQ(no_run.exit_code, 2);
  auto bad_format = cli.run({"report", id, "--format", "pdf"});
  EXPECT_EQ(bad_format.exit_code, 2);
  EXPECT_NE(bad_format.err.find("--format html or --format md"), std::string::npos) << bad_format.err;
}

TEST_F(Report, SaysWhenTheAuditChainIsBroken) {
  dir.write("runbooks/demo/quick.lua", R"lua(runbook "demo.quick" { step "hi" { run = function(ctx) end } })lua");
  ASSERT_EQ(cli.run({"run", "demo.quick"}).exit_code, 0);
  std::string id = cli.events("run.start").at(0)["run"];
  // Someone edits the step's end after the fact.
  std::string log = read_file(cli.audit_log());
  const std::string was = "\"status\":\"succeeded\"";
  std::size_t at = log.find(was);
  ASSERT_NE(at, std::string::npos);
  log.replace(at, was.size(), "\"status\":\"skipped\"");
  std::ofstream(cli.audit_log(), std::ios::trunc) << log;
  auto html = cli.run({"report", id});
  auto md = cli.run({"report", id, "--format", "md"});
  ASSERT_EQ(html.exit_code, 0) << html.err;
  EXPECT_NE(html.out.find("<span class=\"bad\">BROKEN</span> at line"), std::string::npos) << html.out;
  EXPECT_NE(md.out.find("| Audit chain | **BROKEN** at line"), std::string::npos) << md.out;
}

TEST(ReportThresholds, AreTheComparisonsOfAMetricWithAConstantWrittenEitherWay) {
  auto t = rb::report::thresholds_in("errors > 10 and (0.5 >= rate or rate == 2) and errors_total < 3", "rate");
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].op, "==");
  EXPECT_EQ(t[0].value, 2);
  EXPECT_EQ(t[1].op, "<=") << "0.5 >= rate is rate <= 0.5";
  EXPECT_EQ(t[1].value, 0.5);
  auto e = rb::report::thresholds_in("errors > 10 and errors_total < 3", "errors");
  ASSERT_EQ(e.size(), 1u) << "errors_total is another metric";
  EXPECT_EQ(e[0].value, 10);
  EXPECT_TRUE(rb::report::thresholds_in("constraint_missing", "constraint_missing").empty());
  EXPECT_TRUE(rb::report::thresholds_in("x2 > rate", "rate").empty()) << "two metrics compared";
}

}  // namespace
