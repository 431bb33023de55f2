// `runbook init [DIR]` and `runbook new NAME --kind KIND`: setting up a runbook repository for
// editors and luacheck, and writing a commented skeleton that checks and runs as written.
#include <algorithm>
#include <cctype>
#include <fstream>
#include <iostream>
#include <sstream>

#include "bindings/cli/commands.hpp"
#include "bindings/cli/options.hpp"
#include "bindings/cli/share_files.hpp"
#include "engine/error.hpp"
#include "engine/util/text.hpp"

namespace rb::cli {
namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw error(error_kind::io, "unable to read '" + file.string() + "' (is runbook installed completely?)");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Writes `content` to a new file; false (and nothing written) when the file exists.
bool write_new(const fs::path& file, const std::string& content) {
  std::error_code ec;
  if (fs::exists(fs::symlink_status(file, ec))) return false;
  if (file.has_parent_path()) fs::create_directories(file.parent_path());
  std::ofstream out(file, std::ios::binary);
  out << content;
  out.close();
  if (!out) throw error(error_kind::io, "unable to write '" + file.string() + "'");
  return true;
}

/// The .luarc.json that points the Lua language server at the annotations: LuaJIT, the
/// sandbox's libraries only, and require finding runbooks/lib modules.
std::string luarc_json(const fs::path& annotations) {
  json j = {
      {"runtime.version", "LuaJIT"},
      {"runtime.path", {"?.lua", "?/init.lua", "runbooks/lib/?.lua", "runbooks/lib/?/init.lua"}},
      // What the sandbox leaves out; its os (time, clock, date, difftime) is in the annotations.
      {"runtime.builtin",
       {{"io", "disable"}, {"os", "disable"}, {"debug", "disable"}, {"package", "disable"}, {"ffi", "disable"},
        {"jit", "disable"}, {"jit.profile", "disable"}, {"jit.util", "disable"}, {"string.buffer", "disable"},
        {"table.new", "disable"}, {"table.clear", "disable"}, {"utf8", "disable"}}},
      {"workspace.library", {fs::weakly_canonical(annotations).string()}},
      {"workspace.checkThirdParty", false},
  };
  return j.dump(2) + "\n";
}

}  // namespace

// ---- init ------------------------------------------------------------------------------

int cmd_init(command_args args) {
  command_parser p("init",
                   "Set up a runbook repository: runbooks/, .luarc.json (the Lua language server finds the "
                   "runbook API's annotations) and .luacheckrc (luacheck knows the runbook globals). "
                   "Existing files are kept.",
                   std::move(args));
  p.options.add_options()("dir", "the repository (default: the current directory)", cxxopts::value<std::string>());
  p.options.parse_positional({"dir"});
  p.options.positional_help("[DIR]");
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  fs::path dir = r.count("dir") ? fs::path(r["dir"].as<std::string>()) : fs::path(".");
  share_files share = find_share_files();
  std::error_code ec;
  if (!fs::is_directory(share.annotations, ec))
    throw error(error_kind::io, "the runbook API's annotations are not at '" + share.annotations.string() +
                                    "' (set RUNBOOK_SHARE to the directory holding annotations/)");
  std::string luacheckrc = read_text(share.luacheckrc);

  auto shown = [&](const char* name) { return (dir == "." ? fs::path(name) : dir / name).string(); };
  if (fs::is_directory(dir / "runbooks", ec)) {
    std::cout << "kept   " << shown("runbooks/") << " (exists)\n";
  } else {
    fs::create_directories(dir / "runbooks");
    std::cout << "wrote  " << shown("runbooks/") << "\n";
  }
  const std::pair<const char*, std::string> files[] = {
      {".luarc.json", luarc_json(share.annotations)},
      {".luacheckrc", luacheckrc},
  };
  for (const auto& [name, content] : files) {
    if (write_new(dir / name, content)) std::cout << "wrote  " << shown(name) << "\n";
    else std::cout << "kept   " << shown(name) << " (exists; not overwritten)\n";
  }
  std::cout << "next: runbook new NAME --kind migration|maintenance|incident|monitor\n";
  return 0;
}

// ---- new -------------------------------------------------------------------------------

int cmd_new(command_args args) {
  command_parser p("new",
                   "Write a commented skeleton runbook at the path its name implies (runbooks/a/b.lua for "
                   "a.b), with a fixture (b.sql) that --sandbox seeds from. Never overwrites.",
                   std::move(args));
  p.options.add_options()("kind", "migration, maintenance, incident or monitor",
                          cxxopts::value<std::string>()->default_value("migration"))(
      "name", "the runbook's dotted name", cxxopts::value<std::string>());
  p.options.parse_positional({"name"});
  p.options.positional_help("NAME");
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  if (!r.count("name")) throw error(error_kind::usage, "new needs a runbook name: runbook new team.task [--kind KIND]");
  const std::vector<std::string> kinds = {"migration", "maintenance", "incident", "monitor"};
  std::string kind = r["kind"].as<std::string>();
  if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end())
    throw error(error_kind::usage, "--kind must be migration, maintenance, incident or monitor, not '" + kind + "'" +
                                       did_you_mean(kind, kinds));

  std::string name = r["name"].as<std::string>();
  std::vector<std::string> parts = split(name, '.');
  for (const auto& part : parts) {
    bool ok = !part.empty() && !(part == "lib" && &part == &parts.front());
    for (char c : part) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-');
    if (!ok)
      throw error(error_kind::usage, "'" + name + "' is not a runbook name: dotted parts of letters, digits, _ and - "
                                     "(team.task lives in runbooks/team/task.lua; 'lib' is for shared modules)");
  }
  fs::path file = "runbooks";
  for (const auto& part : parts) file /= part;
  file += ".lua";
  fs::path fixture = file;
  fixture.replace_extension(".sql");
  std::error_code ec;
  for (const auto& f : {file, fixture})
    if (fs::exists(fs::symlink_status(f, ec)))
      throw error(error_kind::usage, "'" + f.string() + "' exists; runbook new never overwrites (pick another name)");

  share_files share = find_share_files();
  auto fill = [&](std::string text) {
    for (const auto& [key, value] : {std::pair<std::string, std::string>{"{{name}}", name},
                                     {"{{fixture}}", fixture.filename().string()}}) {
      for (std::size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + value.size()))
        text.replace(at, key.size(), value);
    }
    return text;
  };
  std::string lua = fill(read_text(share.templates / (kind + ".lua")));
  std::string sql = fill(read_text(share.templates / (kind + ".sql")));
  if (!write_new(fixture, sql) || !write_new(file, lua))
    throw error(error_kind::usage, "'" + file.string() + "' appeared while it was being written; nothing overwritten");
  std::cout << "wrote  " << file.string() << " (" << kind << ")\n"
            << "wrote  " << fixture.string() << " (its fixture: the schema --sandbox starts from)\n"
            << "next: runbook check " << file.string() << "\n"
            << "      runbook run " << name << " --sandbox\n";
  return 0;
}

}  // namespace rb::cli
