// `runbook completion bash|zsh`: the scripts complete what a user types, in the real shells —
// bash through its completion function with COMP_WORDS set, zsh through compinit and a
// completion widget run in a pseudo-terminal.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "engine/shell/process.hpp"
#include "tests/support/cli.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using rb::testing::cli_sandbox;
using rb::testing::temp_dir;

/// A directory with the shipped runbooks on RUNBOOK_PATH, a config file, and the two scripts.
class Completion : public ::testing::Test {
 protected:
  void SetUp() override {
    auto bash = cli.run({"completion", "bash"});
    ASSERT_EQ(bash.exit_code, 0) << bash.err;
    dir.write("completions/runbook", bash.out);
    auto zsh = cli.run({"completion", "zsh"});
    ASSERT_EQ(zsh.exit_code, 0) << zsh.err;
    dir.write("completions/_runbook", zsh.out);
    dir.write("runbook.lua", "return { targets = {} }\n");
  }

  std::map<std::string, std::string> env() const {
    auto e = cli.env();
    e["RUNBOOK_PATH"] = std::string(RUNBOOK_SOURCE_DIR) + "/runbooks";
    return e;
  }

  /// What bash's completion offers for the words typed so far (the last one being completed).
  std::vector<std::string> bash_complete(std::vector<std::string> words) const {
    rb::shell::process_options o;
    o.argv = {"bash", "--norc", "--noprofile", "-c",
              "source \"$1\" || exit 9; shift; COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1));"
              " _runbook \"${COMP_WORDS[0]}\" \"${COMP_WORDS[COMP_CWORD]}\"; printf '%s\\n' \"${COMPREPLY[@]}\"",
              "bash", (dir.path() / "completions/runbook").string(), RUNBOOK_BINARY};
    o.argv.insert(o.argv.end(), words.begin(), words.end());
    o.cwd = dir.path();
    o.env = env();
    o.timeout = std::chrono::seconds(60);
    auto r = rb::shell::run(o);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> out;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) out.push_back(line);
    return out;
  }

  static bool has(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  }

  temp_dir dir{"rb-completion"};
  cli_sandbox cli{dir.path()};
};

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += s + " ";
  return out;
}

TEST_F(Completion, BashCompletesACommandFromItsFirstLetters) {
  EXPECT_EQ(bash_complete({"reh"}), std::vector<std::string>{"rehearse"});
  auto r = bash_complete({"r"});
  for (const char* c : {"run", "resume", "rollback", "rehearse", "resolve"}) EXPECT_TRUE(has(r, c)) << c << ": " << joined(r);
  EXPECT_FALSE(has(r, "list"));
}

TEST_F(Completion, BashOffersEveryCommandOfTheHelp) {
  auto help = cli.run({"--help"});
  ASSERT_EQ(help.exit_code, 0);
  auto all = bash_complete({""});
  std::istringstream in(help.out.substr(help.out.find("Commands:")));
  std::string line;
  std::getline(in, line);
  int seen = 0;
  while (std::getline(in, line) && !line.empty()) {
    if (line.rfind("  ", 0) != 0 || line[2] == ' ') continue;
    std::string name = line.substr(2, line.find(' ', 2) - 2);
    EXPECT_TRUE(has(all, name)) << name << " is in --help but not completed";
    ++seen;
  }
  EXPECT_GE(seen, 15);
  EXPECT_TRUE(has(all, "completion"));
}

TEST_F(Completion, BashCompletesTheOptionsOfTheCommandBeingTyped) {
  EXPECT_EQ(bash_complete({"run", "--dry"}), std::vector<std::string>{"--dry-run"});
  EXPECT_EQ(bash_complete({"show", "--form"}), std::vector<std::string>{"--format"});
  auto incidents = bash_complete({"incidents", "--"});
  for (const char* o : {"--all", "--json", "--follow", "--help", "--state-dir"})
    EXPECT_TRUE(has(incidents, o)) << o << ": " << joined(incidents);
  EXPECT_FALSE(has(incidents, "--dry-run")) << "run's option offered for incidents";
}

TEST_F(Completion, BashCompletesRunbookNamesFromTheSearchPath) {
  EXPECT_EQ(bash_complete({"run", "demo.h"}), std::vector<std::string>{"demo.hello"});
  EXPECT_EQ(bash_complete({"rehearse", "--yes", "demo."}), std::vector<std::string>{"demo.hello"});
  auto migrations = bash_complete({"show", "migration."});
  EXPECT_FALSE(migrations.empty());
  for (const auto& m : migrations) EXPECT_EQ(m.rfind("migration.", 0), 0u) << m;
  // A runbook name only where the command takes one: run's second word is not one.
  EXPECT_TRUE(bash_complete({"run", "demo.hello", "demo."}).empty());
}

TEST_F(Completion, BashCompletesTheActionsOfAuditSandboxAndCompletion) {
  EXPECT_EQ(bash_complete({"audit", "v"}), std::vector<std::string>{"verify"});
  auto sandbox = bash_complete({"sandbox", ""});
  EXPECT_TRUE(has(sandbox, "list") && has(sandbox, "clean")) << joined(sandbox);
  EXPECT_EQ(bash_complete({"completion", "z"}), std::vector<std::string>{"zsh"});
}

TEST_F(Completion, BashCompletesFileNamesWhereAnOptionTakesAFile) {
  EXPECT_EQ(bash_complete({"run", "demo.hello", "--config", "runbook.l"}), std::vector<std::string>{"runbook.lua"});
  EXPECT_EQ(bash_complete({"check", "runbook.l"}), std::vector<std::string>{"runbook.lua"});
  // --param's value is not a file name.
  EXPECT_TRUE(bash_complete({"run", "demo.hello", "--param", "runbook.l"}).empty());
}

TEST_F(Completion, ZshScriptIsValidZsh) {
  if (!fs::exists("/usr/bin/zsh")) GTEST_SKIP() << "zsh is not installed (scripts/setup installs it)";
  rb::shell::process_options o;
  o.argv = {"zsh", "-n", (dir.path() / "completions/_runbook").string()};
  auto r = rb::shell::run(o);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
}

/// What zsh offers for `line` (ending in the word being completed), from the script in $fpath
/// through compinit, in an interactive zsh driven by tests/support/zsh_complete.zsh.
std::vector<std::string> zsh_complete(const fs::path& dir, const std::map<std::string, std::string>& env,
                                      const std::string& line) {
  rb::shell::process_options o;
  o.argv = {"zsh", "-f", std::string(RUNBOOK_SOURCE_DIR) + "/tests/support/zsh_complete.zsh",
            (dir / "completions").string(), line};
  o.cwd = dir;
  o.env = env;
  o.env["PATH"] = fs::path(RUNBOOK_BINARY).parent_path().string() + ":" + std::getenv("PATH");
  o.timeout = std::chrono::seconds(60);
  auto r = rb::shell::run(o);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> out;
  std::istringstream in(r.out);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

TEST_F(Completion, ZshCompletesThroughCompinitAsATerminalWould) {
  if (!fs::exists("/usr/bin/zsh")) GTEST_SKIP() << "zsh is not installed (scripts/setup installs it)";
  EXPECT_EQ(zsh_complete(dir.path(), env(), "runbook reh"), std::vector<std::string>{"rehearse"});
  EXPECT_EQ(zsh_complete(dir.path(), env(), "runbook run demo.h"), std::vector<std::string>{"demo.hello"});
  EXPECT_EQ(zsh_complete(dir.path(), env(), "runbook run --dry"), std::vector<std::string>{"--dry-run"});
  auto audit = zsh_complete(dir.path(), env(), "runbook audit ");
  EXPECT_TRUE(has(audit, "verify") && has(audit, "head")) << joined(audit);
  auto all = zsh_complete(dir.path(), env(), "runbook ");
  for (const char* c : {"list", "run", "rehearse", "incidents", "completion"}) EXPECT_TRUE(has(all, c)) << c << ": " << joined(all);
}

TEST_F(Completion, UnknownShellIsAUsageError) {
  auto r = cli.run({"completion", "fish"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("bash|zsh"), std::string::npos) << r.err;
}

}  // namespace
