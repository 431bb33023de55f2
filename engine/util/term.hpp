// The terminal, decided in one place: whether a descriptor is a terminal, whether to colour
// what goes to it (--color, NO_COLOR, TERM=dumb), and the escape sequences written there.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace rb::term {

/// --color: `automatic` colours only a terminal; `always` and `never` override everything.
enum class color_mode { automatic, always, never };

/// Parses --color's value: "auto", "always" or "never". Throws rb::error(usage) otherwise.
color_mode parse_color_mode(std::string_view text);
/// The process's --color choice (set once by the CLI before any output; `automatic` until then).
void set_color_mode(color_mode mode);
color_mode current_color_mode();

/// True when `fd` is a terminal (live lines, progress, the watch's block go only there).
bool is_terminal(int fd);

/// Whether to colour what is written to `fd`: --color=never: no; --color=always: yes, even in a
/// pipe and with NO_COLOR set; auto: only on a terminal, and not when NO_COLOR is set to any
/// non-empty value (https://no-color.org) or TERM is "dumb".
bool use_color(int fd);

/// SGR codes for paint().
namespace sgr {
inline constexpr const char* bold = "1";
inline constexpr const char* dim = "2";
inline constexpr const char* red = "31";
inline constexpr const char* green = "32";
inline constexpr const char* yellow = "33";
}  // namespace sgr

/// `text` wrapped in the SGR `code` and a reset when `on`; `text` as it is otherwise.
std::string paint(bool on, std::string_view text, const char* code);

/// Cursor control for live lines on a terminal. Not colour: kept with --color=never, written
/// only where is_terminal() holds.
inline constexpr const char* clear_line = "\r\033[K";  ///< back to column 0, erase the line
/// Moves the cursor up `lines` lines (nothing for 0).
std::string cursor_up(std::size_t lines);

}  // namespace rb::term
