// Small text helpers: "did you mean", joining, trimming.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rb {

/// Levenshtein edit distance.
std::size_t edit_distance(std::string_view a, std::string_view b);
/// The candidate closest to `word` if it is close enough to be a plausible typo.
std::optional<std::string> closest_match(std::string_view word, const std::vector<std::string>& candidates);
/// " (did you mean 'x'?)" or "" — ready to append to an error message.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);
std::string join(const std::vector<std::string>& parts, std::string_view sep);
std::string_view trim(std::string_view s);
std::vector<std::string> split(std::string_view s, char sep);
/// True when `text` matches a glob with '*' (any run) and '?' (one character).
bool glob_match(std::string_view pattern, std::string_view text);
/// `text` as valid UTF-8: each byte that does not start a well-formed sequence becomes U+FFFD.
std::string valid_utf8(std::string_view text);
/// valid_utf8(text) cut to at most `max_bytes` (on a character boundary), with a note of how
/// much was left out: for messages built from values runbooks choose.
std::string bounded_text(std::string_view text, std::size_t max_bytes);

}  // namespace rb
