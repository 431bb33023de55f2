// `runbook completion bash|zsh`: shell completion scripts generated from the command table.
#pragma once

#include <string>
#include <vector>

namespace rb::cli {

/// One option of a command, as its `--help` lists it.
struct option_shape {
  std::string long_name;   ///< without the dashes
  std::string short_name;  ///< one letter, or empty
  std::string help;        ///< the first line of its description
  bool takes_value = false;
  bool repeatable = false;  ///< its description says "repeatable"
  bool value_is_path = false;
};

/// One positional argument of a command, from the usage lines of the table ("audit verify
/// [FILE]"): fixed words (verify, head), or a placeholder (NAME, RUN, FILE, PATH...).
struct argument_shape {
  std::vector<std::string> words;
  std::string placeholder;
  bool optional = false;
  bool many = false;  ///< "PATH...": this and every later position
};

/// What a completion script needs to know of one command.
struct command_shape {
  std::string name;
  std::string summary;
  std::vector<option_shape> options;
  std::vector<argument_shape> arguments;
};

/// Every command of the table with its options (read from its own `--help`) and arguments.
std::vector<command_shape> command_shapes();

/// The scripts `runbook completion bash` and `runbook completion zsh` print.
std::string bash_completion(const std::vector<command_shape>& commands);
std::string zsh_completion(const std::vector<command_shape>& commands);

/// runbook completion bash|zsh. Returns the exit code.
int cmd_completion(std::vector<std::string> args);

}  // namespace rb::cli
