// PostgreSQL's messages: an error result's fields, libpq's verbose text split into its parts.
#include "engine/db/pg_message.hpp"

#include <algorithm>
#include <vector>

namespace rb::db::detail {
namespace {

std::string error_field(const PGresult* r, int code) {
  const char* v = PQresultErrorField(r, code);
  return v ? v : "";
}

std::string_view rtrim_newlines(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.remove_suffix(1);
  return s;
}

bool is_sqlstate(std::string_view s) {
  if (s.size() != 5) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'); });
}

}  // namespace

pg_message message_of(const PGresult* r) {
  pg_message m;
  m.severity = error_field(r, PG_DIAG_SEVERITY_NONLOCALIZED);
  m.sqlstate = error_field(r, PG_DIAG_SQLSTATE);
  m.primary = error_field(r, PG_DIAG_MESSAGE_PRIMARY);
  m.detail = error_field(r, PG_DIAG_MESSAGE_DETAIL);
  m.hint = error_field(r, PG_DIAG_MESSAGE_HINT);
  m.context = error_field(r, PG_DIAG_CONTEXT);
  m.names = {error_field(r, PG_DIAG_SCHEMA_NAME), error_field(r, PG_DIAG_TABLE_NAME), error_field(r, PG_DIAG_COLUMN_NAME),
             error_field(r, PG_DIAG_CONSTRAINT_NAME)};
  return m;
}

std::string one_line(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : rtrim_newlines(s)) {
    if (c == '\n' || c == '\t' || c == '\r') {
      space = true;
      continue;
    }
    if (space && !out.empty() && out.back() != ' ') out += ' ';
    space = false;
    out += c;
  }
  return out;
}

pg_message parse_message(std::string_view text) {
  static constexpr std::string_view severities[] = {"ERROR",  "FATAL", "PANIC", "WARNING",
                                                    "NOTICE", "INFO",  "LOG",   "DEBUG"};
  pg_message m;
  text = rtrim_newlines(text);
  std::vector<std::string_view> lines;
  for (std::size_t start = 0; start <= text.size();) {
    std::size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  if (lines.empty()) return m;
  std::string_view first = lines[0];
  for (auto sev : severities) {
    if (first.size() > sev.size() + 3 && first.substr(0, sev.size()) == sev && first.substr(sev.size(), 3) == ":  ") {
      m.severity = std::string(sev);
      first.remove_prefix(sev.size() + 3);
      if (first.size() > 7 && is_sqlstate(first.substr(0, 5)) && first.substr(5, 2) == ": ") {
        m.sqlstate = std::string(first.substr(0, 5));
        first.remove_prefix(7);
      }
      break;
    }
  }
  if (m.severity.empty()) {  // a message of libpq's own
    m.primary = one_line(text);
    return m;
  }
  struct tag {
    std::string_view prefix;
    std::string* into;  // null: dropped
  };
  const tag tags[] = {{"DETAIL:  ", &m.detail},        {"HINT:  ", &m.hint},        {"CONTEXT:  ", &m.context},
                      {"QUERY:  ", nullptr},           {"LOCATION:  ", nullptr},    {"SCHEMA NAME:  ", nullptr},
                      {"TABLE NAME:  ", nullptr},      {"COLUMN NAME:  ", nullptr}, {"DATATYPE NAME:  ", nullptr},
                      {"CONSTRAINT NAME:  ", nullptr}, {"STATEMENT:  ", nullptr}};
  std::string* current = &m.primary;
  m.primary = std::string(first);
  for (std::size_t i = 1; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    bool tagged = false;
    for (const auto& t : tags) {
      if (line.substr(0, t.prefix.size()) == t.prefix) {
        current = t.into;
        if (current) {
          if (!current->empty()) *current += '\n';
          *current += line.substr(t.prefix.size());
        }
        tagged = true;
        break;
      }
    }
    if (!tagged && line.substr(0, 5) == "LINE " && line.find(": ") != std::string_view::npos) {
      current = &m.position;
      if (!current->empty()) *current += '\n';
      *current += line;
      tagged = true;
    }
    if (!tagged && current) {
      *current += '\n';
      *current += line;
    }
  }
  return m;
}

std::string notice_text(const pg_message& m) {
  std::string text = m.primary;
  if (!m.detail.empty()) text += "\nDETAIL: " + m.detail;
  if (!m.hint.empty()) text += "\nHINT: " + m.hint;
  if (m.severity.empty() || m.severity == "NOTICE" || m.severity == "INFO") return text;
  return m.severity + ": " + text;
}

}  // namespace rb::db::detail
