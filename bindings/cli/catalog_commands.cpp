// `runbook list | show | check`: the runbooks on the search path, one runbook's shape, and
// validating runbooks without running them.
#include <iostream>

#include "bindings/cli/commands.hpp"
#include "bindings/cli/options.hpp"
#include "bindings/config.hpp"
#include "bindings/loader.hpp"
#include "bindings/open_all.hpp"
#include "engine/error.hpp"
#include "engine/report/diagram.hpp"
#include "engine/report/outline.hpp"
#include "engine/run/catalog.hpp"
#include "engine/util/secrets.hpp"
#include "engine/util/text.hpp"

namespace rb::cli {
namespace fs = std::filesystem;

// ---- list ------------------------------------------------------------------------------

int cmd_list(std::vector<std::string> args) {
  command_parser p("list", "List the runbooks on the search path.", std::move(args));
  p.options.add_options()("json", "print JSON (fields in docs/json.md)");
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  auto dirs = run::search_path();
  auto entries = run::list_runbooks(dirs);
  json out = json::array();
  for (const auto& e : entries) {
    json item = {{"name", e.name}, {"file", e.file.string()}};
    try {
      auto sb = lua::make_sandbox(lib_dirs(dirs));
      auto def = lua::load_runbook(*sb, e.file, e.name);
      item["title"] = def.title;
      item["tags"] = def.tags;
    } catch (const error& err) {
      item["error"] = secrets::redact(err.what());
    }
    out.push_back(item);
  }
  if (r.count("json")) {
    print_json(out, 2);
    return 0;
  }
  if (entries.empty()) {
    std::cout << "no runbooks found (looked in ./runbooks and RUNBOOK_PATH)\n";
    return 0;
  }
  std::size_t w = 4;
  for (const auto& e : entries) w = std::max(w, e.name.size());
  for (const auto& item : out) {
    std::cout << pad(item["name"].get<std::string>(), w + 2);
    if (item.contains("error")) std::cout << "(broken: run 'runbook check " << item["file"].get<std::string>() << "')";
    else std::cout << item["title"].get<std::string>();
    if (item.contains("tags") && !item["tags"].empty()) {
      std::vector<std::string> tags = item["tags"].get<std::vector<std::string>>();
      std::cout << "  [" << join(tags, ", ") << "]";
    }
    std::cout << "\n";
  }
  return 0;
}

// ---- show ------------------------------------------------------------------------------

int cmd_show(std::vector<std::string> args) {
  command_parser p("show", "Show a runbook: params, phases, steps and watches (their decision trees).", std::move(args));
  p.options.add_options()("format", "text, json, dot (Graphviz) or mermaid",
                          cxxopts::value<std::string>()->default_value("text"))(
      "json", "print JSON (the same as --format json; fields in docs/json.md)")(
      "name", "runbook name", cxxopts::value<std::string>());
  p.options.parse_positional({"name"});
  p.options.positional_help("NAME");
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  if (!r.count("name")) throw error(error_kind::usage, "show needs a runbook name: runbook show NAME");
  std::string format = r["format"].as<std::string>();
  if (r.count("json")) {
    if (r.count("format") && format != "json")
      throw error(error_kind::usage, "--json and --format " + format + " contradict each other: pass one");
    format = "json";
  }
  if (format != "text" && format != "json" && format != "dot" && format != "mermaid")
    throw error(error_kind::usage,
                "--format must be text, json, dot or mermaid, not '" + format + "'" +
                    did_you_mean(format, {"text", "json", "dot", "mermaid"}));
  auto dirs = run::search_path();
  auto sb = lua::make_sandbox(lib_dirs(dirs));
  auto book = load_named(*sb, dirs, r["name"].as<std::string>());
  if (format == "json") print_json(report::book_json(book), 2);
  else if (format == "dot") std::cout << report::to_dot(book);
  else if (format == "mermaid") std::cout << report::to_mermaid(book);
  else std::cout << report::book_text(book);
  return 0;
}

// ---- check -----------------------------------------------------------------------------

int cmd_check(std::vector<std::string> args) {
  command_parser p("check", "Load and validate runbooks without running them.", std::move(args));
  p.options.add_options()("paths", "files or directories", cxxopts::value<std::vector<std::string>>())(
      "config", "config file whose escalation policies runbooks name (default: ./runbook.lua)", cxxopts::value<std::string>());
  p.options.parse_positional({"paths"});
  p.options.positional_help("[PATH...]");
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  auto dirs = run::search_path();
  std::vector<run::catalog_entry> todo;
  if (r.count("paths")) {
    for (const auto& path : r["paths"].as<std::vector<std::string>>()) {
      std::error_code ec;
      if (fs::is_directory(path, ec)) {
        for (auto& e : run::list_runbooks({path})) todo.push_back(e);
      } else if (fs::is_regular_file(path, ec)) {
        // Name it by its place below a search directory when it has one.
        std::string name;
        fs::path abs = fs::weakly_canonical(path);
        for (const auto& d : dirs) {
          fs::path dabs = fs::weakly_canonical(d);
          auto rel = abs.lexically_relative(dabs);
          if (!rel.empty() && *rel.begin() != "..") name = run::name_for(dabs, abs);
        }
        todo.push_back({name, path});
      } else {
        throw error(error_kind::usage, "no such file or directory: '" + path + "'");
      }
    }
  } else {
    todo = run::list_runbooks(dirs);
    if (todo.empty()) throw error(error_kind::usage, "no runbooks to check (no ./runbooks and RUNBOOK_PATH is empty)");
  }
  int bad = 0;
  std::optional<run::config> cfg;
  for (const auto& e : todo) {
    try {
      auto sb = lua::make_sandbox(lib_dirs(dirs));
      auto book = lua::load_runbook(*sb, e.file, e.name);
      std::string note;
      if (book.escalation) {
        if (!cfg) cfg = lua::load_config(*sb, config_file(r));
        // Without any config file there is nothing to check the name against: say so instead of
        // failing a runbook whose policy lives in the operator's config (run still refuses).
        if (cfg->file.empty())
          note = "\n       note: escalation policy '" + *book.escalation +
                 "' is not checked (no runbook.lua found; run refuses until the config defines it)";
        else
          cfg->escalation.require(*book.escalation, "runbook '" + book.name + "' (" + book.where.str() + ")",
                                  cfg->file.string());
      }
      std::cout << "ok     " << book.name << " (" << e.file.string() << ", " << book.step_count() << " steps)"
                << note << "\n";
    } catch (const error& err) {
      ++bad;
      std::cout << "error  " << secrets::redact(err.what()) << "\n";
    }
  }
  if (bad) std::cout << bad << " of " << todo.size() << " runbooks have errors\n";
  return bad ? exit_codes::usage : exit_codes::ok;
}

}  // namespace rb::cli
