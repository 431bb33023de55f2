// The audit log cannot be downgraded: under a key every record must carry the key's HMAC, and
// an anchor kept outside the file (`runbook audit head`) catches a log cut or rewritten
// together with its head file.
#include <gtest/gtest.h>

#include <fstream>

#include "engine/audit/log.hpp"
#include "engine/error.hpp"
#include "engine/util/hash.hpp"
#include "tests/support/cli.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using rb::audit::json;
using rb::testing::read_file;

const std::string k_key = "s3cret-audit-key";

std::vector<json> records_of(const std::filesystem::path& f) {
  std::vector<json> out;
  std::ifstream in(f);
  for (std::string l; std::getline(in, l);) out.push_back(json::parse(l));
  return out;
}

void write_records(const std::filesystem::path& f, const std::vector<json>& recs) {
  std::ofstream out(f, std::ios::trunc);
  for (auto& r : recs) out << r.dump() << "\n";
}

void write_head(const std::filesystem::path& f, const json& last) {
  std::ofstream out(f.string() + ".head", std::ios::trunc);
  out << json{{"seq", last["seq"]}, {"hash", last["hash"]}}.dump() << "\n";
}

/// What a forger without the key does: edit record `from` (0-based), then re-hash it and every
/// later record with plain SHA-256, and rewrite the head file to match.
void rehash_without_key(const std::filesystem::path& f, std::size_t from, const std::string& new_message) {
  auto recs = records_of(f);
  recs[from]["message"] = new_message;
  for (std::size_t i = from; i < recs.size(); ++i) {
    if (i > 0) recs[i]["prev"] = recs[i - 1]["hash"];
    recs[i]["alg"] = "sha256";
    recs[i].erase("hash");
    recs[i]["hash"] = rb::sha256_hex(rb::audit::canonical(recs[i]));
  }
  write_records(f, recs);
  write_head(f, recs.back());
}

class AuditKey : public ::testing::Test {
 protected:
  rb::testing::temp_dir dir{"rb-audit-key"};
  std::filesystem::path file = dir.path() / "state" / "audit.jsonl";

  void append(int n, const std::optional<std::string>& key) {
    rb::audit::log log(file, key);
    for (int i = 0; i < n; ++i) log.append("run-1", "note", {{"message", "record " + std::to_string(i)}});
  }
};

TEST_F(AuditKey, ARecordReHashedWithoutTheKeyIsRejected) {
  append(5, k_key);
  ASSERT_TRUE(rb::audit::verify(file, k_key).ok);
  rehash_without_key(file, 2, "forged");
  auto v = rb::audit::verify(file, k_key);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_line, 3u);
  EXPECT_NE(v.problem.find("not keyed"), std::string::npos) << v.problem;
}

TEST_F(AuditKey, AWholeLogReHashedWithoutTheKeyIsRejected) {
  append(3, k_key);
  rehash_without_key(file, 0, "forged");
  auto v = rb::audit::verify(file, k_key);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_line, 1u);
}

TEST_F(AuditKey, AppendingWithoutTheKeyToAKeyedLogIsRefused) {
  append(2, k_key);
  rb::audit::log log(file);
  EXPECT_THROW(log.append("run-2", "note", {{"message", "unkeyed"}}), rb::error);
  EXPECT_EQ(records_of(file).size(), 2u);
  EXPECT_TRUE(rb::audit::verify(file, k_key).ok);
}

TEST_F(AuditKey, AppendingWithAKeyToAnUnkeyedLogIsRefused) {
  append(2, std::nullopt);
  rb::audit::log log(file, k_key);
  EXPECT_THROW(log.append("run-2", "note", {{"message", "keyed"}}), rb::error);
  EXPECT_EQ(records_of(file).size(), 2u);
}

TEST_F(AuditKey, TheHeadFileMustMatchTheRecordItNames) {
  append(4, std::nullopt);
  auto recs = records_of(file);
  json fake = recs[3];
  fake["hash"] = std::string(64, 'a');
  write_head(file, fake);
  auto v = rb::audit::verify(file, std::nullopt);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find("head"), std::string::npos) << v.problem;
}

TEST_F(AuditKey, AnAnchorCatchesTheEndCutTogetherWithItsHeadFile) {
  append(5, std::nullopt);
  auto v = rb::audit::verify(file, std::nullopt);
  ASSERT_TRUE(v.ok);
  rb::audit::anchor a{v.records, v.last_hash};
  EXPECT_TRUE(rb::audit::verify(file, std::nullopt, a).ok);
  auto recs = records_of(file);
  recs.resize(3);
  write_records(file, recs);
  write_head(file, recs.back());
  EXPECT_TRUE(rb::audit::verify(file, std::nullopt).ok) << "without an anchor the cut is consistent";
  auto cut = rb::audit::verify(file, std::nullopt, a);
  EXPECT_FALSE(cut.ok);
  EXPECT_NE(cut.problem.find("anchor"), std::string::npos) << cut.problem;
}

TEST_F(AuditKey, AnAnchorCatchesALogRewrittenFromBeforeIt) {
  append(5, std::nullopt);
  rb::audit::anchor a{3, records_of(file)[2]["hash"].get<std::string>()};
  EXPECT_TRUE(rb::audit::verify(file, std::nullopt, a).ok);
  rehash_without_key(file, 1, "forged");
  ASSERT_TRUE(rb::audit::verify(file, std::nullopt).ok) << "an unkeyed log can be rewritten consistently";
  auto forged = rb::audit::verify(file, std::nullopt, a);
  EXPECT_FALSE(forged.ok);
  EXPECT_EQ(forged.bad_line, 3u);
}

TEST_F(AuditKey, AnchorsParseFromSeqColonHash) {
  std::string h(64, 'f');
  auto a = rb::audit::parse_anchor("12:" + h);
  EXPECT_EQ(a.seq, 12u);
  EXPECT_EQ(a.hash, h);
  EXPECT_THROW(rb::audit::parse_anchor("12"), rb::error);
  EXPECT_THROW(rb::audit::parse_anchor("x:" + h), rb::error);
  EXPECT_THROW(rb::audit::parse_anchor("12:abc"), rb::error);
}

// ---- the command line ----------------------------------------------------------------------

TEST(AuditCli, HeadPrintsTheAnchorThatVerifyChecks) {
  rb::testing::temp_dir dir{"rb-audit-cli"};
  dir.write("runbooks/ops/t.lua", R"lua(runbook "ops.t" { step "s" { run = function(ctx) end } })lua");
  rb::testing::cli_sandbox cli(dir.path());
  ASSERT_EQ(cli.run({"run", "ops.t"}).exit_code, 0);
  ASSERT_EQ(cli.run({"run", "ops.t"}).exit_code, 0);
  auto head = cli.run({"audit", "head"});
  ASSERT_EQ(head.exit_code, 0) << head.err;
  auto json_head = cli.run({"audit", "head", "--json"});
  ASSERT_EQ(json_head.exit_code, 0) << json_head.err;
  auto j = json::parse(json_head.out);
  auto last = cli.records().back();
  EXPECT_EQ(j["seq"], last["seq"]);
  EXPECT_EQ(j["hash"], last["hash"]);
  std::string anchor = head.out.substr(0, head.out.find('\n'));
  EXPECT_EQ(anchor, std::to_string(last["seq"].get<std::uint64_t>()) + ":" + last["hash"].get<std::string>());
  EXPECT_EQ(cli.run({"audit", "verify", "--head", anchor}).exit_code, 0);

  // Cut the last run off the end, head file too: only the anchor notices.
  auto recs = records_of(cli.audit_log());
  std::size_t keep = recs.size() - 1;
  while (recs[keep]["event"] != "run.start") --keep;
  ASSERT_GT(keep, 0u);
  recs.resize(keep);
  write_records(cli.audit_log(), recs);
  write_head(cli.audit_log(), recs.back());
  EXPECT_EQ(cli.run({"audit", "verify"}).exit_code, 0);
  auto v = cli.run({"audit", "verify", "--head", anchor});
  EXPECT_EQ(v.exit_code, 1) << v.out;
  EXPECT_NE(v.out.find("BROKEN"), std::string::npos) << v.out;
}

TEST(AuditCli, VerifyWithTheKeyRejectsADowngradedLog) {
  rb::testing::temp_dir dir{"rb-audit-cli-key"};
  dir.write("runbooks/ops/t.lua", R"lua(runbook "ops.t" { step "s" { run = function(ctx) end } })lua");
  auto key_file = dir.write("audit.key", k_key + "\n");
  rb::testing::cli_sandbox cli(dir.path());
  std::map<std::string, std::string> env{{"RUNBOOK_AUDIT_KEY", key_file.string()}};
  ASSERT_EQ(cli.run({"run", "ops.t"}, env).exit_code, 0);
  ASSERT_EQ(cli.run({"audit", "verify"}, env).exit_code, 0);
  rehash_without_key(cli.audit_log(), 1, "forged");
  auto v = cli.run({"audit", "verify"}, env);
  EXPECT_EQ(v.exit_code, 1) << v.out;
  EXPECT_EQ(v.out.find("chain intact"), std::string::npos) << v.out;
}

}  // namespace
