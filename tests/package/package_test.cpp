// The Debian package, for real: cpack builds runbook_<version>_amd64.deb, lintian finds no error
// in it, apt-get installs it with its dependencies, the installed runbook answers --version, has
// a man page and completions, runs demo.hello from /usr/bin, and apt-get removes it again.
#include <gtest/gtest.h>

#include <unistd.h>

#include <sstream>

#include "engine/shell/process.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using rb::testing::temp_dir;

const std::string k_deb_name = std::string("runbook_") + RUNBOOK_VERSION + "_amd64.deb";

rb::shell::process_result run(std::vector<std::string> argv, std::map<std::string, std::string> env = {},
                              std::optional<fs::path> cwd = std::nullopt, std::chrono::seconds limit = std::chrono::seconds(300)) {
  rb::shell::process_options o;
  o.argv = std::move(argv);
  o.env = std::move(env);
  o.cwd = std::move(cwd);
  o.timeout = limit;
  return rb::shell::run(o);
}

bool has_line_starting(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(prefix, 0) == 0) return true;
  return false;
}

/// "installed" when dpkg has the runbook package installed, else what dpkg says (or "").
std::string dpkg_status() {
  auto r = run({"dpkg-query", "-W", "-f=${db:Status-Status}", "runbook"});
  return r.exit_code == 0 ? r.out : "";
}

/// Builds the package from this build directory with cpack, into `dir`; returns its path.
fs::path build_package(const fs::path& dir) {
  auto r = run({"cpack", "--config", std::string(RUNBOOK_BUILD_DIR) + "/CPackConfig.cmake", "-G", "DEB", "-B", dir.string()},
               {}, dir, std::chrono::seconds(600));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  return dir / k_deb_name;
}

/// apt-get, waiting for the dpkg lock another installer may hold.
rb::shell::process_result apt_get(std::vector<std::string> args, const fs::path& cwd) {
  std::vector<std::string> argv{"apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=600"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, {{"DEBIAN_FRONTEND", "noninteractive"}}, cwd, std::chrono::seconds(900));
}

TEST(Package, HoldsEverythingWhereDebianWantsItAndLintianFindsNoError) {
  temp_dir dir{"rb-package"};
  fs::path deb = build_package(dir.path());
  ASSERT_TRUE(fs::exists(deb)) << "no " << k_deb_name;

  auto contents = run({"dpkg-deb", "--contents", deb.string()});
  ASSERT_EQ(contents.exit_code, 0) << contents.err;
  for (const char* file : {"./usr/bin/runbook", "./usr/share/runbook/stdlib/", "./usr/share/runbook/runbooks/demo/hello.lua",
                           "./usr/share/man/man1/runbook.1.gz", "./usr/share/bash-completion/completions/runbook",
                           "./usr/share/zsh/vendor-completions/_runbook", "./usr/lib/systemd/system/runbook-scheduler.service",
                           "./usr/lib/systemd/system/runbook-schedule.timer", "./usr/lib/sysusers.d/runbook.conf",
                           "./usr/share/doc/runbook/copyright", "./usr/share/doc/runbook/changelog.gz"})
    EXPECT_NE(contents.out.find(std::string(" ") + file + "\n"), std::string::npos) << file << " missing:\n" << contents.out;
  EXPECT_EQ(contents.out.find("/usr/local"), std::string::npos) << contents.out;

  auto control = run({"dpkg-deb", "--field", deb.string(), "Package", "Version", "Architecture", "Depends"});
  ASSERT_EQ(control.exit_code, 0) << control.err;
  EXPECT_NE(control.out.find(std::string("Version: ") + RUNBOOK_VERSION + "\n"), std::string::npos) << control.out;
  EXPECT_NE(control.out.find("Architecture: amd64"), std::string::npos) << control.out;
  for (const char* dep : {"libc6", "libluajit", "libpqxx", "libcurl", "postgresql-client-15"})
    EXPECT_NE(control.out.find(dep), std::string::npos) << dep << " not in Depends:\n" << control.out;

  // The installed units run the installed binary.
  auto unit = run({"sh", "-c", "dpkg-deb --fsys-tarfile \"$1\" | tar -xO ./usr/lib/systemd/system/runbook-scheduler.service",
                   "sh", deb.string()});
  EXPECT_NE(unit.out.find("ExecStart=/usr/bin/runbook schedule "), std::string::npos) << unit.out << unit.err;

  // lintian's scratch files (mldbm-elf-*) go to TMPDIR: the test's own dir, removed with it.
  auto lintian = run({"lintian", "--allow-root", "--no-cfg", deb.string()}, {{"TMPDIR", dir.path().string()}},
                     dir.path(), std::chrono::seconds(600));
  EXPECT_FALSE(has_line_starting(lintian.out, "E: ")) << lintian.out << lintian.err;
  EXPECT_TRUE(lintian.exit_code == 0 || !has_line_starting(lintian.out, "E: ")) << lintian.out << lintian.err;
  ::testing::Test::RecordProperty("lintian", lintian.out);
  std::cout << "lintian:\n" << (lintian.out.empty() ? "(nothing to say)\n" : lintian.out);
}

/// Removes the package at the end of the test, whatever happened in between.
struct remove_when_done {
  fs::path cwd;
  ~remove_when_done() {
    if (dpkg_status() == "installed" || dpkg_status() == "config-files") apt_get({"purge", "runbook"}, cwd);
  }
};

TEST(Package, InstallsWithAptRunsFromUsrBinAndIsRemovedAgain) {
  if (::geteuid() != 0) GTEST_SKIP() << "installing a package needs root (CI runs the tests as root)";
  if (dpkg_status() == "installed") GTEST_SKIP() << "a runbook package is installed here already; not replacing it";
  temp_dir dir{"rb-package"};
  fs::path deb = build_package(dir.path());
  ASSERT_TRUE(fs::exists(deb));

  remove_when_done guard{dir.path()};
  // "./" makes apt-get take the file, and install what it depends on from the archive.
  auto install = apt_get({"install", "./" + k_deb_name}, dir.path());
  ASSERT_EQ(install.exit_code, 0) << install.out << install.err;
  EXPECT_EQ(dpkg_status(), "installed");

  auto version = run({"/usr/bin/runbook", "--version"});
  EXPECT_EQ(version.exit_code, 0) << version.err;
  EXPECT_EQ(version.out, std::string("runbook ") + RUNBOOK_VERSION + "\n");

  auto man = run({"man", "runbook"}, {{"MANPAGER", "cat"}, {"MANWIDTH", "100"}, {"LC_ALL", "C"}});
  EXPECT_EQ(man.exit_code, 0) << man.err;
  for (const char* text : {"run PostgreSQL operations as audited, resumable Lua runbooks", "SYNOPSIS", "rehearse NAME",
                           "COMMANDS AND THEIR OPTIONS", "runbook run", "--dry-run", "/usr/share/runbook/runbooks"})
    EXPECT_NE(man.out.find(text), std::string::npos) << text << " not in man runbook:\n" << man.out;

  // The installed units run the installed binary and name the installed man page; systemd
  // accepts them without a word (they are installed, not enabled).
  auto units = run({"systemd-analyze", "verify", "/usr/lib/systemd/system/runbook-scheduler.service",
                    "/usr/lib/systemd/system/runbook-schedule.service", "/usr/lib/systemd/system/runbook-schedule.timer"},
                   {}, dir.path());
  EXPECT_EQ(units.exit_code, 0) << units.out << units.err;
  EXPECT_EQ(units.out + units.err, "");
  EXPECT_NE(run({"systemctl", "is-enabled", "runbook-scheduler.service"}).out, "enabled\n");

  // From an empty directory, with a state dir of its own: the shipped runbooks and the stdlib
  // come from /usr/share/runbook.
  temp_dir work{"rb-package-run"};
  fs::create_directories(work.path() / "state");
  auto hello = run({"/usr/bin/runbook", "run", "demo.hello", "--param", "who=debian"},
                   {{"RUNBOOK_STATE_DIR", (work.path() / "state").string()}, {"RUNBOOK_PATH", ""}, {"RUNBOOK_STDLIB", ""},
                    {"NO_COLOR", "1"}},
                   work.path());
  EXPECT_EQ(hello.exit_code, 0) << hello.out << hello.err;
  EXPECT_NE((hello.out + hello.err).find("hello, debian"), std::string::npos) << hello.out << hello.err;
  EXPECT_TRUE(fs::exists(work.path() / "state" / "audit.jsonl"));
  auto verify = run({"/usr/bin/runbook", "audit", "verify"}, {{"RUNBOOK_STATE_DIR", (work.path() / "state").string()}},
                    work.path());
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;

  // The installed bash completion completes from the installed binary.
  auto completes = run({"bash", "--norc", "-c",
                        "source /usr/share/bash-completion/completions/runbook; COMP_WORDS=(runbook run demo.h); "
                        "COMP_CWORD=2; _runbook runbook; printf '%s\\n' \"${COMPREPLY[@]}\""},
                       {{"RUNBOOK_PATH", ""}}, work.path());
  EXPECT_EQ(completes.out, "demo.hello\n") << completes.err;

  auto remove = apt_get({"remove", "runbook"}, dir.path());
  EXPECT_EQ(remove.exit_code, 0) << remove.out << remove.err;
  EXPECT_FALSE(fs::exists("/usr/bin/runbook"));
  EXPECT_FALSE(fs::exists("/usr/share/runbook"));
  EXPECT_FALSE(fs::exists("/usr/lib/systemd/system/runbook-scheduler.service"));
  EXPECT_NE(dpkg_status(), "installed");
}

}  // namespace
