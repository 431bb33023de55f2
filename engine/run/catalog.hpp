// Finding runbooks: the search path, and name <-> file (names mirror paths).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace rb::run {

/// ./runbooks, then each directory of RUNBOOK_PATH (colon-separated), those that exist.
std::vector<std::filesystem::path> search_path();

/// A runbook's name is its path below a search directory, dots for slashes, without ".lua":
/// runbooks/migration/centralized.lua is "migration.centralized". Directories named "lib"
/// hold Lua modules for `require`, not runbooks.
std::string name_for(const std::filesystem::path& dir, const std::filesystem::path& file);

struct catalog_entry {
  std::string name;
  std::filesystem::path file;
};

/// Every runbook file on the search path, sorted by name; the first directory wins a name.
std::vector<catalog_entry> list_runbooks(const std::vector<std::filesystem::path>& dirs);

/// The file of the named runbook, or nullopt.
std::optional<std::filesystem::path> find_runbook(const std::vector<std::filesystem::path>& dirs,
                                                  const std::string& name);

/// find_runbook, or rb::error(usage) "no runbook named 'x' (did you mean 'y'?)".
std::filesystem::path require_runbook(const std::vector<std::filesystem::path>& dirs, const std::string& name);

}  // namespace rb::run
