// What a running process is doing with its files, read from /proc: the matter of a progress line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace rb::shell {

/// One regular file a process has open, and how far into it the process is.
struct file_activity {
  std::string path;
  std::uintmax_t position = 0;  ///< the descriptor's offset
  std::uintmax_t size = 0;      ///< the file's size now
  bool writing = false;         ///< opened for writing (a dump being written) rather than reading
};

/// The largest regular file process `pid` has open (files under /dev, /proc and /sys aside):
/// for pg_dump its output, for pg_restore or psql -f the file they read. nullopt when it has
/// none, or when /proc does not let us look (the process ended, another user's process).
std::optional<file_activity> busiest_file(int pid);

/// "14.2 MB written", or "37% of 14.2 MB read".
std::string describe(const file_activity& a);

/// "812 B", "14.2 kB", "3.1 MB", "1.2 GB" (powers of 1000).
std::string format_bytes(std::uintmax_t n);

}  // namespace rb::shell
