// Reading a runbook's `schedule` field into run::schedule_def, checked as `runbook check` shows it.
#include "bindings/loader_schedule.hpp"

#include <map>

#include "engine/run/params.hpp"
#include "engine/schedule/cron.hpp"
#include "engine/util/text.hpp"

namespace rb::lua {
namespace {

const std::vector<std::string> k_fields = {"cron", "tz", "missed", "params", "target"};

/// A field of the schedule table, raw (no metatable runs), as a string; nullopt when nil.
std::optional<std::string> string_field(lua_State* L, int idx, const char* key, const std::string& where) {
  lua_pushstring(L, key);
  lua_rawget(L, idx);
  std::optional<std::string> out;
  if (lua_type(L, -1) == LUA_TSTRING) {
    out = lua_tostring(L, -1);
  } else if (!lua_isnil(L, -1)) {
    std::string type = luaL_typename(L, -1);
    lua_pop(L, 1);
    throw error(error_kind::bad_runbook, where + "'" + key + "' must be a string, not a " + type);
  }
  lua_pop(L, 1);
  return out;
}

/// `params = { name = value }` as the text --param would carry.
std::map<std::string, std::string> params_field(lua_State* L, int idx, const std::string& where) {
  std::map<std::string, std::string> out;
  lua_pushstring(L, "params");
  lua_rawget(L, idx);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return out;
  }
  if (lua_type(L, -1) != LUA_TTABLE)
    throw error(error_kind::bad_runbook, where + "'params' must be a table of name = value");
  int t = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, t) != 0) {
    if (lua_type(L, -2) != LUA_TSTRING)
      throw error(error_kind::bad_runbook, where + "'params' must be a table of name = value");
    std::string name = lua_tostring(L, -2);
    int vt = lua_type(L, -1);
    if (vt == LUA_TBOOLEAN) out[name] = lua_toboolean(L, -1) ? "true" : "false";
    else if (vt == LUA_TNUMBER || vt == LUA_TSTRING) out[name] = lua_tostring(L, -1);
    else throw error(error_kind::bad_runbook, where + "params." + name + " must be a string, number or boolean");
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return out;
}

}  // namespace

run::schedule_def read_schedule(lua_State* L, int idx, const run::runbook_def& book) {
  idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
  const std::string where = book.where.str() + ": runbook '" + book.name + "': schedule: ";
  run::schedule_def s;
  s.where = book.where;
  std::map<std::string, std::string> given;
  if (lua_type(L, idx) == LUA_TSTRING) {
    s.cron = lua_tostring(L, idx);
  } else if (lua_type(L, idx) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
      std::string key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
      bool known = false;
      for (const auto& f : k_fields) known = known || f == key;
      if (!known) {
        std::string shown = key.empty() ? "a list item" : "field '" + key + "'";
        throw error(error_kind::bad_runbook, where + "unknown " + shown + did_you_mean(key, k_fields) +
                                                 "; known fields: " + join(k_fields, ", "));
      }
      lua_pop(L, 1);
    }
    auto cron = string_field(L, idx, "cron", where);
    if (!cron) throw error(error_kind::bad_runbook, where + "needs cron = \"0 3 * * *\"");
    s.cron = *cron;
    s.tz = string_field(L, idx, "tz", where).value_or("UTC");
    std::string missed = string_field(L, idx, "missed", where).value_or("skip");
    if (missed != "skip" && missed != "once")
      throw error(error_kind::bad_runbook, where + "missed = \"" + missed +
                                               "\" must be \"skip\" (run nothing missed while the scheduler was down) "
                                               "or \"once\" (run the latest missed time once)");
    s.missed_once = missed == "once";
    s.target = string_field(L, idx, "target", where);
    if (s.target && trim(*s.target).empty()) throw error(error_kind::bad_runbook, where + "target must name a target");
    given = params_field(L, idx, where);
  } else {
    throw error(error_kind::bad_runbook, where + "must be a cron string (\"0 3 * * *\") or a table "
                                                 "{ cron = ..., tz = ..., missed = \"skip\" | \"once\", params = {...}, target = ... }, not a " +
                                                 std::string(luaL_typename(L, idx)));
  }
  try {
    schedule::cron::parse(s.cron, s.tz);
  } catch (const error& e) {
    throw error(error_kind::bad_runbook, where + e.what());
  }
  try {
    run::resolve_params(book, given);  // checked now; the runs get them as --param text
    for (const auto& [k, v] : given) s.params[k] = v;
  } catch (const error& e) {
    throw error(error_kind::bad_runbook, where + "params: " + e.what());
  }
  return s;
}

}  // namespace rb::lua
