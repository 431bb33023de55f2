// Tests for engine/shell/process: running children without a shell, timeouts and cancelling.
#include "engine/shell/process.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "engine/error.hpp"

namespace {

using namespace std::chrono_literals;
using rb::shell::process_options;
using rb::shell::process_result;
using rb::shell::run;

process_result sh(const std::string& script, process_options opts = {}) {
  opts.argv = {"sh", "-c", script};
  return run(opts);
}

/// A scratch directory removed at the end of the test.
class scratch_dir {
 public:
  scratch_dir() {
    std::string templ = (std::filesystem::temp_directory_path() / "rb-process-test-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    m_path = templ;
  }
  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(m_path, ec);
  }
  const std::filesystem::path& path() const { return m_path; }

 private:
  std::filesystem::path m_path;
};

/// Alive means present in /proc and not a zombie: an orphan's zombie may never be reaped when
/// PID 1 does not reap (containers), but it no longer runs.
bool process_alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  auto paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] != 'Z' &&
         line[paren + 2] != 'X';
}

TEST(Process, CapturesExitCodeAndBothStreams) {
  auto r = sh("echo out; echo err >&2; exit 3");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.term_signal, 0);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_EQ(r.out_total, 4u);
  EXPECT_EQ(r.err_total, 4u);
  EXPECT_FALSE(r.timed_out);
  EXPECT_FALSE(r.cancelled);
  EXPECT_FALSE(r.ok());
}

TEST(Process, PassesArgumentsWithoutAShell) {
  auto r = run({.argv = {"printf", "%s|", "a b", "$HOME", "*"}});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.out, "a b|$HOME|*|");
}

TEST(Process, PassesStdinToTheChild) {
  auto r = run({.argv = {"cat"}, .stdin_data = "hello\nworld\n"});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.out, "hello\nworld\n");
}

TEST(Process, StreamsLargeStdinAndOutputWithoutDeadlock) {
  std::string big(3 << 20, 'x');
  for (std::size_t i = 0; i < big.size(); i += 4096) big[i] = '\n';
  process_options opts{.argv = {"sh", "-c", "tee /dev/stderr"}, .stdin_data = big};
  opts.output_limit = big.size();
  auto r = run(opts);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.out_total, big.size());
  EXPECT_EQ(r.err_total, big.size());
  EXPECT_TRUE(r.out == big);
}

TEST(Process, GivesTheChildDevNullWhenThereIsNoStdin) {
  auto r = run({.argv = {"cat"}, .timeout = 5s});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.out, "");
}

TEST(Process, SurvivesAChildThatStopsReadingStdin) {
  auto r = run({.argv = {"head", "-c", "5"}, .stdin_data = std::string(8 << 20, 'y')});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.out, "yyyyy");
}

TEST(Process, AddsAndOverridesEnvironmentVariables) {
  ::setenv("RB_PROCESS_TEST_INHERITED", "inherited", 1);
  auto r = sh("echo $RB_PROCESS_TEST_INHERITED $RB_PROCESS_TEST_ADDED",
              {.env = {{"RB_PROCESS_TEST_ADDED", "added"}}});
  EXPECT_EQ(r.out, "inherited added\n");
  r = sh("echo $RB_PROCESS_TEST_INHERITED", {.env = {{"RB_PROCESS_TEST_INHERITED", "overridden"}}});
  EXPECT_EQ(r.out, "overridden\n");
  ::unsetenv("RB_PROCESS_TEST_INHERITED");
}

TEST(Process, StartsFromAnEmptyEnvironmentWhenAsked) {
  auto r = run({.argv = {"/usr/bin/env"}, .env = {{"ONLY", "this"}}, .clear_env = true});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.out, "ONLY=this\n");
}

TEST(Process, LooksProgramsUpInTheChildsPath) {
  scratch_dir dir;
  auto tool = dir.path() / "rb-only-here";
  std::ofstream(tool) << "#!/bin/sh\necho found me\n";
  std::filesystem::permissions(tool, std::filesystem::perms::owner_all);
  auto r = run({.argv = {"rb-only-here"}, .env = {{"PATH", dir.path().string() + ":/usr/bin:/bin"}}});
  EXPECT_EQ(r.out, "found me\n");
}

TEST(Process, RunsInTheGivenDirectory) {
  scratch_dir dir;
  auto r = run({.argv = {"pwd"}, .cwd = dir.path()});
  EXPECT_EQ(r.out, std::filesystem::canonical(dir.path()).string() + "\n");
}

TEST(Process, ThrowsNamingAMissingBinary) {
  try {
    run({.argv = {"rb-no-such-binary-here", "x"}});
    FAIL() << "expected rb::error";
  } catch (const rb::error& e) {
    EXPECT_EQ(e.kind(), rb::error_kind::shell);
    EXPECT_NE(std::string(e.what()).find("unable to start 'rb-no-such-binary-here'"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(run({.argv = {"/nonexistent/rb-tool"}}), rb::error);
  EXPECT_THROW(run({.argv = {}}), rb::error);
}

TEST(Process, ThrowsNamingAMissingWorkingDirectory) {
  try {
    run({.argv = {"true"}, .cwd = "/nonexistent/rb-dir"});
    FAIL() << "expected rb::error";
  } catch (const rb::error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/rb-dir"), std::string::npos) << e.what();
  }
}

TEST(Process, ReportsTheSignalThatEndedIt) {
  auto r = sh("kill -KILL $$");
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_EQ(r.term_signal, SIGKILL);
}

TEST(Process, RunsTheChildInItsOwnProcessGroup) {
  auto r = sh("echo $$; cut -d' ' -f5 /proc/$$/stat");
  auto nl = r.out.find('\n');
  ASSERT_NE(nl, std::string::npos);
  EXPECT_EQ(r.out.substr(0, nl + 1), r.out.substr(nl + 1));
  EXPECT_NE(r.out.substr(0, nl), std::to_string(::getpgrp()));
}

TEST(Process, LeaksNoDescriptorsIntoTheChild) {
  int leaky = ::open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
  ASSERT_GE(leaky, 0);
  auto r = sh("ls /proc/$$/fd");
  EXPECT_EQ(r.out, "0\n1\n2\n");
  if (::geteuid() == 0) {  // the fork path, used to switch users
    r = sh("ls /proc/$$/fd", {.run_as_user = "nobody"});
    EXPECT_EQ(r.out, "0\n1\n2\n") << r.err;
  }
  ::close(leaky);
}

TEST(Process, ResetsIgnoredSignalsInTheChild) {
  struct sigaction ignore {}, saved{};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &saved);
  auto r = sh("yes | head -c 4");
  ::sigaction(SIGPIPE, &saved, nullptr);
  EXPECT_EQ(r.out, "y\ny\n");
  EXPECT_EQ(r.err, "");  // an ignored SIGPIPE would make yes complain about a broken pipe
}

TEST(Process, KillsGrandchildrenOnTimeout) {
  scratch_dir dir;
  auto pidfile = dir.path() / "pid";
  auto before = std::chrono::steady_clock::now();
  auto r = sh("sleep 30 & echo $! > '" + pidfile.string() + "'; wait", {.timeout = 300ms});
  auto took = std::chrono::steady_clock::now() - before;
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_EQ(r.term_signal, SIGTERM);
  EXPECT_LT(took, 1500ms);
  EXPECT_GE(r.duration, 300ms);
  pid_t grandchild = 0;
  std::ifstream(pidfile) >> grandchild;
  ASSERT_GT(grandchild, 0);
  EXPECT_FALSE(process_alive(grandchild));
}

TEST(Process, EscalatesToSigkillWhenSigtermIsIgnored) {
  auto before = std::chrono::steady_clock::now();
  auto r = sh("trap '' TERM; sleep 30 & wait", {.timeout = 100ms});
  auto took = std::chrono::steady_clock::now() - before;
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.term_signal, SIGKILL);
  EXPECT_GE(took, 2s);
  EXPECT_LT(took, 4s);
}

TEST(Process, KeepsTheTailOfLargeOutputAndCountsTheTotal) {
  // 100000 bytes of 'a', then a 10-byte marker; only the last 1000 bytes are kept.
  auto r = sh("head -c 100000 /dev/zero | tr '\\0' a; printf 0123456789; head -c 50000 /dev/zero >&2",
              {.output_limit = 1000});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.out_total, 100010u);
  EXPECT_EQ(r.err_total, 50000u);
  ASSERT_EQ(r.out.size(), 1000u);
  EXPECT_EQ(r.out.substr(990), "0123456789");
  EXPECT_EQ(r.out.substr(0, 990), std::string(990, 'a'));
  EXPECT_EQ(r.err.size(), 1000u);
}

TEST(Process, StreamsOutputToTheCallbackAsItArrives) {
  std::string seen_out, seen_err;
  process_options opts{.argv = {"sh", "-c", "echo one; echo two >&2; echo three"}};
  opts.output_limit = 0;
  opts.on_output = [&](std::string_view chunk, bool is_stderr) {
    (is_stderr ? seen_err : seen_out).append(chunk);
  };
  auto r = run(opts);
  EXPECT_EQ(seen_out, "one\nthree\n");
  EXPECT_EQ(seen_err, "two\n");
  EXPECT_EQ(r.out, "");  // nothing kept with a zero limit
  EXPECT_EQ(r.out_total, 10u);
}

TEST(Process, KillsTheProcessGroupWhenCancelled) {
  scratch_dir dir;
  auto pidfile = dir.path() / "pid";
  std::atomic<bool> stop{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(200ms);
    stop = true;
  });
  auto before = std::chrono::steady_clock::now();
  process_options opts{.argv = {"sh", "-c", "sleep 30 & echo $! > '" + pidfile.string() + "'; wait"}};
  opts.cancelled = [&] { return stop.load(); };
  auto r = run(opts);
  auto took = std::chrono::steady_clock::now() - before;
  canceller.join();
  EXPECT_TRUE(r.cancelled);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_LT(took, 1500ms);
  pid_t grandchild = 0;
  std::ifstream(pidfile) >> grandchild;
  ASSERT_GT(grandchild, 0);
  EXPECT_FALSE(process_alive(grandchild));
}

TEST(Process, KillsTheChildWhenACallbackThrows) {
  scratch_dir dir;
  auto pidfile = dir.path() / "pid";
  process_options opts{.argv = {"sh", "-c", "echo $$ > '" + pidfile.string() + "'; echo go; sleep 30"}};
  opts.on_output = [](std::string_view, bool) { throw std::runtime_error("callback failed"); };
  EXPECT_THROW(run(opts), std::runtime_error);
  pid_t child = 0;
  std::ifstream(pidfile) >> child;
  ASSERT_GT(child, 0);
  EXPECT_FALSE(process_alive(child));
}

TEST(Process, DoesNotWaitForDescendantsThatOutliveANormalExit) {
  auto before = std::chrono::steady_clock::now();
  auto r = sh("sleep 3 & echo started");
  auto took = std::chrono::steady_clock::now() - before;
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.out, "started\n");
  EXPECT_LT(took, 1s);
}

TEST(Process, RunsAsAnotherUserWhenRoot) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  passwd* nobody = ::getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  auto r = sh("id -u; id -g; id -G; echo $HOME $USER", {.run_as_user = "nobody"});
  ASSERT_TRUE(r.ok()) << r.err;
  std::string uid = std::to_string(nobody->pw_uid), gid = std::to_string(nobody->pw_gid);
  EXPECT_EQ(r.out, uid + "\n" + gid + "\n" + gid + "\n" + nobody->pw_dir + " nobody\n");
}

TEST(Process, RefusesAnUnknownUser) {
  try {
    run({.argv = {"true"}, .run_as_user = "rb-no-such-user"});
    FAIL() << "expected rb::error";
  } catch (const rb::error& e) {
    EXPECT_NE(std::string(e.what()).find("rb-no-such-user"), std::string::npos) << e.what();
  }
}

TEST(Process, ReportsExecFailureAfterSwitchingUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  scratch_dir dir;  // 0700 root: nobody cannot enter it
  auto tool = dir.path() / "tool";
  std::ofstream(tool) << "#!/bin/sh\n";
  std::filesystem::permissions(tool, std::filesystem::perms::owner_all);
  EXPECT_THROW(run({.argv = {tool.string()}, .run_as_user = "nobody"}), rb::error);
  EXPECT_THROW(run({.argv = {"true"}, .cwd = dir.path(), .run_as_user = "nobody"}), rb::error);
}

}  // namespace
