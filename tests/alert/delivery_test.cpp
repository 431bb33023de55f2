// Alert channels and the dispatcher against real receivers on 127.0.0.1: each HTTP channel's
// exact payload, retries (5xx, 429 Retry-After, never 4xx), abandonment at the wait limit, SMTP.
#include <gtest/gtest.h>

#include <thread>

#include "engine/alert/dispatcher.hpp"
#include "engine/audit/log.hpp"
#include "engine/error.hpp"
#include "engine/util/secrets.hpp"
#include "tests/support/receiver.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using namespace rb;
using rb::testing::read_file;
using rb::testing::receiver;
using rb::testing::temp_dir;
using json = nlohmann::json;
using ms = std::chrono::milliseconds;

/// A dispatcher with its own audit log in a temp dir.
struct harness {
  temp_dir dir{"runbook-alert"};
  audit::log log{dir.path() / "audit.jsonl"};
  system_clock clk;
  std::vector<std::string> printed;

  std::unique_ptr<alert::dispatcher> make(std::map<std::string, alert::channel_config> chans) {
    alert::dispatcher_options o;
    o.retry.initial = ms(100);  // keep the retry tests short; the policy's shape is the same
    o.print = [this](const std::string& s) { printed.push_back(s); };
    return std::make_unique<alert::dispatcher>(std::move(chans), log, clk, std::move(o));
  }
  std::vector<json> events(const std::string& event) const {
    std::vector<json> out;
    audit::for_each_record(log.path(), [&](const json& r) {
      if (r.value("event", "") == event) out.push_back(r);
    });
    return out;
  }
};

alert::channel_config http_channel(alert::channel_type t, const std::string& url) {
  alert::channel_config c;
  c.type = t;
  c.url = url;
  c.timeout = ms(5000);
  return c;
}

alert::notification sample(const std::string& severity = "critical") {
  alert::notification n;
  n.severity = severity;
  n.summary = "replication lag 45s on primary";
  n.details = {{"lag_s", 45}, {"replica", "db2"}};
  n.runbook = "ops.lag";
  n.target = "primary";
  n.run_id = "20261203T130000Z-abc123";
  return n;
}

json body_of(const json& request) { return json::parse(request["body"].get<std::string>()); }

TEST(AlertPagerDuty, SendsEventsV2TriggerAcknowledgeResolveWithOneDedupKey) {
  harness h;
  receiver pd(receiver::kind::http, h.dir.path(), {"--script", "202"});
  auto c = http_channel(alert::channel_type::pagerduty, pd.url("/v2/enqueue"));
  c.routing_key = "R0UTINGKEY0123456789abcdefabcdef";
  c.run_url = "https://ci.example.com/runs/{run}";
  auto d = h.make({{"oncall", c}});
  alert::notification n = sample();
  n.dedup = "ops.lag:primary:lag";
  std::string id = d->send("oncall", n);
  n.action = "acknowledge";
  d->send("oncall", n);
  n.action = "resolve";
  d->send("oncall", n);
  EXPECT_TRUE(d->drain(ms(10'000)).empty());
  auto reqs = pd.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0]["path"], "/v2/enqueue");
  EXPECT_EQ(reqs[0]["headers"]["content-type"], "application/json");
  json t = body_of(reqs[0]);
  EXPECT_EQ(t["routing_key"], c.routing_key);
  EXPECT_EQ(t["event_action"], "trigger");
  EXPECT_EQ(t["dedup_key"], "ops.lag:primary:lag");
  EXPECT_EQ(t["payload"]["summary"], "replication lag 45s on primary");
  EXPECT_EQ(t["payload"]["source"], "primary");
  EXPECT_EQ(t["payload"]["severity"], "critical");
  EXPECT_EQ(t["payload"]["component"], "ops.lag");
  EXPECT_EQ(t["payload"]["group"], "primary");
  EXPECT_EQ(t["payload"]["class"], "runbook");
  EXPECT_FALSE(t["payload"]["timestamp"].get<std::string>().empty());
  EXPECT_EQ(t["payload"]["custom_details"]["lag_s"], 45);
  EXPECT_EQ(t["payload"]["custom_details"]["run"], n.run_id);
  EXPECT_EQ(t["links"][0]["href"], "https://ci.example.com/runs/" + n.run_id);
  for (int i = 1; i < 3; ++i) {
    json b = body_of(reqs[static_cast<std::size_t>(i)]);
    EXPECT_EQ(b["event_action"], i == 1 ? "acknowledge" : "resolve");
    EXPECT_EQ(b["dedup_key"], "ops.lag:primary:lag") << "acknowledge and resolve reuse the trigger's key";
    EXPECT_EQ(b["routing_key"], c.routing_key);
    EXPECT_FALSE(b.contains("payload"));
  }
  auto sent = h.events("alert.sent");
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[0]["delivery"], id);
  EXPECT_EQ(sent[0]["channel"], "oncall");
  EXPECT_EQ(sent[0]["type"], "pagerduty");
  EXPECT_EQ(sent[0]["status"], 202);
  EXPECT_EQ(sent[0]["attempts"], 1);
  EXPECT_TRUE(sent[0].contains("duration_ms"));
  EXPECT_EQ(sent[0]["run"], n.run_id);
  EXPECT_EQ(read_file(h.log.path()).find(pd.url("")), std::string::npos) << "the audit names the channel, not the URL";
}

TEST(AlertPagerDuty, CutsSummaryAndDedupKeyToTheirLimitsOnCharacterBoundaries) {
  alert::channel_config c;
  c.routing_key = "k";
  alert::notification n = sample();
  n.summary.clear();
  for (int i = 0; i < 800; ++i) n.summary += "\xC3\xA9";  // é: 1,600 bytes
  n.dedup = std::string(400, 'k');
  json p = alert::pagerduty_payload(c, n);
  std::string s = p["payload"]["summary"];
  EXPECT_LE(s.size(), 1024u);
  EXPECT_NE(s.find("(truncated)"), std::string::npos);
  EXPECT_NO_THROW(static_cast<void>(json(s).dump())) << "still valid UTF-8";
  EXPECT_LE(p["dedup_key"].get<std::string>().size(), 255u);
  n.dedup = std::string(401, 'k');
  EXPECT_NE(alert::pagerduty_payload(c, n)["dedup_key"], p["dedup_key"]) << "cut keys stay distinct";
}

TEST(AlertSlack, PostsTextAndBlocksWithSeverityRunbookTargetRunAndEscapedData) {
  harness h;
  receiver slack(receiver::kind::http, h.dir.path(), {"--script", "200"});
  auto d = h.make({{"team", http_channel(alert::channel_type::slack, slack.url("/services/T0/B0/XYZ"))}});
  alert::notification n = sample();
  n.summary = "disk full <!channel> & more";
  d->send("team", n);
  EXPECT_TRUE(d->drain(ms(10'000)).empty());
  ASSERT_EQ(slack.requests().size(), 1u);
  json b = body_of(slack.requests()[0]);
  std::string text = b["text"];
  EXPECT_NE(text.find("[CRITICAL]"), std::string::npos) << text;
  EXPECT_NE(text.find("&lt;!channel&gt; &amp; more"), std::string::npos) << "user data escaped: " << text;
  EXPECT_EQ(text.find("<!channel>"), std::string::npos);
  ASSERT_GE(b["blocks"].size(), 4u);
  EXPECT_EQ(b["blocks"][0]["type"], "header");
  EXPECT_EQ(b["blocks"][0]["text"]["type"], "plain_text");
  std::string fields = b["blocks"][1]["fields"].dump();
  for (const char* want : {"*Severity*\\ncritical", "*Runbook*\\nops.lag", "*Target*\\nprimary", "20261203T130000Z-abc123"})
    EXPECT_NE(fields.find(want), std::string::npos) << want << " in " << fields;
  std::string all = b["blocks"].dump();
  EXPECT_NE(all.find("*lag_s*: 45"), std::string::npos) << all;
  EXPECT_NE(all.find("*replica*: db2"), std::string::npos) << all;
  EXPECT_EQ(h.events("alert.sent").at(0)["status"], 200);
}

TEST(AlertSlack, KeepsSlackFieldLimitsCuttingOnUtf8Boundaries) {
  alert::channel_config c;
  alert::notification n = sample();
  n.summary.clear();
  for (int i = 0; i < 2000; ++i) n.summary += "\xE2\x82\xAC";  // €: 6,000 bytes
  n.details = {{"log", std::string(10'000, 'x')}};
  json p = alert::slack_payload(c, n);
  EXPECT_LE(p["blocks"][0]["text"]["text"].get<std::string>().size(), 150u);
  for (const auto& b : p["blocks"])
    if (b["type"] == "section" && b.contains("text")) {
      std::string t = b["text"]["text"];
      EXPECT_LE(t.size(), 3000u);
      EXPECT_NE(t.find("(truncated)"), std::string::npos);
    }
  EXPECT_NO_THROW(static_cast<void>(p.dump())) << "every cut is on a character boundary";
}

TEST(AlertSlack, OnlyA200CountsAsDelivered) {
  harness h;
  receiver slack(receiver::kind::http, h.dir.path(), {"--script", "202"});
  auto d = h.make({{"team", http_channel(alert::channel_type::slack, slack.url())}});
  d->send("team", sample());
  auto failed = d->drain(ms(10'000));
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(slack.requests().size(), 1u);
  EXPECT_EQ(h.events("alert.failed").size(), 1u);
}

TEST(AlertWebhook, PostsAlertmanagerShapedJsonWithTheConfiguredHeaders) {
  harness h;
  receiver hook(receiver::kind::http, h.dir.path(), {"--script", "200"});
  auto c = http_channel(alert::channel_type::webhook, hook.url("/runbook"));
  c.headers = {{"Authorization", "Bearer hook-token-77"}, {"X-Team", "dba"}};
  auto d = h.make({{"hooks", c}});
  std::string id = d->send("hooks", sample("warning"));
  EXPECT_TRUE(d->drain(ms(10'000)).empty());
  ASSERT_EQ(hook.requests().size(), 1u);
  json r = hook.requests()[0];
  EXPECT_EQ(r["method"], "POST");
  EXPECT_EQ(r["path"], "/runbook");
  EXPECT_EQ(r["headers"]["authorization"], "Bearer hook-token-77");
  EXPECT_EQ(r["headers"]["x-team"], "dba");
  json b = body_of(r);
  EXPECT_EQ(b["version"], "4");
  EXPECT_EQ(b["status"], "firing");
  EXPECT_EQ(b["receiver"], "hooks");
  EXPECT_EQ(b["alerts"][0]["labels"]["runbook"], "ops.lag");
  EXPECT_EQ(b["alerts"][0]["labels"]["severity"], "warning");
  EXPECT_EQ(b["alerts"][0]["annotations"]["summary"], "replication lag 45s on primary");
  EXPECT_EQ(b["runbook"]["delivery"], id);
  EXPECT_EQ(b["runbook"]["details"]["replica"], "db2");
}

TEST(AlertDelivery, RetriesTwoServerErrorsThenDeliversOnce) {
  harness h;
  receiver hook(receiver::kind::http, h.dir.path(), {"--script", "500,500,202"});
  auto d = h.make({{"hooks", http_channel(alert::channel_type::webhook, hook.url())}});
  std::string id = d->send("hooks", sample());
  EXPECT_TRUE(d->drain(ms(10'000)).empty());
  EXPECT_EQ(hook.requests().size(), 3u);
  auto sent = h.events("alert.sent");
  ASSERT_EQ(sent.size(), 1u) << "one notification, however many attempts";
  EXPECT_EQ(sent[0]["attempts"], 3);
  EXPECT_EQ(sent[0]["status"], 202);
  EXPECT_EQ(h.events("alert.retry").size(), 2u);
  EXPECT_TRUE(h.events("alert.failed").empty());
  EXPECT_TRUE(d->result(id)->delivered);
}

TEST(AlertDelivery, NeverRetriesABadRequest) {
  harness h;
  receiver hook(receiver::kind::http, h.dir.path(), {"--script", "400,202"});
  auto d = h.make({{"oncall", http_channel(alert::channel_type::pagerduty, hook.url())}});
  d->send("oncall", sample());
  auto failed = d->drain(ms(10'000));
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_NE(failed[0].reason.find("HTTP 400"), std::string::npos) << failed[0].reason;
  EXPECT_EQ(hook.requests().size(), 1u);
  auto f = h.events("alert.failed");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0]["attempts"], 1);
  EXPECT_EQ(f[0]["status"], 400);
  EXPECT_EQ(f[0]["channel"], "oncall");
  EXPECT_TRUE(h.events("alert.sent").empty());
}

TEST(AlertDelivery, HonoursRetryAfterOnA429) {
  harness h;
  receiver hook(receiver::kind::http, h.dir.path(), {"--script", "429:1,202"});
  auto d = h.make({{"team", http_channel(alert::channel_type::webhook, hook.url())}});
  d->send("team", sample());
  EXPECT_TRUE(d->drain(ms(10'000)).empty());
  auto reqs = hook.requests();
  ASSERT_EQ(reqs.size(), 2u);
  double gap = reqs[1]["t"].get<double>() - reqs[0]["t"].get<double>();
  EXPECT_GE(gap, 0.95) << "the second attempt waited for Retry-After: 1";
  EXPECT_LT(gap, 3.0);
  EXPECT_EQ(h.events("alert.sent").at(0)["attempts"], 2);
}

TEST(AlertDelivery, ANetworkErrorIsRetriedThenFails) {
  harness h;
  std::string url;
  {
    receiver gone(receiver::kind::http, h.dir.path());
    url = gone.url();
  }  // nothing listens there now
  auto c = http_channel(alert::channel_type::webhook, url);
  c.attempts = 2;
  auto d = h.make({{"hooks", c}});
  d->send("hooks", sample());
  auto failed = d->drain(ms(10'000));
  ASSERT_EQ(failed.size(), 1u);
  auto f = h.events("alert.failed");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0]["attempts"], 2);
  EXPECT_EQ(h.events("alert.retry").size(), 1u);
}

TEST(AlertDelivery, AHangingReceiverIsAbandonedAtTheWaitLimit) {
  harness h;
  receiver hook(receiver::kind::http, h.dir.path(), {"--script", "hang"});
  auto c = http_channel(alert::channel_type::pagerduty, hook.url());
  c.timeout = ms(60'000);
  auto d = h.make({{"oncall", c}});
  auto t0 = std::chrono::steady_clock::now();
  std::string id = d->send("oncall", sample());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, ms(200)) << "send() returns at once";
  ASSERT_TRUE(hook.wait_for(1));
  auto failed = d->drain(ms(1000));
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, ms(2500)) << "drain returned at its limit, not at the 60s transfer timeout";
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].delivery, id);
  EXPECT_NE(failed[0].reason.find("not delivered within alert_wait 1s"), std::string::npos) << failed[0].reason;
  ASSERT_EQ(h.events("alert.failed").size(), 1u);
}

TEST(AlertDelivery, BelowTheChannelsMinSeverityNothingIsSent) {
  harness h;
  receiver hook(receiver::kind::http, h.dir.path());
  auto c = http_channel(alert::channel_type::webhook, hook.url());
  c.min_severity = "error";
  auto d = h.make({{"hooks", c}});
  std::string id = d->send("hooks", sample("warning"));
  d->send("hooks", sample("critical"));
  EXPECT_TRUE(d->drain(ms(10'000)).empty());
  EXPECT_EQ(hook.requests().size(), 1u);
  EXPECT_TRUE(d->result(id)->skipped);
  EXPECT_EQ(h.events("alert.skipped").size(), 1u);
}

TEST(AlertDelivery, AnUnknownChannelIsAUsageErrorNamingIt) {
  harness h;
  auto d = h.make({{"team", alert::channel_config{}}});
  try {
    d->send("teem", sample());
    FAIL() << "no error";
  } catch (const rb::error& e) {
    EXPECT_EQ(e.kind(), rb::error_kind::usage);
    EXPECT_NE(std::string(e.what()).find("'teem'"), std::string::npos) << e.what();
  }
}

TEST(AlertLog, PrintsTheAlertAndAuditsIt) {
  harness h;
  auto d = h.make({{"ops", alert::channel_config{}}});
  d->send("ops", sample());
  ASSERT_EQ(h.printed.size(), 1u) << "delivered at once, no wait";
  EXPECT_NE(h.printed[0].find("alert [critical] replication lag 45s on primary"), std::string::npos) << h.printed[0];
  EXPECT_EQ(h.events("alert.sent").size(), 1u);
}

TEST(AlertFile, AppendsWholeJsonLinesFromConcurrentWriters) {
  harness h;
  alert::channel_config c;
  c.type = alert::channel_type::file;
  c.path = (h.dir.path() / "alerts" / "alerts.jsonl").string();
  audit::log log2(h.dir.path() / "audit2.jsonl");
  auto d1 = h.make({{"archive", c}});
  alert::dispatcher d2({{"archive", c}}, log2, h.clk);
  alert::notification big = sample();
  big.details = {{"blob", std::string(20'000, 'y')}};  // larger than a pipe buffer: one write still
  std::thread other([&] {
    for (int i = 0; i < 40; ++i) d2.send("archive", big);
  });
  for (int i = 0; i < 40; ++i) d1->send("archive", big);
  other.join();
  EXPECT_TRUE(d1->drain(ms(20'000)).empty());
  EXPECT_TRUE(d2.drain(ms(20'000)).empty());
  std::istringstream in(read_file(c.path));
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    json j = json::parse(line);  // throws on an interleaved line
    EXPECT_EQ(j["summary"], "replication lag 45s on primary");
    EXPECT_EQ(j["channel"], "archive");
    ++n;
  }
  EXPECT_EQ(n, 80);
}

TEST(AlertEmail, SendsAnRfc5322MessageOverSmtp) {
  harness h;
  receiver mail(receiver::kind::smtp, h.dir.path());
  alert::channel_config c;
  c.type = alert::channel_type::email;
  c.url = mail.url();
  c.from = "Runbook <runbook@example.com>";
  c.to = {"dba@example.com", "lead@example.com"};
  c.user = "runbook";
  c.password = "smtp-pass-9931";
  auto d = h.make({{"dba", c}});
  alert::notification n = sample();
  n.details = {{"line", ".starts with a dot"}, {"replica", "db2"}};
  std::string id = d->send("dba", n);
  auto failed = d->drain(ms(10'000));
  EXPECT_TRUE(failed.empty()) << failed.at(0).reason;
  ASSERT_EQ(mail.requests().size(), 1u);
  json m = mail.requests()[0];
  EXPECT_EQ(m["from"], "<runbook@example.com>");
  EXPECT_TRUE(m["auth"].get<bool>()) << "logged in with user and password";
  EXPECT_EQ(m["to"], json::array({"<dba@example.com>", "<lead@example.com>"}));
  std::string data = m["data"];
  for (const char* h : {"Date: ", "From: Runbook <runbook@example.com>\r\n", "To: dba@example.com, lead@example.com\r\n",
                        "Subject: [runbook] CRITICAL: replication lag 45s on primary\r\n", "Message-ID: <" ,
                        "MIME-Version: 1.0\r\n", "Content-Type: text/plain; charset=utf-8\r\n"})
    EXPECT_NE(data.find(h), std::string::npos) << h << " in\n" << data;
  EXPECT_NE(data.find("\r\n\r\nreplication lag 45s on primary\r\n"), std::string::npos) << "a blank line, then the body";
  EXPECT_NE(data.find("Runbook: ops.lag\r\n"), std::string::npos);
  EXPECT_NE(data.find("  line: .starts with a dot\r\n"), std::string::npos);
  for (std::size_t i = 0; i < data.size(); ++i)
    if (data[i] == '\n') {
      ASSERT_TRUE(i > 0 && data[i - 1] == '\r') << "bare LF at " << i;
    }
  auto sent = h.events("alert.sent");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0]["status"], 250);
  EXPECT_EQ(sent[0]["type"], "email");
}

TEST(AlertEmail, APermanentRejectionIsNotRetried) {
  harness h;
  receiver mail(receiver::kind::smtp, h.dir.path(), {"--reject", "550"});
  alert::channel_config c;
  c.type = alert::channel_type::email;
  c.url = mail.url();
  c.from = "runbook@example.com";
  c.to = {"nobody@example.com"};
  auto d = h.make({{"dba", c}});
  d->send("dba", sample());
  auto failed = d->drain(ms(10'000));
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_NE(failed[0].reason.find("550"), std::string::npos) << failed[0].reason;
  EXPECT_EQ(h.events("alert.failed").at(0)["attempts"], 1);
}

}  // namespace
