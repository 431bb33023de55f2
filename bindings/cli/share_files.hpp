// Where the files runbook ships beside its stdlib are: LuaLS annotations, `runbook new`'s
// templates, the luacheck configuration.
#pragma once

#include <filesystem>

namespace rb::cli {

struct share_files {
  std::filesystem::path annotations;  ///< LuaLS definition files (---@meta)
  std::filesystem::path templates;    ///< `runbook new` skeletons: KIND.lua and KIND.sql
  std::filesystem::path luacheckrc;   ///< the .luacheckrc `runbook init` writes
};

/// $RUNBOOK_SHARE (laid out as installed), else <exe dir>/../share/runbook when it holds the
/// templates (an installed binary), else the source tree (share/ and .luacheckrc).
share_files find_share_files();

}  // namespace rb::cli
