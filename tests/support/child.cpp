// Runs a piece of test code in a forked child with a time limit.
#include "tests/support/child.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>

#include "engine/util/text.hpp"

namespace rb::testing {
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

child_report in_child(const std::function<std::vector<std::string>()>& body, std::chrono::milliseconds limit) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
  std::fflush(nullptr);
  auto start = steady::now();
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::close(fds[0]);
    std::string text;
    try {
      text = rb::join(body(), "\n");
    } catch (const std::exception& e) {
      text = std::string("exception: ") + e.what();
    }
    for (std::size_t done = 0; done < text.size();) {
      ssize_t n = ::write(fds[1], text.data() + done, text.size() - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  child_report report;
  std::string text;
  bool eof = false;
  while (!eof) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(start + limit - steady::now());
    if (left <= 0ms) break;
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) eof = true;
    else text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  if (!eof) ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  report.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start);
  report.finished = eof && WIFEXITED(status);
  if (WIFSIGNALED(status) && eof) report.signal = WTERMSIG(status);
  if (WIFEXITED(status)) report.exit_code = WEXITSTATUS(status);
  if (!text.empty()) report.lines = rb::split(text, '\n');
  return report;
}

}  // namespace rb::testing
