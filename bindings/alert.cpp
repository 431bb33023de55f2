// Lua module: alert — alert.send{ severity, summary, details, channel, dedup } queues a
// notification on the run's channels and returns the delivery ids.
#include "bindings/alert.hpp"

#include "bindings/convert.hpp"
#include "bindings/error.hpp"
#include "bindings/sandbox.hpp"
#include "engine/alert/channel.hpp"
#include "engine/run/context.hpp"
#include "engine/util/text.hpp"

namespace rb::lua {
namespace {

/// spec[key] with raw access (no __index runs); pushed on the stack.
int raw_field(lua_State* L, int idx, const char* key) {
  lua_pushstring(L, key);
  lua_rawget(L, idx);
  return lua_type(L, -1);
}

std::string string_field(lua_State* L, int idx, const char* key, const std::string& fallback) {
  int t = raw_field(L, idx, key);
  std::string out = fallback;
  if (t == LUA_TSTRING) {
    std::size_t n = 0;
    const char* s = lua_tolstring(L, -1, &n);
    out.assign(s, n);
  } else if (t != LUA_TNIL) {
    lua_pop(L, 1);
    throw error(error_kind::usage, std::string("alert.send: ") + key + " must be a string");
  }
  lua_pop(L, 1);
  return out;
}

/// alert.send{ severity = "critical", summary = "...", details = {...}, channel = "team" | {...}, dedup = "key" }
int l_alert_send(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  sandbox& sb = sandbox::from(L);
  run::run_context* ctx = sb.current_run();
  if (!ctx) throw error(error_kind::usage, "alert.send can only be called while a step runs");
  alert::notification n;
  n.severity = string_field(L, 1, "severity", alert::severity::error);
  if (alert::severity_rank(n.severity) < 0)
    throw error(error_kind::usage, "alert.send: severity '" + n.severity + "' is not one of critical, error, warning, info" +
                                       did_you_mean(n.severity, {"critical", "error", "warning", "info"}));
  n.summary = string_field(L, 1, "summary", "");
  if (n.summary.empty()) throw error(error_kind::usage, "alert.send needs a summary = \"...\"");
  n.dedup = string_field(L, 1, "dedup", "");
  if (raw_field(L, 1, "details") != LUA_TNIL) n.details = to_json(L, lua_gettop(L));
  lua_pop(L, 1);
  if (n.details.is_array() && n.details.empty()) n.details = json::object();

  std::vector<std::string> channels;
  int t = raw_field(L, 1, "channel");
  if (t == LUA_TSTRING) {
    channels.push_back(lua_tostring(L, -1));
  } else if (t == LUA_TTABLE) {
    json list = to_json(L, lua_gettop(L));
    for (const auto& c : list) {
      if (!c.is_string()) {
        lua_pop(L, 1);
        throw error(error_kind::usage, "alert.send: channel must be a name or a list of names");
      }
      channels.push_back(c.get<std::string>());
    }
  } else if (t != LUA_TNIL) {
    lua_pop(L, 1);
    throw error(error_kind::usage, "alert.send: channel must be a name or a list of names");
  }
  lua_pop(L, 1);
  const run::config* cfg = ctx->cfg();
  if (channels.empty()) {
    if (cfg) channels = cfg->default_channels;
    if (channels.empty())
      throw error(error_kind::usage, "alert.send: no channel given and the config has no default_channels");
  }
  // Every name is checked before anything is sent: a typo never half-sends an alert.
  std::vector<std::string> known;
  if (cfg)
    for (const auto& [name, c] : cfg->channels) known.push_back(name);
  for (const auto& c : channels)
    if (std::find(known.begin(), known.end(), c) == known.end())
      throw error(error_kind::usage, "alert.send: no alert channel '" + c + "'" + did_you_mean(c, known) +
                                         (known.empty() ? "; the config has no channels" : "; channels: " + join(known, ", ")));
  alert::notifier* out = ctx->notifier();
  if (!out) {
    // A run nothing delivers for (a rehearsal on a copy, an embedding without channels): the
    // alert is shown and audited as a log line, and the run goes on.
    ctx->log("alert [" + n.severity + "] " + n.summary + " (not sent: this run delivers no alerts)");
    lua_newtable(L);
    return 1;
  }

  n.runbook = ctx->book().name;
  n.run_id = ctx->run_id();
  if (ctx->target() && ctx->target()->configured()) n.target = ctx->target()->target().name;
  std::vector<std::string> ids;
  for (const auto& c : channels) ids.push_back(out->send(c, n));
  lua_createtable(L, static_cast<int>(ids.size()), 0);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    lua_pushlstring(L, ids[i].data(), ids[i].size());
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
  return 1;
}

}  // namespace

void open_alert(sandbox& sb) {
  lua_State* L = sb.state();
  lua_newtable(L);
  lua_pushcfunction(L, trampoline<l_alert_send>);
  lua_setfield(L, -2, "send");
  sb.set_global("alert");
}

}  // namespace rb::lua
