// End to end through build/runbook: alert.send in a runbook reaches a real receiver, is audited,
// never shows a secret, never holds the run's end past alert_wait; `runbook alert test`.
#include <gtest/gtest.h>

#include <set>

#include "tests/support/cli.hpp"
#include "tests/support/receiver.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using rb::testing::cli_sandbox;
using rb::testing::read_file;
using rb::testing::receiver;
using rb::testing::temp_dir;
using json = nlohmann::json;

const std::string k_pd_key = "PDKEYsecret0123456789abcdefabcd";
const std::map<std::string, std::string> k_env{{"PD_KEY", k_pd_key}};

bool holds(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

struct AlertCli : ::testing::Test {
  temp_dir dir{"runbook-alert-cli"};
  cli_sandbox cli{dir.path()};

  void config(const std::string& hook_url, const std::string& pd_url, const std::string& extra = "") {
    dir.write("runbook.lua", "return {\n  channels = {\n    ops = { type = 'log' },\n"
                             "    hooks = { type = 'webhook', url = '" + hook_url + "' },\n"
                             "    oncall = { type = 'pagerduty', url = '" + pd_url + "', routing_key = secret 'PD_KEY' },\n"
                             "  },\n  default_channels = { 'ops' },\n" + extra + "}\n");
  }
  void runbook(const std::string& body) {
    dir.write("runbooks/ops/alerting.lua", "runbook \"ops.alerting\" {\n" + body + "\n}\n");
  }
};

TEST_F(AlertCli, ARunbooksAlertReachesTheReceiversAndIsAudited) {
  receiver hook(receiver::kind::http, dir.path());
  receiver pd(receiver::kind::http, dir.path(), {"--script", "202"});
  config(hook.url("/hook"), pd.url("/v2/enqueue"));
  runbook(R"lua(  step "page" { run = function(ctx)
    local ids = alert.send{ severity = "critical", summary = "lag too high", details = { lag = 45 },
                            channel = { "hooks", "oncall" }, dedup = "ops.lag" }
    ctx.log("deliveries " .. #ids)
    alert.send{ severity = "info", summary = "to the default channel" }
  end })lua");
  auto r = cli.run({"run", "ops.alerting"}, k_env);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(holds(r.out, "deliveries 2")) << r.out;
  EXPECT_TRUE(holds(r.out, "alert [info] to the default channel")) << "the log channel prints: " << r.out;
  ASSERT_EQ(hook.requests().size(), 1u) << "delivered before the run's process ended";
  ASSERT_EQ(pd.requests().size(), 1u);
  json b = json::parse(pd.requests()[0]["body"].get<std::string>());
  EXPECT_EQ(b["routing_key"], k_pd_key);
  EXPECT_EQ(b["dedup_key"], "ops.lag");
  EXPECT_EQ(b["payload"]["component"], "ops.alerting");
  auto sent = cli.events("alert.sent");
  ASSERT_EQ(sent.size(), 3u);
  std::set<std::string> channels;
  for (const auto& s : sent) channels.insert(s["channel"].get<std::string>());
  EXPECT_EQ(channels, (std::set<std::string>{"ops", "hooks", "oncall"}));
  std::string audit = read_file(cli.audit_log());
  EXPECT_FALSE(holds(audit, k_pd_key));
  EXPECT_FALSE(holds(audit, hook.url("/hook"))) << "the audit records channel names, not URLs";
  EXPECT_FALSE(holds(r.out + r.err, k_pd_key));
}

TEST_F(AlertCli, AFailedDeliveryNeverFailsTheRunAndIsReportedAtTheEnd) {
  receiver hook(receiver::kind::http, dir.path(), {"--script", "400"});
  config(hook.url("/hook"), hook.url("/pd"));
  runbook(R"lua(  step "page" { run = function(ctx) alert.send{ summary = "x", channel = "oncall" } end })lua");
  auto r = cli.run({"run", "ops.alerting"}, k_env);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(holds(r.out, "to channel 'oncall' was not delivered: HTTP 400")) << r.out;
  auto failed = cli.events("alert.failed");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0]["attempts"], 1);
}

TEST_F(AlertCli, AHangingReceiverDelaysTheRunsEndAtMostAlertWait) {
  receiver hook(receiver::kind::http, dir.path(), {"--script", "hang"});
  config(hook.url("/hook"), hook.url("/pd"), "  alert_wait = '1s',\n");
  runbook(R"lua(  step "page" { run = function(ctx) alert.send{ summary = "x", channel = "oncall" } end })lua");
  auto t0 = std::chrono::steady_clock::now();
  auto r = cli.run({"run", "ops.alerting"}, k_env);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_LT(took, std::chrono::seconds(4)) << "1s of alert_wait, not the 10s transfer timeout";
  EXPECT_TRUE(holds(r.out, "not delivered within alert_wait 1s")) << r.out;
  ASSERT_EQ(cli.events("alert.failed").size(), 1u);
  EXPECT_FALSE(holds(read_file(cli.audit_log()), k_pd_key));
}

TEST_F(AlertCli, AnUnknownChannelOrSeverityIsAUsageErrorNamingIt) {
  config("http://127.0.0.1:9/hook", "http://127.0.0.1:9/pd");
  runbook(R"lua(  step "page" { run = function(ctx) alert.send{ summary = "x", channel = "oncal" } end })lua");
  auto r = cli.run({"run", "ops.alerting"}, k_env);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(holds(r.out + r.err, "no alert channel 'oncal' (did you mean 'oncall'?)")) << r.out << r.err;
  runbook(R"lua(  step "page" { run = function(ctx) alert.send{ summary = "x", severity = "fatal" } end })lua");
  r = cli.run({"run", "ops.alerting"}, k_env);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(holds(r.out + r.err, "severity 'fatal' is not one of critical, error, warning, info"))
      << r.out << r.err;
}

TEST_F(AlertCli, AlertTestPrintsWhatTheReceiverAnswered) {
  receiver pd(receiver::kind::http, dir.path(), {"--script", "202"});
  config(pd.url("/hook"), pd.url("/v2/enqueue"));
  auto r = cli.run({"alert", "test", "oncall"}, k_env);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(holds(r.out, "answer: 202")) << r.out;
  EXPECT_TRUE(holds(r.out, "\"status\":\"success\"")) << r.out;
  EXPECT_TRUE(holds(r.out, "delivered")) << r.out;
  ASSERT_EQ(pd.requests().size(), 1u);
  EXPECT_EQ(json::parse(pd.requests()[0]["body"].get<std::string>())["payload"]["severity"], "info");
  EXPECT_EQ(cli.events("alert.sent").size(), 1u);
  EXPECT_FALSE(holds(r.out + r.err, k_pd_key));
}

TEST_F(AlertCli, AlertTestFailsWhenTheReceiverRefuses) {
  receiver pd(receiver::kind::http, dir.path(), {"--script", "400"});
  config(pd.url("/hook"), pd.url("/v2/enqueue"));
  auto r = cli.run({"alert", "test", "oncall"}, k_env);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(holds(r.out, "answer: 400")) << r.out;
  EXPECT_TRUE(holds(r.out, "invalid event")) << r.out;
  r = cli.run({"alert", "test", "nope"}, k_env);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(holds(r.err, "no alert channel 'nope'")) << r.err;
}

TEST_F(AlertCli, NoSecretAppearsInOutputAuditOrErrors) {
  std::string down;
  {
    receiver gone(receiver::kind::http, dir.path());
    down = gone.url("/services/T000/B000/slackSecretPath9911");
  }
  receiver mail(receiver::kind::smtp, dir.path());
  const std::string smtp_pw = "smtpSecretPw-5521";
  std::map<std::string, std::string> env = k_env;
  env["SLACK_URL"] = down;
  env["SMTP_PW"] = smtp_pw;
  dir.write("runbook.lua", "return {\n  channels = {\n"
                           "    team = { type = 'slack', webhook = secret 'SLACK_URL', attempts = 2 },\n"
                           "    oncall = { type = 'pagerduty', url = '" + down + "', routing_key = secret 'PD_KEY', attempts = 1 },\n"
                           "    dba = { type = 'email', smtp = '" + mail.url() + "', from = 'rb@example.com', to = 'dba@example.com',"
                           " user = 'rb', password = secret 'SMTP_PW' },\n"
                           "  },\n  alert_wait = '5s',\n}\n");
  runbook(R"lua(  step "page" { run = function(ctx)
    alert.send{ severity = "critical", summary = "paging everyone", channel = { "team", "oncall", "dba" } }
  end })lua");
  auto r = cli.run({"run", "ops.alerting", "--json"}, env);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(holds(r.err, "to channel 'team' was not delivered")) << r.err;
  ASSERT_EQ(mail.requests().size(), 1u);
  EXPECT_EQ(cli.events("alert.failed").size(), 2u);
  EXPECT_EQ(cli.events("alert.sent").size(), 1u);
  std::string run = json::parse(r.out)["run"];
  auto log = cli.run({"log", run, "--json"}, env);
  auto test = cli.run({"alert", "test", "team"}, env);
  EXPECT_EQ(test.exit_code, 1) << test.out << test.err;
  std::string everything = r.out + r.err + log.out + log.err + test.out + test.err + read_file(cli.audit_log());
  for (const std::string& secret : {down, std::string("slackSecretPath9911"), k_pd_key, smtp_pw})
    EXPECT_FALSE(holds(everything, secret)) << secret << " shown in:\n" << everything;
}

// ---- template.render from the run's context -------------------------------------------------

TEST_F(AlertCli, TheSeedsTemplatesRenderFromTheRunsContext) {
  receiver hook(receiver::kind::http, dir.path());
  config(hook.url("/hook"), hook.url("/pd"));
  dir.write("runbooks/ops/tpl_ok.lua", R"lua(local template = require "template"
runbook "ops.tpl_ok" {
  title = "Organizations Import Fix",
  step "done" { run = function(ctx)
    ctx.log(template.render(template.migration_success, { watch_hours = 24 }, ctx))
    ctx.log(template.render(template.recovery_completed, { affected = "All users", data_loss = "< 24 hours",
      recovery_summary = "- Users: 100% recovered", postmortem = "tomorrow 2 PM", oncall = "@technical-lead" }, ctx))
    local ok, err = pcall(template.render, template.critical_issue, { impact = "imports fail" }, ctx)
    ctx.log("refused: " .. tostring(err.message))
  end },
})lua");
  auto r = cli.run({"run", "ops.tpl_ok"}, k_env);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(holds(r.out, "MIGRATION SUCCESS: Organizations Import Fix")) << r.out;
  EXPECT_TRUE(holds(r.out, "- Migration completed in 0.0 minutes")) << r.out;
  EXPECT_TRUE(holds(r.out, "- Monitoring continues for 24h")) << r.out;
  EXPECT_TRUE(holds(r.out, "DATABASE RECOVERY COMPLETED")) << r.out;
  EXPECT_TRUE(holds(r.out, "Duration: 0s")) << r.out;
  EXPECT_TRUE(holds(r.out, "On-call: @technical-lead")) << r.out;
  EXPECT_TRUE(holds(r.out, "refused: template needs values for: problem, action, eta, contact")) << r.out;

  dir.write("runbooks/ops/tpl_fail.lua", R"lua(local template = require "template"
runbook "ops.tpl_fail" {
  step "migrate" {
    run = function(ctx) end,
    rollback = function(ctx)
      local text = template.render(template.rollback_notification, {}, ctx)
      ctx.log(text)
      alert.send{ severity = "critical", summary = "rollback executed", details = { message = text }, channel = "hooks" }
      ctx.log(template.render(template.critical_issue, { impact = "imports fail", action = "rerun after the fix",
                                                        eta = "30m", contact = "#dba" }, ctx))
      ctx.log("failed step: " .. template.context(ctx).failed_step)
    end,
  },
  step "check" { run = function(ctx) check(false, "constraint missing") end },
})lua");
  r = cli.run({"run", "ops.tpl_fail"}, k_env);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(holds(r.out, "ROLLBACK EXECUTED: ops.tpl_fail")) << r.out;
  EXPECT_TRUE(holds(r.out, "- Issue: constraint missing")) << r.out;
  EXPECT_TRUE(holds(r.out, "- Rollback completed in 0.0 minutes")) << r.out;
  EXPECT_TRUE(holds(r.out, "- Problem: constraint missing")) << r.out;
  EXPECT_TRUE(holds(r.out, "- Contact: #dba")) << r.out;
  EXPECT_TRUE(holds(r.out, "failed step: main/check")) << r.out;
  ASSERT_EQ(hook.requests().size(), 1u);
  json b = json::parse(hook.requests()[0]["body"].get<std::string>());
  EXPECT_TRUE(holds(b["runbook"]["details"]["message"].get<std::string>(), "ROLLBACK EXECUTED: ops.tpl_fail"));
}

}  // namespace

namespace {

// Alerts and incidents together, through the CLI: a failed run's incident reaches PagerDuty as
// a trigger, `runbook ack` and `runbook resolve` reach it with the same dedup_key.
TEST_F(AlertCli, AFailedRunsIncidentIsTriggeredAcknowledgedAndResolvedOnPagerDuty) {
  receiver pd(receiver::kind::http, dir.path(), {"--script", "202,202,202"});
  config("http://127.0.0.1:9/hook", pd.url("/v2/enqueue"),
         "  escalation = { database = { levels = { { after = '0m', notify = { 'oncall' } } } } },\n");
  dir.write("runbooks/ops/failing.lua", "runbook \"ops.failing\" {\n  escalation = \"database\",\n"
                                        "  step \"breaks\" { run = function(ctx) error(\"disk full\") end },\n}\n");
  auto r = cli.run({"run", "ops.failing"}, k_env);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  ASSERT_EQ(pd.requests().size(), 1u) << "the trigger was delivered before the run's process ended: " << r.out;
  json trigger = json::parse(pd.requests()[0]["body"].get<std::string>());
  EXPECT_EQ(trigger["event_action"], "trigger");
  EXPECT_EQ(trigger["payload"]["component"], "ops.failing");
  std::string dedup = trigger["dedup_key"];
  auto opened = cli.events("incident.open");
  ASSERT_EQ(opened.size(), 1u);
  std::string id = opened[0]["incident"];
  EXPECT_TRUE(holds(r.out, id)) << "the run says which incident it opened: " << r.out;

  auto ack = cli.run({"ack", id, "--by", "alice"}, k_env);
  EXPECT_EQ(ack.exit_code, 0) << ack.out << ack.err;
  ASSERT_TRUE(pd.wait_for(2));
  auto resolve = cli.run({"resolve", id}, k_env);
  EXPECT_EQ(resolve.exit_code, 0) << resolve.out << resolve.err;
  ASSERT_TRUE(pd.wait_for(3));
  json acked = json::parse(pd.requests()[1]["body"].get<std::string>());
  json resolved = json::parse(pd.requests()[2]["body"].get<std::string>());
  EXPECT_EQ(acked["event_action"], "acknowledge");
  EXPECT_EQ(resolved["event_action"], "resolve");
  EXPECT_EQ(acked["dedup_key"], dedup);
  EXPECT_EQ(resolved["dedup_key"], dedup);
  EXPECT_EQ(resolved["routing_key"], k_pd_key);
  EXPECT_FALSE(holds(read_file(cli.audit_log()), k_pd_key));
}

}  // namespace
