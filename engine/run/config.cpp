// Configuration: choosing a run's database target.
#include "engine/run/config.hpp"

#include <cstdlib>
#include <vector>

#include "engine/db/connection.hpp"
#include "engine/error.hpp"
#include "engine/util/secrets.hpp"
#include "engine/util/text.hpp"

namespace rb::run {
namespace {

resolved_target from_dsn(const config& cfg, std::string name, std::string dsn) {
  if (auto pw = db::dsn_password(dsn)) secrets::add(*pw);  // never shown, whatever path it takes
  resolved_target t;
  t.name = std::move(name);
  t.dsn = std::move(dsn);
  t.statement_timeout = cfg.statement_timeout;
  t.lock_timeout = cfg.lock_timeout;
  return t;
}

std::string url_encode(const std::string& s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += static_cast<char>(c);
    else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace

std::string dsn_with_password(const std::string& dsn, const std::string& password) {
  if (dsn.rfind("postgresql://", 0) == 0 || dsn.rfind("postgres://", 0) == 0)
    return dsn + (dsn.find('?') == std::string::npos ? "?" : "&") + "password=" + url_encode(password);
  std::string quoted = "'";
  for (char c : password) {
    if (c == '\'' || c == '\\') quoted += '\\';
    quoted += c;
  }
  quoted += "'";
  return dsn + " password=" + quoted;
}

std::optional<resolved_target> resolve_target(const config& cfg, const std::optional<std::string>& flag_target,
                                              const std::optional<std::string>& flag_dsn,
                                              const std::optional<std::string>& runbook_target) {
  if (flag_dsn && !flag_dsn->empty()) return from_dsn(cfg, "dsn", *flag_dsn);
  if (const char* env = std::getenv("RUNBOOK_DSN"); env && *env && !flag_target) return from_dsn(cfg, "dsn", env);
  std::optional<std::string> name = flag_target ? flag_target : runbook_target ? runbook_target : cfg.default_target;
  if (!name && cfg.targets.size() == 1) name = cfg.targets.begin()->first;
  if (!name) return std::nullopt;
  auto it = cfg.targets.find(*name);
  if (it == cfg.targets.end()) {
    std::vector<std::string> names;
    for (const auto& [k, v] : cfg.targets) names.push_back(k);
    std::string where = cfg.file.empty() ? " (there is no runbook.lua config here; use --dsn or RUNBOOK_DSN)"
                                         : " in " + cfg.file.string() + did_you_mean(*name, names);
    throw error(error_kind::usage, "no target named '" + *name + "'" + where);
  }
  const target_config& tc = it->second;
  resolved_target t = from_dsn(cfg, tc.name, tc.password ? dsn_with_password(tc.dsn, *tc.password) : tc.dsn);
  if (tc.password) secrets::add(*tc.password);
  if (tc.statement_timeout) t.statement_timeout = *tc.statement_timeout;
  if (tc.lock_timeout) t.lock_timeout = *tc.lock_timeout;
  t.settings = tc.settings;
  return t;
}

}  // namespace rb::run
