// Real HTTP and SMTP receivers for the alert tests (see receiver.hpp).
#include "tests/support/receiver.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>
#include <thread>

namespace rb::testing {

receiver::receiver(kind k, const std::filesystem::path& dir, std::vector<std::string> args) : m_kind(k) {
  static int serial = 0;
  m_record = dir / ("received-" + std::to_string(::getpid()) + "-" + std::to_string(++serial) + ".jsonl");
  std::string script = std::string(RUNBOOK_SOURCE_DIR) + "/tests/support/" +
                       (k == kind::http ? "http_receiver.py" : "smtp_receiver.py");
  std::vector<std::string> argv{"python3", script, "--record", m_record.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
  m_pid = ::fork();
  if (m_pid < 0) throw std::runtime_error("fork failed");
  if (m_pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    ::setpgid(0, 0);
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    ::execvp("python3", cargv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string line;
  char c;
  while (::read(fds[0], &c, 1) == 1 && c != '\n') line += c;
  ::close(fds[0]);
  if (line.rfind("PORT ", 0) != 0) {
    ::kill(m_pid, SIGKILL);
    ::waitpid(m_pid, nullptr, 0);
    throw std::runtime_error("the receiver did not start: '" + line + "'");
  }
  m_port = std::stoi(line.substr(5));
}

receiver::~receiver() {
  if (m_pid > 0) {
    ::kill(m_pid, SIGKILL);
    ::waitpid(m_pid, nullptr, 0);
  }
}

std::string receiver::url(const std::string& path) const {
  if (m_kind == kind::smtp) return "smtp://127.0.0.1:" + std::to_string(m_port);
  return "http://127.0.0.1:" + std::to_string(m_port) + path;
}

std::vector<nlohmann::json> receiver::requests() const {
  std::vector<nlohmann::json> out;
  std::ifstream in(m_record);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      out.push_back(nlohmann::json::parse(line));
    } catch (const std::exception&) {
      break;  // a line being written
    }
  }
  return out;
}

bool receiver::wait_for(std::size_t n, std::chrono::milliseconds limit) const {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (requests().size() >= n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return requests().size() >= n;
}

}  // namespace rb::testing
