// Loading the configuration file (runbook.lua):
//   return {
//     default_target = "primary",
//     statement_timeout = "5m", lock_timeout = "10s",
//     metrics_dir = "/var/lib/node_exporter/textfile",
//     targets = { primary = { dsn = "host=db1 dbname=app user=ops", password = secret "PGPASSWORD_PRIMARY",
//                             settings = { search_path = "app, public" } } },
//   }
#include "bindings/config.hpp"

#include <cctype>

#include "bindings/config_channels.hpp"
#include "bindings/convert.hpp"
#include "engine/db/connection.hpp"
#include "engine/util/duration.hpp"
#include "engine/util/text.hpp"

namespace rb::lua {
namespace {

[[noreturn]] void bad(const std::filesystem::path& file, const std::string& what) {
  throw error(error_kind::bad_runbook, file.string() + ": " + what);
}

void check_fields(const std::filesystem::path& file, const json& obj, const std::string& owner,
                  const std::vector<std::string>& allowed) {
  for (const auto& [k, v] : obj.items()) {
    bool ok = false;
    for (const auto& a : allowed) ok = ok || a == k;
    if (!ok) bad(file, owner + ": unknown field '" + k + "'" + did_you_mean(k, allowed) + "; known fields: " + join(allowed, ", "));
  }
}

std::optional<std::chrono::milliseconds> duration_field(const std::filesystem::path& file, const json& obj,
                                                        const char* key, const std::string& owner) {
  if (!obj.contains(key)) return std::nullopt;
  const json& v = obj[key];
  std::chrono::milliseconds d{};
  if (v.is_number()) return std::chrono::milliseconds(static_cast<long long>(v.get<double>() * 1000));
  if (!v.is_string() || !try_parse_duration(v.get<std::string>(), d))
    bad(file, owner + ": '" + key + "' must be a duration such as \"30s\"");
  return d;
}

/// A target's `settings = { name = value }`: session settings every step starts with.
std::vector<std::pair<std::string, std::string>> settings_field(const std::filesystem::path& file, const json& obj,
                                                                const std::string& owner) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!obj.contains("settings")) return out;
  const json& s = obj["settings"];
  if (s.is_array() && s.empty()) return out;  // {} reads as an empty list
  if (!s.is_object())
    bad(file, owner + ": settings must be a table of name = value, e.g. settings = { search_path = \"app, public\" }");
  for (const auto& [name, v] : s.items()) {
    bool ok = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0]));
    for (char c : name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.');
    if (!ok) bad(file, owner + ": settings: '" + name + "' is not a PostgreSQL setting name");
    if (name == "statement_timeout" || name == "lock_timeout")
      bad(file, owner + ": settings: set " + name + " with the target's own " + name + " field, not in settings");
    std::string value;
    if (v.is_string()) value = v.get<std::string>();
    else if (v.is_boolean()) value = v.get<bool>() ? "on" : "off";
    else if (v.is_number_integer()) value = std::to_string(v.get<long long>());
    else if (v.is_number()) value = v.dump();
    else bad(file, owner + ": settings." + name + " must be a string, number or boolean");
    out.emplace_back(name, std::move(value));
  }
  return out;
}

}  // namespace

run::config load_config(sandbox& sb, const std::optional<std::filesystem::path>& file) {
  run::config cfg;
  std::filesystem::path path;
  std::error_code ec;
  if (file) {
    if (!std::filesystem::is_regular_file(*file, ec)) throw error(error_kind::usage, "no config file '" + file->string() + "'");
    path = *file;
  } else if (std::filesystem::is_regular_file("runbook.lua", ec)) {
    path = "runbook.lua";
  } else {
    return cfg;
  }
  cfg.file = path;
  lua_State* L = sb.state();
  int top = lua_gettop(L);
  sb.load_file(path);
  if (auto err = sb.call(0, 1, std::chrono::steady_clock::now() + std::chrono::seconds(10), "loading " + path.string()))
    throw error(err->kind == error_kind::usage ? error_kind::usage : error_kind::bad_runbook,
                (err->source.empty() ? path.string() : err->source + ":" + std::to_string(err->line)) + ": " + err->message);
  if (lua_type(L, -1) != LUA_TTABLE) bad(path, "must return a table: return { targets = { ... } }");
  json root = to_json(L, -1);
  lua_settop(L, top);
  if (root.is_array() && root.empty()) root = json::object();
  std::vector<std::string> fields{"targets", "default_target", "statement_timeout", "lock_timeout", "escalation",
                                  "default_escalation", "metrics_dir", "registry"};
  fields.insert(fields.end(), k_channel_fields.begin(), k_channel_fields.end());
  check_fields(path, root, "config", fields);
  if (auto d = duration_field(path, root, "statement_timeout", "config")) cfg.statement_timeout = *d;
  if (auto d = duration_field(path, root, "lock_timeout", "config")) cfg.lock_timeout = *d;
  if (root.contains("metrics_dir")) {
    const json& m = root["metrics_dir"];
    if (!m.is_string() || m.get<std::string>().empty())
      bad(path, "metrics_dir must be a directory's path, e.g. metrics_dir = \"/var/lib/node_exporter/textfile\"");
    std::filesystem::path dir = m.get<std::string>();
    cfg.metrics_dir = dir.is_absolute() ? dir : path.parent_path() / dir;
  }
  if (root.contains("default_target")) {
    if (!root["default_target"].is_string()) bad(path, "default_target must be a target's name");
    cfg.default_target = root["default_target"].get<std::string>();
  }
  if (root.contains("targets")) {
    if (!root["targets"].is_object()) bad(path, "targets must be a table of name = { dsn = \"...\" }");
    for (const auto& [name, t] : root["targets"].items()) {
      std::string owner = "target '" + name + "'";
      if (!t.is_object()) bad(path, owner + " must be a table { dsn = \"...\" }");
      check_fields(path, t, owner, {"dsn", "password", "statement_timeout", "lock_timeout", "settings"});
      if (!t.contains("dsn") || !t["dsn"].is_string()) bad(path, owner + " needs dsn = \"host=... dbname=... user=...\"");
      run::target_config tc;
      tc.name = name;
      tc.dsn = t["dsn"].get<std::string>();
      if (db::dsn_password(tc.dsn))
        bad(path, owner + ": the dsn holds a password; use password = secret \"NAME\" instead, so it never sits in the file");
      if (t.contains("password")) {
        if (!t["password"].is_string()) bad(path, owner + ": password must come from secret \"NAME\"");
        tc.password = t["password"].get<std::string>();
      }
      tc.statement_timeout = duration_field(path, t, "statement_timeout", owner);
      tc.lock_timeout = duration_field(path, t, "lock_timeout", owner);
      tc.settings = settings_field(path, t, owner);
      cfg.targets[name] = tc;
    }
  }
  if (root.contains("escalation")) {
    const json& e = root["escalation"];
    if (!(e.is_array() && e.empty()) && !e.is_object())
      bad(path, "escalation must be a table of name = { levels = { { after = \"0m\", notify = { \"team\" } }, ... } }");
    if (e.is_object())
      for (const auto& [name, spec] : e.items())
        cfg.escalation.policies[name] = incident::policy::from_config(name, spec, path.string());
  }
  if (root.contains("default_escalation")) {
    if (!root["default_escalation"].is_string()) bad(path, "default_escalation must be an escalation policy's name");
    cfg.escalation.default_policy = root["default_escalation"].get<std::string>();
    cfg.escalation.require(*cfg.escalation.default_policy, path.string() + ": default_escalation", path.string());
  }
  if (root.contains("registry")) {
    if (!root["registry"].is_string()) bad(path, "registry must be a target's name: registry = \"primary\"");
    cfg.registry = root["registry"].get<std::string>();
    if (!cfg.targets.count(*cfg.registry)) bad(path, "registry '" + *cfg.registry + "' is not one of the targets");
  }
  if (cfg.default_target && !cfg.targets.count(*cfg.default_target))
    bad(path, "default_target '" + *cfg.default_target + "' is not one of the targets");
  load_channels(path, root, cfg);
  return cfg;
}

}  // namespace rb::lua
