// Finding runbooks on the search path.
#include "engine/run/catalog.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <set>

#include "engine/error.hpp"
#include "engine/util/text.hpp"

namespace rb::run {
namespace fs = std::filesystem;

std::vector<fs::path> search_path() {
  std::vector<fs::path> dirs;
  std::error_code ec;
  if (fs::is_directory("runbooks", ec)) dirs.emplace_back("runbooks");
  if (const char* p = std::getenv("RUNBOOK_PATH"); p && *p) {
    for (const auto& d : split(p, ':'))
      if (!d.empty() && fs::is_directory(d, ec)) dirs.emplace_back(d);
  }
  // An installed binary (PREFIX/bin/runbook) also finds the runbooks shipped with it, last.
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) {
    fs::path shipped = fs::path(std::string(buf, static_cast<std::size_t>(n))).parent_path() / ".." / "share" /
                       "runbook" / "runbooks";
    if (fs::is_directory(shipped, ec)) dirs.push_back(shipped.lexically_normal());
  }
  return dirs;
}

std::string name_for(const fs::path& dir, const fs::path& file) {
  fs::path rel = file.lexically_relative(dir);
  rel.replace_extension();
  std::string name;
  for (const auto& part : rel) {
    if (!name.empty()) name += '.';
    name += part.string();
  }
  return name;
}

std::vector<catalog_entry> list_runbooks(const std::vector<fs::path>& dirs) {
  std::vector<catalog_entry> out;
  std::set<std::string> seen;
  for (const auto& dir : dirs) {
    std::error_code ec;
    std::vector<catalog_entry> here;
    for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      // Hidden entries are never runbooks: a ConfigMap volume holds each file twice, once in
      // a hidden ..TIMESTAMP directory (and its ..data link).
      if (it->path().filename().string().rfind('.', 0) == 0) {
        if (it->is_directory()) it.disable_recursion_pending();
        continue;
      }
      if (it->is_directory() && it->path().filename() == "lib") {
        it.disable_recursion_pending();
        continue;
      }
      if (!it->is_regular_file() || it->path().extension() != ".lua") continue;
      here.push_back({name_for(dir, it->path()), it->path()});
    }
    for (auto& e : here)
      if (seen.insert(e.name).second) out.push_back(std::move(e));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

std::optional<fs::path> find_runbook(const std::vector<fs::path>& dirs, const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos || name.find("..") != std::string::npos) return std::nullopt;
  fs::path rel;
  for (const auto& part : split(name, '.')) {
    if (part.empty()) return std::nullopt;
    rel /= part;
  }
  rel += ".lua";
  for (const auto& dir : dirs) {
    std::error_code ec;
    fs::path candidate = dir / rel;
    if (fs::is_regular_file(candidate, ec)) return candidate;
  }
  return std::nullopt;
}

fs::path require_runbook(const std::vector<fs::path>& dirs, const std::string& name) {
  if (auto f = find_runbook(dirs, name)) return *f;
  std::vector<std::string> names;
  for (const auto& e : list_runbooks(dirs)) names.push_back(e.name);
  std::string where = dirs.empty() ? " (no ./runbooks directory here and RUNBOOK_PATH is empty)" : "";
  throw error(error_kind::usage, "no runbook named '" + name + "'" + did_you_mean(name, names) + where +
                                     "; 'runbook list' shows them all");
}

}  // namespace rb::run
