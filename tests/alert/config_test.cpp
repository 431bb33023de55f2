// The alert part of runbook.lua: channels, default_channels, alert_wait; errors name the file,
// the line and the channel; secrets among the fields are registered for redaction.
#include <gtest/gtest.h>

#include "bindings/config.hpp"
#include "bindings/open_all.hpp"
#include "engine/error.hpp"
#include "engine/util/secrets.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using rb::testing::temp_dir;

rb::run::config load(const temp_dir& dir, const std::string& text) {
  auto file = dir.write("runbook.lua", text);
  auto sb = rb::lua::make_sandbox({});
  return rb::lua::load_config(*sb, file);
}

std::string error_of(const std::string& text) {
  temp_dir dir{"runbook-alert-config"};
  try {
    load(dir, text);
  } catch (const rb::error& e) {
    EXPECT_EQ(e.kind(), rb::error_kind::bad_runbook);
    std::string m = e.what();
    auto at = m.find("runbook.lua");
    return at == std::string::npos ? m : m.substr(at);
  }
  return "(no error)";
}

TEST(AlertConfig, ReadsEveryChannelTypeWithDefaults) {
  temp_dir dir{"runbook-alert-config"};
  auto cfg = load(dir, R"lua(return {
  channels = {
    ops     = { type = "log" },
    archive = { type = "file", path = "/tmp/x/alerts.jsonl" },
    team    = { type = "slack", webhook = "https://hooks.slack.com/services/T0/B0/abcdef", min_severity = "error" },
    oncall  = { type = "pagerduty", routing_key = "0123456789abcdef0123456789abcdef", run_url = "https://ci/runs/{run}" },
    hooks   = { type = "webhook", url = "https://hooks.example.com/runbook", headers = { Authorization = "Bearer zz-hook-token" }, timeout = "3s" },
    dba     = { type = "email", smtp = "smtp://mail.example.com:587", starttls = true,
                from = "runbook@example.com", to = { "dba@example.com" }, user = "runbook", password = "smtp-pw-4411" },
  },
  default_channels = { "ops", "team" },
  alert_wait = "3s",
})lua");
  ASSERT_EQ(cfg.channels.size(), 6u);
  EXPECT_EQ(cfg.channels["oncall"].url, "https://events.pagerduty.com/v2/enqueue") << "Events API v2 by default";
  EXPECT_EQ(cfg.channels["team"].min_severity, "error");
  EXPECT_EQ(cfg.channels["hooks"].timeout, std::chrono::seconds(3));
  EXPECT_TRUE(cfg.channels["dba"].starttls);
  EXPECT_EQ(cfg.default_channels, (std::vector<std::string>{"ops", "team"}));
  EXPECT_EQ(cfg.alert_wait, std::chrono::seconds(3));
  for (const char* secret : {"https://hooks.slack.com/services/T0/B0/abcdef", "0123456789abcdef0123456789abcdef",
                             "smtp-pw-4411", "Bearer zz-hook-token"})
    EXPECT_EQ(rb::secrets::redact(std::string("x ") + secret), "x ***") << secret << " is registered as a secret";
}

TEST(AlertConfig, AlertWaitDefaultsToTenSeconds) {
  temp_dir dir{"runbook-alert-config"};
  EXPECT_EQ(load(dir, "return { channels = { ops = { type = 'log' } } }").alert_wait, std::chrono::seconds(10));
}

TEST(AlertConfig, AnUnknownTypeNamesFileLineAndChannel) {
  EXPECT_EQ(error_of("return {\n  channels = {\n    ops = { type = 'log' },\n    team = { type = 'slak' },\n  },\n}"),
            "runbook.lua:4: channel 'team': unknown type 'slak' (did you mean 'slack'?); types: log, file, webhook, slack, "
            "pagerduty, email");
}

TEST(AlertConfig, AMissingRequiredFieldIsNamed) {
  EXPECT_EQ(error_of("return { channels = {\n team = { type = 'slack' } } }"),
            "runbook.lua:2: channel 'team': needs webhook = secret \"SLACK_WEBHOOK_URL\"");
  EXPECT_EQ(error_of("return { channels = {\n oncall = { type = 'pagerduty' } } }"),
            "runbook.lua:2: channel 'oncall': needs routing_key = secret \"PD_ROUTING_KEY\"");
  EXPECT_EQ(error_of("return { channels = {\n hooks = { type = 'webhook' } } }"),
            "runbook.lua:2: channel 'hooks': needs url = \"https://...\"");
  EXPECT_EQ(error_of("return { channels = {\n archive = { type = 'file' } } }"),
            "runbook.lua:2: channel 'archive': needs path = \"/var/log/runbook/alerts.jsonl\"");
  EXPECT_EQ(error_of("return { channels = {\n\n dba = { type = 'email', smtp = 'smtp://m:25', from = 'a@b' } } }"),
            "runbook.lua:3: channel 'dba': needs to = { \"dba@example.com\" }");
}

TEST(AlertConfig, ABadUrlIsRefused) {
  EXPECT_EQ(error_of("return { channels = { hooks = { type = 'webhook', url = 'ftp://example.com/x' } } }"),
            "runbook.lua:1: channel 'hooks': url: the scheme must be http or https, not 'ftp'");
  EXPECT_EQ(error_of("return { channels = { dba = { type = 'email', smtp = 'http://m', from = 'a@b', to = 'c@d' } } }"),
            "runbook.lua:1: channel 'dba': smtp: the scheme must be smtp or smtps, not 'http'");
  std::string m = error_of("return { channels = { hooks = { type = 'webhook', url = 'https://exa mple.com' } } }");
  EXPECT_NE(m.find("channel 'hooks': url: not a URL"), std::string::npos) << m;
}

TEST(AlertConfig, UnknownFieldsAndDefaultChannelsAreChecked) {
  std::string m = error_of("return { channels = { team = { type = 'slack', webhok = 'https://x' } } }");
  EXPECT_NE(m.find("channel 'team': unknown field 'webhok' for a slack channel (did you mean 'webhook'?)"), std::string::npos) << m;
  m = error_of("return { channels = { ops = { type = 'log' } }, default_channels = { 'opps' } }");
  EXPECT_NE(m.find("default_channels: no channel 'opps' (did you mean 'ops'?)"), std::string::npos) << m;
  m = error_of("return { channels = { ops = { type = 'log', min_severity = 'high' } } }");
  EXPECT_NE(m.find("min_severity 'high' is not one of critical, error, warning, info"), std::string::npos) << m;
}

TEST(AlertConfig, AnErrorNeverShowsTheSecret) {
  std::string m = error_of("return { channels = { team = { type = 'slack', webhook = 'ftp://hooks.slack.com/T0/secret-path-887' } } }");
  EXPECT_EQ(rb::secrets::redact(m), m) << "nothing to redact: the URL is not in the message";
  EXPECT_EQ(m.find("secret-path-887"), std::string::npos) << m;
}

}  // namespace
