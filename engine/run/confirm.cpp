// Confirmation of destructive steps on the terminal.
#include "engine/run/confirm.hpp"

#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "engine/util/text.hpp"

namespace rb::run {

bool terminal_confirmer::interactive() const { return ::isatty(STDIN_FILENO) == 1; }

bool terminal_confirmer::ask(const std::string& prompt) {
  std::cerr << prompt << "\nType yes to continue: " << std::flush;
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  return trim(answer) == "yes";
}

}  // namespace rb::run
