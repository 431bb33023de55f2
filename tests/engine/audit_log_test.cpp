// The audit log: hash chain, tamper detection (edit, delete, insert, reorder, truncate), HMAC,
// concurrent appenders, torn writes, redaction.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "engine/audit/log.hpp"
#include "engine/error.hpp"
#include "engine/util/hash.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using rb::audit::json;
using rb::testing::read_file;

std::vector<std::string> lines_of(const std::filesystem::path& f) {
  std::vector<std::string> out;
  std::ifstream in(f);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

void write_lines(const std::filesystem::path& f, const std::vector<std::string>& lines) {
  std::ofstream out(f, std::ios::trunc);
  for (auto& l : lines) out << l << "\n";
}

class AuditLog : public ::testing::Test {
 protected:
  rb::testing::temp_dir dir{"rb-audit"};
  std::filesystem::path file = dir.path() / "state" / "audit.jsonl";

  void write_records(int n, const std::optional<std::string>& key = std::nullopt) {
    rb::audit::log log(file, key);
    for (int i = 0; i < n; ++i) log.append("run-1", "note", {{"message", "record " + std::to_string(i)}});
  }
};

TEST_F(AuditLog, RecordsCarryTheChainFields) {
  rb::audit::log log(file);
  json a = log.append("r1", "run.start", {{"runbook", "x"}});
  json b = log.append("r1", "run.end", {{"status", "succeeded"}});
  EXPECT_EQ(a["seq"], 1);
  EXPECT_EQ(b["seq"], 2);
  EXPECT_EQ(a["prev"], std::string(rb::audit::k_genesis));
  EXPECT_EQ(b["prev"], a["hash"]);
  EXPECT_EQ(a["run"], "r1");
  EXPECT_EQ(a["event"], "run.start");
  EXPECT_EQ(a["hash"].get<std::string>().size(), 64u);
  EXPECT_EQ(a["ts"].get<std::string>().back(), 'Z');
  EXPECT_EQ(lines_of(file).size(), 2u);
}

TEST_F(AuditLog, AnIntactLogVerifies) {
  write_records(5);
  auto v = rb::audit::verify(file, std::nullopt);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, 5u);
}

TEST_F(AuditLog, DetectsAnEditedRecord) {
  write_records(5);
  auto lines = lines_of(file);
  auto pos = lines[2].find("record 2");
  lines[2].replace(pos, 8, "record X");
  write_lines(file, lines);
  auto v = rb::audit::verify(file, std::nullopt);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_line, 3u);
  EXPECT_NE(v.problem.find("edited"), std::string::npos);
}

TEST_F(AuditLog, DetectsADeletedRecord) {
  write_records(5);
  auto lines = lines_of(file);
  lines.erase(lines.begin() + 1);
  write_lines(file, lines);
  auto v = rb::audit::verify(file, std::nullopt);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_line, 2u);
}

TEST_F(AuditLog, DetectsAnInsertedRecordEvenWithAValidHash) {
  write_records(4);
  auto lines = lines_of(file);
  // A forger who knows the format computes a correct hash for the record they insert.
  json prev = json::parse(lines[1]);
  json forged = {{"seq", 3}, {"ts", "2026-01-01T00:00:00.000Z"}, {"run", "run-1"}, {"event", "note"},
                 {"message", "forged"}, {"prev", prev["hash"]}, {"alg", "sha256"}};
  forged["hash"] = rb::sha256_hex(rb::audit::canonical(forged));
  lines.insert(lines.begin() + 2, forged.dump());
  write_lines(file, lines);
  auto v = rb::audit::verify(file, std::nullopt);
  EXPECT_FALSE(v.ok);
  EXPECT_LE(v.bad_line, 4u);
  EXPECT_GE(v.bad_line, 3u);
}

TEST_F(AuditLog, DetectsReorderedRecords) {
  write_records(5);
  auto lines = lines_of(file);
  std::swap(lines[1], lines[2]);
  write_lines(file, lines);
  auto v = rb::audit::verify(file, std::nullopt);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_line, 2u);
}

TEST_F(AuditLog, DetectsRecordsCutOffTheEnd) {
  write_records(5);
  auto lines = lines_of(file);
  lines.resize(3);
  write_lines(file, lines);
  auto v = rb::audit::verify(file, std::nullopt);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find("removed from its end"), std::string::npos);
}

TEST_F(AuditLog, KeyedRecordsNeedTheKeyAndResistRehashing) {
  write_records(3, std::string("s3cret-key"));
  EXPECT_TRUE(rb::audit::verify(file, std::string("s3cret-key")).ok);
  auto without = rb::audit::verify(file, std::nullopt);
  EXPECT_FALSE(without.ok);
  EXPECT_NE(without.problem.find("RUNBOOK_AUDIT_KEY"), std::string::npos);
  EXPECT_FALSE(rb::audit::verify(file, std::string("wrong-key")).ok);
}

TEST_F(AuditLog, ConcurrentAppendersFromSeveralProcessesKeepOneChain) {
  { rb::audit::log touch(file); }
  std::vector<pid_t> kids;
  for (int p = 0; p < 4; ++p) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      rb::audit::log log(file);
      for (int i = 0; i < 50; ++i) log.append("run-" + std::to_string(p), "note", {{"i", i}});
      ::_exit(0);
    }
    kids.push_back(pid);
  }
  for (pid_t k : kids) {
    int st = 0;
    ::waitpid(k, &st, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  auto v = rb::audit::verify(file, std::nullopt);
  EXPECT_TRUE(v.ok) << v.problem << " at line " << v.bad_line;
  EXPECT_EQ(v.records, 200u);
}

TEST_F(AuditLog, ATornLastLineIsReportedAndDroppedByTheNextAppend) {
  write_records(2);
  {
    std::ofstream out(file, std::ios::app);
    out << R"({"seq":3,"event":"no)";
  }
  EXPECT_FALSE(rb::audit::verify(file, std::nullopt).ok);
  rb::audit::log log(file);
  json r = log.append("run-1", "note", {{"message", "after the crash"}});
  EXPECT_EQ(r["seq"], 3);
  auto v = rb::audit::verify(file, std::nullopt);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, 3u);
}

TEST_F(AuditLog, RegisteredSecretsNeverReachTheFile) {
  rb::audit::log log(file);
  log.add_secret("hunter2-password");
  log.append("r", "note", {{"message", "connecting with hunter2-password"}, {"nested", {{"dsn", "password=hunter2-password"}}}});
  std::string text = read_file(file);
  EXPECT_EQ(text.find("hunter2-password"), std::string::npos);
  EXPECT_NE(text.find("***"), std::string::npos);
  EXPECT_TRUE(rb::audit::verify(file, std::nullopt).ok);
}

TEST_F(AuditLog, RefusesFieldNamesItSetsItself) {
  rb::audit::log log(file);
  EXPECT_THROW(log.append("r", "note", {{"hash", "x"}}), rb::error);
  EXPECT_THROW(log.append("r", "note", {{"seq", 1}}), rb::error);
}

}  // namespace
