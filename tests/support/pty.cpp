// Running the real runbook binary on a pseudo-terminal.
#include "tests/support/pty.hpp"

#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace rb::testing {

pty_result run_on_pty(const cli_sandbox& cli, const std::vector<std::string>& args,
                      std::map<std::string, std::string> extra, std::chrono::seconds limit) {
  auto env = cli.env();
  env["TERM"] = "xterm";
  for (auto& [k, v] : extra) env[k] = v;
  winsize ws{};
  ws.ws_row = 40;
  ws.ws_col = 120;
  int master = -1;
  pid_t pid = ::forkpty(&master, nullptr, nullptr, &ws);
  pty_result res;
  if (pid < 0) return res;
  if (pid == 0) exec_runbook(cli.dir(), env, args);
  auto until = std::chrono::steady_clock::now() + limit;
  int status = 0;
  bool reaped = false, killed = false;
  char buf[4096];
  for (;;) {
    if (!reaped && ::waitpid(pid, &status, WNOHANG) == pid) reaped = true;
    pollfd p{master, POLLIN, 0};
    int ready = ::poll(&p, 1, reaped ? 50 : 100);  // once reaped: what is still buffered, then stop
    if (ready > 0) {
      ssize_t n = ::read(master, buf, sizeof buf);
      if (n > 0) {
        res.output.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      // EOF or EIO: every slave descriptor is closed, the program is gone or going.
      if (!reaped) ::waitpid(pid, &status, 0);
      reaped = true;
      break;
    }
    if (ready == 0 && reaped) break;
    if (!reaped && std::chrono::steady_clock::now() > until) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      reaped = killed = true;
    }
  }
  ::close(master);
  if (killed) res.exit_code = -2;
  else if (WIFEXITED(status)) res.exit_code = WEXITSTATUS(status);
  else res.exit_code = -1;
  return res;
}

}  // namespace rb::testing
