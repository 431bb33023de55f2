// The terminal, decided in one place: is it one, colour or not, and the escape sequences.
#include "engine/util/term.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include "engine/error.hpp"
#include "engine/util/text.hpp"

namespace rb::term {
namespace {
std::atomic<color_mode> g_mode{color_mode::automatic};

bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v && *v;
}
}  // namespace

color_mode parse_color_mode(std::string_view text) {
  if (text == "auto") return color_mode::automatic;
  if (text == "always") return color_mode::always;
  if (text == "never") return color_mode::never;
  throw error(error_kind::usage, "--color must be auto, always or never, not '" + std::string(text) + "'" +
                                     did_you_mean(text, {"auto", "always", "never"}));
}

void set_color_mode(color_mode mode) { g_mode = mode; }

color_mode current_color_mode() { return g_mode; }

bool is_terminal(int fd) { return ::isatty(fd) == 1; }

bool use_color(int fd) {
  switch (g_mode.load()) {
    case color_mode::always: return true;
    case color_mode::never: return false;
    case color_mode::automatic: break;
  }
  if (!is_terminal(fd) || env_set("NO_COLOR")) return false;
  const char* t = std::getenv("TERM");
  return !(t && std::string_view(t) == "dumb");
}

std::string paint(bool on, std::string_view text, const char* code) {
  if (!on) return std::string(text);
  return std::string("\033[") + code + "m" + std::string(text) + "\033[0m";
}

std::string cursor_up(std::size_t lines) {
  return lines == 0 ? std::string() : "\033[" + std::to_string(lines) + "A";
}

}  // namespace rb::term
