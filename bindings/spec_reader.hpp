// Reading a declaration's spec table: known fields only, typed getters, errors at file:line.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <lua.hpp>

#include "engine/error.hpp"
#include "engine/run/model.hpp"
#include "engine/util/duration.hpp"
#include "engine/util/text.hpp"

namespace rb::lua {

int absolute(lua_State* L, int idx);
std::string number_text(double d);

/// Throws rb::error(bad_runbook) "file:line: what".
[[noreturn]] void fail(const run::source_loc& at, const std::string& what);

/// Walks a spec table: checks its named fields against `allowed` and collects its list part.
class spec_reader {
  using source_loc = run::source_loc;

 public:
  spec_reader(lua_State* L, int idx, source_loc at, std::string owner, std::vector<std::string> allowed)
      : m_L(L), m_idx(idx < 0 ? lua_gettop(L) + idx + 1 : idx),
        m_at(std::move(at)), m_owner(std::move(owner)), m_allowed(std::move(allowed)) {
    lua_pushnil(L);
    while (lua_next(L, m_idx) != 0) {
      if (lua_type(L, -2) == LUA_TSTRING) {
        std::string key = lua_tostring(L, -2);
        bool ok = false;
        for (const auto& a : m_allowed) ok = ok || a == key;
        if (!ok)
          fail(m_at, m_owner + ": unknown field '" + key + "'" + did_you_mean(key, m_allowed) +
                         "; known fields: " + join(m_allowed, ", "));
      } else if (lua_type(L, -2) != LUA_TNUMBER) {
        fail(m_at, m_owner + ": keys must be field names");
      }
      lua_pop(L, 1);
    }
    std::size_t n = lua_objlen(L, m_idx);
    std::size_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, m_idx) != 0) {
      if (lua_type(L, -2) == LUA_TNUMBER) ++count;
      lua_pop(L, 1);
    }
    if (count != n) fail(m_at, m_owner + ": its list part has holes (a nil among the phases or steps?)");
    m_items = n;
  }

  std::size_t items() const { return m_items; }
  int index() const { return m_idx; }
  const source_loc& at() const { return m_at; }
  const std::string& owner() const { return m_owner; }

  /// Pushes field `key`; returns its Lua type. Raw: a spec's metatable never runs here.
  int get(const char* key) {
    lua_pushstring(m_L, key);
    lua_rawget(m_L, m_idx);
    return lua_type(m_L, -1);
  }

  std::optional<std::string> string(const char* key) {
    int t = get(key);
    std::optional<std::string> out;
    if (t == LUA_TSTRING) out = lua_tostring(m_L, -1);
    else if (t != LUA_TNIL) type_error(key, "a string");
    lua_pop(m_L, 1);
    return out;
  }

  std::optional<bool> boolean(const char* key) {
    int t = get(key);
    std::optional<bool> out;
    if (t == LUA_TBOOLEAN) out = lua_toboolean(m_L, -1) != 0;
    else if (t != LUA_TNIL) type_error(key, "true or false");
    lua_pop(m_L, 1);
    return out;
  }

  std::optional<run::milliseconds> duration(const char* key) {
    int t = get(key);
    std::optional<run::milliseconds> out;
    if (t == LUA_TNUMBER) {
      double s = lua_tonumber(m_L, -1);
      run::milliseconds d{};
      if (!duration_from_seconds(s, d))
        fail(m_at, m_owner + ": '" + key + "' = " + number_text(s) +
                       " is not a duration (a number of seconds from 0 to a year, or a string such as \"30s\")");
      out = d;
    } else if (t == LUA_TSTRING) {
      run::milliseconds d{};
      std::string text = lua_tostring(m_L, -1);
      if (!try_parse_duration(text, d))
        fail(m_at, m_owner + ": '" + key + "' = \"" + text + "\" is not a duration (use e.g. 500ms, 30s, 5m, 1h30m)");
      out = d;
    } else if (t != LUA_TNIL) {
      type_error(key, "a duration such as \"30s\"");
    }
    lua_pop(m_L, 1);
    return out;
  }

  std::optional<run::on_error> on_error(const char* key) {
    auto s = string(key);
    if (!s) return std::nullopt;
    auto v = run::on_error_from(*s);
    if (!v) fail(m_at, m_owner + ": on_error = \"" + *s + "\" must be \"rollback\", \"abort\" or \"continue\"");
    return v;
  }

  bool function(const char* key, bool required) {
    int t = get(key);
    if (t != LUA_TFUNCTION && t != LUA_TNIL) type_error(key, "a function");
    lua_pop(m_L, 1);
    if (t == LUA_TNIL && required) fail(m_at, m_owner + " has no '" + key + "' function");
    return t == LUA_TFUNCTION;
  }

  [[noreturn]] void type_error(const char* key, const char* expected) {
    fail(m_at, m_owner + ": '" + key + "' must be " + expected + ", not a " + luaL_typename(m_L, -1));
  }

 private:
  lua_State* m_L;
  int m_idx;
  source_loc m_at;
  std::string m_owner;
  std::vector<std::string> m_allowed;
  std::size_t m_items = 0;
};

}  // namespace rb::lua
