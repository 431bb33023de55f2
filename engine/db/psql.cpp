// Runs SQL through the real psql: the command line, the environment, the stdin preamble, and
// psql's exit codes and error lines turned into the engine's errors.
#include "engine/db/psql.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include <libpq-fe.h>

#include "engine/db/cluster.hpp"
#include "engine/db/sqlstate.hpp"
#include "engine/error.hpp"
#include "engine/util/duration.hpp"
#include "engine/util/secrets.hpp"
#include "engine/util/text.hpp"

namespace rb::db {
namespace {

/// A psql meta-command argument in single quotes: '' for a quote, \\ for a backslash, and
/// line breaks escaped (a meta-command ends at the end of its line).
std::string psql_quote(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    switch (c) {
      case '\'': out += "''"; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out += c;
    }
  }
  return out + "'";
}

bool valid_var_name(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

/// In "psql:FILE:LINE: rest", where "psql:FILE:LINE" ends (npos when the line is not one).
std::size_t where_end(const std::string& l) {
  if (!starts_with(l, "psql:")) return std::string::npos;
  for (std::size_t i = 5; i < l.size(); ++i) {
    if (l[i] != ':' || i + 1 >= l.size() || !std::isdigit(static_cast<unsigned char>(l[i + 1]))) continue;
    std::size_t j = i + 1;
    while (j < l.size() && std::isdigit(static_cast<unsigned char>(l[j]))) ++j;
    if (l.compare(j, 2, ": ") == 0) return j;
  }
  return std::string::npos;
}

/// The script's name as psql prints it in "psql:NAME:LINE:".
std::string script_name(const psql_request& req) { return req.file ? req.file->string() : "<stdin>"; }

}  // namespace

std::filesystem::path resolve_script(const std::filesystem::path& base_dir, const std::string& file) {
  namespace fs = std::filesystem;
  fs::path rel(file);
  if (rel.is_absolute())
    throw error(error_kind::usage, "SQL file '" + file + "' must be relative to the runbook's directory (" +
                                       base_dir.string() + ")");
  std::error_code ec;
  fs::path base = fs::canonical(base_dir, ec);
  if (ec) throw error(error_kind::io, "unable to read the runbook's directory '" + base_dir.string() + "'");
  fs::path full = fs::canonical(base / rel, ec);
  if (ec || !fs::is_regular_file(full, ec))
    throw error(error_kind::io, "SQL file '" + file + "' not found (looked for " + (base / rel).string() + ")");
  // Inside the runbook's directory once ".." and symbolic links are resolved.
  auto [b, f] = std::mismatch(base.begin(), base.end(), full.begin(), full.end());
  if (b != base.end())
    throw error(error_kind::usage, "SQL file '" + file + "' is outside the runbook's directory (" + base.string() +
                                       "): it resolves to " + full.string());
  return rel.lexically_normal();
}

int psql_preamble_lines(const psql_request& req) { return static_cast<int>(req.vars.size()) + 2; }

shell::process_options psql_process(const psql_request& req) {
  shell::process_options o;
  o.argv = {req.program.empty() ? pg_bin("psql").string() : req.program.string(), "-X", "-v", "ON_ERROR_STOP=1"};
  if (req.single_transaction) o.argv.push_back("--single-transaction");
  o.argv.insert(o.argv.end(), {"-f", "-"});
  o.cwd = req.base_dir;
  o.env = libpq_env(req.dsn);
  o.env["PGAPPNAME"] = "runbook psql";
  // A killed psql leaves its backend running the statement unless the backend looks; the
  // step's limits hold in this session too.
  std::string options = o.env.count("PGOPTIONS") ? o.env["PGOPTIONS"] : "";
  if (options.empty())
    if (const char* inherited = std::getenv("PGOPTIONS")) options = inherited;
  options += (options.empty() ? "" : " ") + std::string("-c client_connection_check_interval=1000");
  if (req.statement_timeout.count() > 0)
    options += " -c statement_timeout=" + std::to_string(req.statement_timeout.count());
  if (req.lock_timeout.count() > 0) options += " -c lock_timeout=" + std::to_string(req.lock_timeout.count());
  o.env["PGOPTIONS"] = options;
  // Variables first, then our settings (so a var cannot turn ON_ERROR_STOP off), then the script.
  std::string in;
  for (const auto& [name, value] : req.vars) {
    if (!valid_var_name(name))
      throw error(error_kind::usage, "psql variable name '" + name + "' is not a name (letters, digits, _)");
    // psql reserves all-upper-case names (ECHO, QUIET, ON_ERROR_STOP ...): ECHO would print
    // every \set line, secrets included, so they are refused rather than passed on.
    bool reserved = std::none_of(name.begin(), name.end(), [](char c) { return c >= 'a' && c <= 'z'; });
    if (reserved)
      throw error(error_kind::usage, "psql variable name '" + name +
                                         "' is all upper case: psql reserves such names for its own settings; use lower case");
    if (value.find('\0') != std::string::npos)
      throw error(error_kind::usage, "psql variable '" + name + "' holds a NUL byte");
    in += "\\set " + name + " " + psql_quote(value) + "\n";
  }
  in += "\\set ON_ERROR_STOP on\n\\set VERBOSITY verbose\n";  // psql_preamble_lines counts these
  if (req.file) in += "\\i " + psql_quote(req.file->string()) + "\n";
  else in += req.sql;
  o.stdin_data = std::move(in);
  return o;
}

void check_psql_result(const psql_request& req, const shell::process_result& r, const std::string& what,
                       std::chrono::milliseconds timeout) {
  if (r.cancelled) throw error(error_kind::cancelled, what + " was killed: interrupted by the operator");
  if (r.timed_out)
    throw error(error_kind::timeout, what + " was killed after " + format_duration(timeout) +
                                         " (the step's time limit)");
  if (r.ok()) return;
  if (r.term_signal)
    throw error(error_kind::shell, what + ": psql was killed by signal " + std::to_string(r.term_signal));
  std::vector<std::string> lines = split(r.err, '\n');
  if (r.exit_code == 2) {
    std::string msg;
    for (const auto& l : lines)
      if (!trim(l).empty()) msg += (msg.empty() ? "" : " ") + std::string(trim(l));
    throw error(error_kind::connection, what + ": psql could not connect: " + msg);
  }
  // "psql:FILE:LINE: ERROR:  42P01: message", then DETAIL:, HINT:, LINE n:, LOCATION: lines.
  std::string name = script_name(req);
  std::string meta_failure;  // psql's own "psql:main.sql:3: error: nope.sql: No such file or directory"
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string& l = lines[i];
    std::size_t end_of_where = where_end(l);
    if (end_of_where == std::string::npos) continue;
    std::string where = l.substr(0, end_of_where);  // psql:FILE:LINE
    std::string rest = l.substr(end_of_where + 2);
    // SQL text: give back the line in the text, not in what psql read (the preamble first).
    if (!req.file && starts_with(where, "psql:<stdin>:")) {
      int n = std::atoi(where.c_str() + 13) - psql_preamble_lines(req);
      if (n > 0) where = "psql:<stdin>:" + std::to_string(n);
    }
    std::string severity;
    for (const char* s : {"ERROR:  ", "FATAL:  ", "PANIC:  "})
      if (starts_with(rest, s)) severity = s;
    if (severity.empty()) {  // NOTICE, WARNING ... or a meta-command's error
      if (meta_failure.empty() && starts_with(rest, "error: ")) meta_failure = where + ": " + rest;
      continue;
    }
    std::string msg = rest.substr(severity.size());
    std::string sqlstate;
    if (msg.size() > 7 && msg[5] == ':' && msg[6] == ' ') {
      sqlstate = msg.substr(0, 5);
      msg = msg.substr(7);
    }
    std::string detail, hint;
    for (std::size_t j = i + 1; j < lines.size() && !starts_with(lines[j], "psql:"); ++j) {
      if (starts_with(lines[j], "DETAIL:  ")) detail = lines[j].substr(9);
      else if (starts_with(lines[j], "HINT:  ")) hint = lines[j].substr(7);
    }
    std::string shown = where + ": " + severity + msg;  // psql's line, as psql prints it
    throw sql_failure(sqlstate.empty() ? error_kind::sql : kind_for_sqlstate(sqlstate),
                      what + " failed: " + shown, sqlstate, detail, hint, "");
  }
  if (!meta_failure.empty()) throw error(error_kind::shell, what + " failed: " + meta_failure);
  std::string msg;
  for (const auto& l : lines)
    if (!trim(l).empty()) msg += (msg.empty() ? "" : " ") + std::string(trim(l));
  throw error(error_kind::shell, what + ": psql exited with code " + std::to_string(r.exit_code) +
                                     (msg.empty() ? "" : ": " + msg) + " (" + name + ")");
}

}  // namespace rb::db
