// Reading SQL text as the server splits it: statements, transaction control, lines.
#include "engine/db/sql_text.hpp"

#include <array>

namespace rb::db {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}
bool ident_char(char c) { return ident_start(c) || is_digit(c) || c == '$'; }

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

/// The index after a comment starting at `i`, or `i` when none starts there.
std::size_t skip_comment(std::string_view s, std::size_t i) {
  const std::size_t n = s.size();
  if (i + 1 < n && s[i] == '-' && s[i + 1] == '-') {
    std::size_t nl = s.find('\n', i);
    return nl == std::string_view::npos ? n : nl + 1;
  }
  if (i + 1 < n && s[i] == '/' && s[i + 1] == '*') {  // PostgreSQL's block comments nest
    int depth = 1;
    i += 2;
    while (i < n && depth > 0) {
      if (i + 1 < n && s[i] == '/' && s[i + 1] == '*') {
        ++depth;
        i += 2;
      } else if (i + 1 < n && s[i] == '*' && s[i + 1] == '/') {
        --depth;
        i += 2;
      } else {
        ++i;
      }
    }
    return i;
  }
  return i;
}

/// The index after a quoted string, identifier or dollar-quoted body starting at `i`, or `i`.
std::size_t skip_quoted(std::string_view s, std::size_t i) {
  const std::size_t n = s.size();
  const char c = s[i];
  if (c == '\'') {
    // E'...' takes backslash escapes; '...' does (standard_conforming_strings = on).
    bool escapes = i > 0 && lower(s[i - 1]) == 'e' && (i < 2 || !ident_char(s[i - 2]));
    for (++i; i < n; ++i) {
      if (escapes && s[i] == '\\') {
        ++i;
      } else if (s[i] == '\'') {
        if (i + 1 < n && s[i + 1] == '\'') {
          ++i;
          continue;
        }
        return i + 1;
      }
    }
    return n;
  }
  if (c == '"') {
    for (++i; i < n; ++i) {
      if (s[i] != '"') continue;
      if (i + 1 < n && s[i + 1] == '"') {
        ++i;
        continue;
      }
      return i + 1;
    }
    return n;
  }
  if (c == '$' && (i == 0 || !ident_char(s[i - 1]))) {  // $tag$ ... $tag$, not $1 nor a$b
    std::size_t j = i + 1;
    if (j < n && is_digit(s[j])) return i;
    while (j < n && (ident_start(s[j]) || is_digit(s[j]))) ++j;
    if (j >= n || s[j] != '$') return i;
    std::string_view tag = s.substr(i, j - i + 1);
    std::size_t close = s.find(tag, j + 1);
    return close == std::string_view::npos ? n : close + tag.size();
  }
  return i;
}

/// Up to N leading words of a statement (comments and white space skipped); stops at the
/// first token that is not a bare word.
template <std::size_t N>
std::array<std::string_view, N> leading_words(std::string_view s) {
  std::array<std::string_view, N> out{};
  std::size_t i = 0, k = 0;
  while (i < s.size() && k < N) {
    if (is_space(s[i])) {
      ++i;
      continue;
    }
    if (std::size_t j = skip_comment(s, i); j != i) {
      i = j;
      continue;
    }
    if (!ident_start(s[i])) break;
    std::size_t j = i;
    while (j < s.size() && ident_char(s[j])) ++j;
    out[k++] = s.substr(i, j - i);
    i = j;
  }
  return out;
}

}  // namespace

std::vector<sql_statement> split_statements(std::string_view s) {
  std::vector<sql_statement> out;
  const std::size_t n = s.size();
  std::size_t i = 0;
  bool have_first = false;
  std::size_t first = 0;
  int parens = 0, begin_depth = 0;
  // psql's heuristic for CREATE [OR REPLACE] FUNCTION/PROCEDURE ... BEGIN ATOMIC ... END: the
  // first letters of the statement's leading create/or/replace/function/procedure words.
  std::array<char, 4> lead{};
  std::size_t words = 0;
  auto end_statement = [&](std::size_t at) {
    if (have_first) out.push_back(sql_statement{first, at});
    have_first = false;
    parens = begin_depth = 0;
    lead = {};
    words = 0;
  };
  while (i < n) {
    const char c = s[i];
    if (is_space(c)) {
      ++i;
      continue;
    }
    if (std::size_t j = skip_comment(s, i); j != i) {
      i = j;
      continue;
    }
    if (c == ';' && parens == 0 && begin_depth == 0) {
      end_statement(i);
      ++i;
      continue;
    }
    if (!have_first) {
      have_first = true;
      first = i;
    }
    if (std::size_t j = skip_quoted(s, i); j != i) {
      i = j;
      continue;
    }
    if (c == '(') {
      ++parens;
    } else if (c == ')') {
      if (parens > 0) --parens;
    } else if (ident_start(c)) {
      std::size_t j = i;
      while (j < n && ident_char(s[j])) ++j;
      std::string_view w = s.substr(i, j - i);
      i = j;
      if (words < lead.size() && (iequals(w, "create") || iequals(w, "function") || iequals(w, "procedure") ||
                                  iequals(w, "or") || iequals(w, "replace")))
        lead[words] = lower(w[0]);
      ++words;
      bool routine = lead[0] == 'c' && (lead[1] == 'f' || lead[1] == 'p' ||
                                        (lead[1] == 'o' && lead[2] == 'r' && (lead[3] == 'f' || lead[3] == 'p')));
      if (routine && parens == 0) {
        if (iequals(w, "begin")) {
          ++begin_depth;
        } else if (iequals(w, "case")) {
          if (begin_depth > 0) ++begin_depth;  // CASE ... END inside the body
        } else if (iequals(w, "end")) {
          if (begin_depth > 0) --begin_depth;
        }
      }
      continue;
    }
    ++i;
  }
  end_statement(n);
  return out;
}

std::optional<std::string> transaction_control(std::string_view statement) {
  auto w = leading_words<3>(statement);
  if (w[0].empty()) return std::nullopt;
  if (iequals(w[0], "begin")) return "BEGIN";
  if (iequals(w[0], "end")) return "END";
  if (iequals(w[0], "abort")) return "ABORT";
  if (iequals(w[0], "start") && iequals(w[1], "transaction")) return "START TRANSACTION";
  if (iequals(w[0], "prepare") && iequals(w[1], "transaction")) return "PREPARE TRANSACTION";
  if (iequals(w[0], "commit")) {
    if (iequals(w[1], "prepared")) return std::nullopt;
    return "COMMIT";
  }
  if (iequals(w[0], "rollback")) {
    if (iequals(w[1], "prepared")) return std::nullopt;
    std::size_t k = iequals(w[1], "work") || iequals(w[1], "transaction") ? 2 : 1;
    if (iequals(w[k], "to")) return std::nullopt;  // ROLLBACK [WORK] TO [SAVEPOINT] x
    return "ROLLBACK";
  }
  return std::nullopt;
}

std::optional<control_statement> find_transaction_control(std::string_view sql) {
  for (const auto& st : split_statements(sql)) {
    if (auto verb = transaction_control(sql.substr(st.begin, st.end - st.begin)))
      return control_statement{*verb, st.begin};
  }
  return std::nullopt;
}

int line_at(std::string_view text, std::size_t offset) {
  int line = 1;
  if (offset > text.size()) offset = text.size();
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
    } else if (text[i] == '\r') {
      if (i + 1 < offset && text[i + 1] == '\n') ++i;
      ++line;
    }
  }
  return line;
}

std::size_t offset_of_position(std::string_view text, long pos, bool utf8) {
  if (pos <= 1) return 0;
  long chars = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    bool starts_char = !utf8 || (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80;
    if (!starts_char) continue;
    if (++chars == pos) return i;
  }
  return text.size();
}

}  // namespace rb::db
