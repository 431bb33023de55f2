// Finding the shipped annotations, templates and luacheck configuration (see share_files.hpp).
#include "bindings/cli/share_files.hpp"

#include <unistd.h>

#include <cstdlib>
#include <string>

namespace rb::cli {
namespace fs = std::filesystem;

namespace {

/// PREFIX/share/runbook as cmake --install lays it out.
share_files installed(const fs::path& dir) {
  return {dir / "annotations", dir / "templates", dir / "luacheckrc"};
}

}  // namespace

share_files find_share_files() {
  if (const char* e = std::getenv("RUNBOOK_SHARE"); e && *e) return installed(e);
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) {
    fs::path dir = fs::path(std::string(buf, static_cast<std::size_t>(n))).parent_path() / ".." / "share" / "runbook";
    std::error_code ec;
    if (fs::is_directory(dir / "templates", ec)) return installed(dir.lexically_normal());
  }
  fs::path source = RUNBOOK_SOURCE_ROOT;
  return {source / "share" / "annotations", source / "share" / "templates", source / ".luacheckrc"};
}

}  // namespace rb::cli
