// `runbook completion bash|zsh`: reads the command table, each command's options from its own
// `--help`, and prints the completion script (completion_scripts.cpp writes it).
#include "bindings/cli/completion_command.hpp"

#include <algorithm>
#include <iostream>
#include <regex>
#include <sstream>

#include "bindings/cli/dispatch.hpp"
#include "bindings/cli/options.hpp"
#include "engine/error.hpp"
#include "engine/util/text.hpp"

namespace rb::cli {
namespace {

/// std::cout goes to `to` for as long as this lives.
class cout_redirect {
 public:
  explicit cout_redirect(std::ostream& to) : m_saved(std::cout.rdbuf(to.rdbuf())) {}
  ~cout_redirect() { std::cout.rdbuf(m_saved); }
  cout_redirect(const cout_redirect&) = delete;
  cout_redirect& operator=(const cout_redirect&) = delete;

 private:
  std::streambuf* m_saved;
};

/// What `runbook NAME --help` prints: every command answers --help before doing anything else.
std::string help_text(const command_info& c) {
  std::ostringstream text;
  try {
    cout_redirect redirect(text);
    c.run({"--help"});
  } catch (const std::exception&) {
    // A command whose --help fails still completes by name; its options are then unknown.
  }
  return text.str();
}

/// Options whose value names a file or directory get file name completion.
bool names_a_path(const std::string& option) {
  for (const char* word : {"config", "dir", "file", "path", "output", "out"})
    if (option.find(word) != std::string::npos) return true;
  return false;
}

/// The options of cxxopts' help: "  -p, --param arg   set a parameter (repeatable): ...".
std::vector<option_shape> parse_options(const std::string& help) {
  static const std::regex line(R"(^\s+(?:-([A-Za-z0-9]), )?--([A-Za-z0-9][A-Za-z0-9-]*)( arg| \[=arg\(.*?\)\])?\s+(.*)$)");
  static const std::regex continued(R"(^\s{8,}(\S.*)$)");
  std::vector<option_shape> out;
  std::istringstream in(help);
  bool in_option = false;
  for (std::string text; std::getline(in, text);) {
    std::smatch m;
    if (in_option && std::regex_match(text, m, continued)) {  // cxxopts wraps long descriptions
      out.back().help += " " + m[1].str();
      continue;
    }
    in_option = std::regex_match(text, m, line);
    if (!in_option) continue;
    option_shape o;
    o.short_name = m[1].str();
    o.long_name = m[2].str();
    o.takes_value = m[3].matched && m[3].str() == " arg";
    o.help = std::string(trim(m[4].str()));
    out.push_back(std::move(o));
  }
  for (auto& o : out) {
    // --param is parsed before cxxopts sees it; its description shows the value it takes.
    if (o.help.find("--" + o.long_name + " ") != std::string::npos) o.takes_value = true;
    o.repeatable = o.help.find("repeatable") != std::string::npos;
    o.value_is_path = o.takes_value && names_a_path(o.long_name);
  }
  return out;
}

/// The positional arguments of the usage lines: "audit verify [FILE]" and "audit head [FILE]"
/// give position 1 the words verify and head, position 2 an optional FILE.
std::vector<argument_shape> parse_arguments(const command_info& c) {
  static const std::regex words(R"([a-z][a-z-]*(\|[a-z][a-z-]*)*)");
  std::vector<argument_shape> out;
  for (const auto& [usage, what] : c.help) {
    auto tokens = split(usage, ' ');
    for (std::size_t i = 1; i < tokens.size(); ++i) {
      std::string t = tokens[i];
      if (t.empty()) continue;
      if (out.size() < i) out.resize(i);
      argument_shape& a = out[i - 1];
      if (t.front() == '[' && t.back() == ']') {
        a.optional = true;
        t = t.substr(1, t.size() - 2);
      }
      if (t.size() > 3 && t.substr(t.size() - 3) == "...") {
        a.many = true;
        t.resize(t.size() - 3);
      }
      if (std::regex_match(t, words)) {
        for (const auto& w : split(t, '|'))
          if (std::find(a.words.begin(), a.words.end(), w) == a.words.end()) a.words.push_back(w);
      } else if (a.placeholder.empty()) {
        a.placeholder = t;
      }
    }
  }
  return out;
}

}  // namespace

std::vector<command_shape> command_shapes() {
  std::vector<command_shape> out;
  for (const auto& c : command_table()) {
    command_shape s;
    s.name = c.name;
    if (!c.help.empty()) {
      s.summary = c.help.front().second;
      std::replace(s.summary.begin(), s.summary.end(), '\n', ' ');
    }
    s.options = parse_options(help_text(c));
    s.arguments = parse_arguments(c);
    out.push_back(std::move(s));
  }
  return out;
}

int cmd_completion(std::vector<std::string> args) {
  command_parser p("completion",
                   "Print a shell completion script for runbook: its commands, their options, the actions of\n"
                   "audit, sandbox and alert, and runbook names (asked of 'runbook list' as you type).\n"
                   "  bash: source <(runbook completion bash)   (or save it as\n"
                   "        ~/.local/share/bash-completion/completions/runbook)\n"
                   "  zsh:  runbook completion zsh > ~/.zfunc/_runbook   (a directory of $fpath, before compinit)",
                   std::move(args));
  p.options.add_options()("shell", "bash or zsh", cxxopts::value<std::string>());
  p.options.parse_positional({"shell"});
  p.options.positional_help("bash|zsh");
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  std::string shell = r.count("shell") ? r["shell"].as<std::string>() : "";
  if (shell == "bash") std::cout << bash_completion(command_shapes());
  else if (shell == "zsh") std::cout << zsh_completion(command_shapes());
  else
    throw error(error_kind::usage, (shell.empty() ? std::string("completion needs a shell")
                                                  : "no completion for the shell '" + shell + "'") +
                                       ": runbook completion bash|zsh");
  return 0;
}

}  // namespace rb::cli
