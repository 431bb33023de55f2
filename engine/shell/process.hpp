// Runs a child process without a shell: spawn, feed stdin, drain stdout/stderr, time out, kill its group.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rb::shell {

/// What to run and how. Only `argv` is required.
struct process_options {
  /// The program and its arguments. argv[0] is looked up in the child's PATH (from `env`, else
  /// the inherited one, else /usr/local/bin:/usr/bin:/bin) when it contains no '/'.
  std::vector<std::string> argv{};
  /// Working directory of the child; the caller's when unset.
  std::optional<std::filesystem::path> cwd{};
  /// Variables added to, or overriding, the inherited environment.
  std::map<std::string, std::string> env{};
  /// Start from an empty environment (plus `env`) instead of the inherited one.
  bool clear_env = false;
  /// Written to the child's stdin, which is then closed; stdin is /dev/null when unset. A child
  /// that exits or closes stdin before reading it all is not an error.
  std::optional<std::string> stdin_data{};
  /// 0 = none. On expiry the child's whole process group gets SIGTERM, then SIGKILL after a 2 s
  /// grace.
  std::chrono::milliseconds timeout{0};
  /// Bytes of each stream kept in the result: the tail is kept, the total is counted.
  std::size_t output_limit = 1 << 20;
  /// When running as root: switch to this user (its groups, gid, uid) before exec. HOME, USER
  /// and LOGNAME become the user's unless `clear_env` or `env` says otherwise. When not root,
  /// naming the current user is accepted and any other user is an error.
  std::optional<std::string> run_as_user{};
  /// Returning true kills the child's process group as a timeout does. Polled about every
  /// 50 ms while the child runs, or, with `cancel_fd`, asked whenever that descriptor is readable.
  std::function<bool()> cancelled{};
  /// A descriptor that becomes readable when `cancelled` may have turned true (a run's stop
  /// token, run::stop_source::wake_fd): the wait wakes at once instead of polling. -1: none.
  int cancel_fd = -1;
  /// Called with each chunk of output as it is read, before it is trimmed to `output_limit`.
  std::function<void(std::string_view chunk, bool is_stderr)> on_output{};
  /// Called about every `tick_every` while the child runs (until it is being stopped), on the
  /// caller's thread, with the child's pid and the time since it started: for progress lines.
  std::function<void(int pid, std::chrono::milliseconds elapsed)> on_tick{};
  std::chrono::milliseconds tick_every{250};
};

/// How a child process ended and what it wrote.
struct process_result {
  int exit_code = -1;          ///< exit status, or -1 when killed by a signal
  int term_signal = 0;         ///< signal that ended it, 0 if none
  bool timed_out = false;      ///< the timeout expired and the process group was killed
  bool cancelled = false;      ///< `cancelled` returned true and the process group was killed
  std::string out{}, err{};    ///< tails of stdout and stderr, at most output_limit bytes each
  std::size_t out_total = 0;   ///< bytes written to stdout in all
  std::size_t err_total = 0;   ///< bytes written to stderr in all
  std::chrono::milliseconds duration{0};  ///< from spawn until run() returned

  /// True when the process exited by itself with status 0.
  bool ok() const noexcept { return exit_code == 0 && !timed_out && !cancelled; }
};

/// Runs a program to completion, no shell involved. The child runs in its own process group
/// with stdin from `stdin_data` or /dev/null, stdout and stderr captured, default signal
/// dispositions, an empty signal mask and no descriptors other than 0, 1 and 2.
///
/// Returns once the child has been reaped and its pipes have reached end-of-file. Descendants
/// that outlive a normally exiting child are left alone; if they keep its pipes open, reading
/// stops 100 ms after the child exited. After a timeout or cancel, the whole process group is
/// waited for (and SIGKILLed after the grace), so grandchildren die too.
///
/// A non-zero exit is not an exception: check the result. Throws rb::error (kind shell)
/// "unable to start 'argv0': ..." when the program cannot be started (not found, not
/// executable, no such user or working directory).
process_result run(const process_options& options);

}  // namespace rb::shell
