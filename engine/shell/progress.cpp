// What a running process is doing with its files, read from /proc.
#include "engine/shell/progress.hpp"

#include <fcntl.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace rb::shell {
namespace fs = std::filesystem;

std::optional<file_activity> busiest_file(int pid) {
  std::error_code ec;
  fs::path proc = fs::path("/proc") / std::to_string(pid);
  fs::directory_iterator it(proc / "fd", ec);
  if (ec) return std::nullopt;
  std::optional<file_activity> best;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    fs::path target = fs::read_symlink(it->path(), ec);
    if (ec || !target.is_absolute()) continue;  // pipe:[..], socket:[..], anon_inode:..
    std::string t = target.string();
    if (t.rfind("/dev/", 0) == 0 || t.rfind("/proc/", 0) == 0 || t.rfind("/sys/", 0) == 0) continue;
    auto st = fs::status(it->path(), ec);  // follows the link: the open file itself
    if (ec || !fs::is_regular_file(st)) continue;
    std::uintmax_t size = fs::file_size(it->path(), ec);
    if (ec) continue;
    std::ifstream info(proc / "fdinfo" / it->path().filename());
    std::uintmax_t pos = 0;
    unsigned long flags = 0;
    for (std::string line; std::getline(info, line);) {
      if (line.rfind("pos:", 0) == 0) pos = std::stoull(line.substr(4));
      else if (line.rfind("flags:", 0) == 0) flags = std::stoul(line.substr(6), nullptr, 8);
    }
    file_activity a{t, pos, size, (flags & O_ACCMODE) != O_RDONLY};
    if (!best || a.size > best->size) best = std::move(a);
  }
  return best;
}

std::string format_bytes(std::uintmax_t n) {
  if (n < 1000) return std::to_string(n) + " B";
  const char* units[] = {"kB", "MB", "GB", "TB"};
  double v = static_cast<double>(n);
  int u = -1;
  while (v >= 1000 && u < 3) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

std::string describe(const file_activity& a) {
  if (a.writing) return format_bytes(a.size) + " written";
  std::uintmax_t pct = a.size ? a.position * 100 / a.size : 0;
  return std::to_string(pct > 100 ? 100 : pct) + "% of " + format_bytes(a.size) + " read";
}

}  // namespace rb::shell
