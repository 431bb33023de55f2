// Type conversion between Lua values and JSON.
#include "bindings/convert.hpp"

#include <cmath>

namespace rb::lua {

std::string to_string(lua_State* L, int idx) {
  if (lua_type(L, idx) != LUA_TSTRING) return {};
  size_t n = 0;
  const char* s = lua_tolstring(L, idx, &n);
  return std::string(s, n);
}

json to_json(lua_State* L, int idx, int depth) {
  idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
  switch (lua_type(L, idx)) {
    case LUA_TNIL: return nullptr;
    case LUA_TBOOLEAN: return lua_toboolean(L, idx) != 0;
    case LUA_TNUMBER: {
      double d = lua_tonumber(L, idx);
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.007199254740992e15)
        return static_cast<long long>(d);
      if (!std::isfinite(d)) return nullptr;
      return d;
    }
    case LUA_TSTRING: return to_string(L, idx);
    case LUA_TTABLE: {
      if (depth <= 0) return "<table>";
      std::size_t n = lua_objlen(L, idx);
      std::size_t count = 0;
      bool array = true;
      lua_pushnil(L);
      while (lua_next(L, idx) != 0) {
        ++count;
        if (lua_type(L, -2) != LUA_TNUMBER) array = false;
        lua_pop(L, 1);
      }
      if (array && count == n && n > 0) {
        json arr = json::array();
        for (std::size_t i = 1; i <= n; ++i) {
          lua_rawgeti(L, idx, static_cast<int>(i));
          arr.push_back(to_json(L, -1, depth - 1));
          lua_pop(L, 1);
        }
        return arr;
      }
      json obj = json::object();
      lua_pushnil(L);
      while (lua_next(L, idx) != 0) {
        std::string key;
        if (lua_type(L, -2) == LUA_TSTRING) key = to_string(L, -2);
        else if (lua_type(L, -2) == LUA_TNUMBER) {
          lua_pushvalue(L, -2);
          key = lua_tostring(L, -1);
          lua_pop(L, 1);
        } else key = std::string("<") + luaL_typename(L, -2) + ">";
        obj[key] = to_json(L, -1, depth - 1);
        lua_pop(L, 1);
      }
      return obj;
    }
    default: return std::string("<") + luaL_typename(L, idx) + ">";
  }
}

void push_json(lua_State* L, const json& v) {
  switch (v.type()) {
    case json::value_t::null: lua_pushnil(L); break;
    case json::value_t::boolean: lua_pushboolean(L, v.get<bool>()); break;
    case json::value_t::number_integer: lua_pushnumber(L, static_cast<lua_Number>(v.get<long long>())); break;
    case json::value_t::number_unsigned: lua_pushnumber(L, static_cast<lua_Number>(v.get<unsigned long long>())); break;
    case json::value_t::number_float: lua_pushnumber(L, v.get<double>()); break;
    case json::value_t::string: {
      const auto& s = v.get_ref<const std::string&>();
      lua_pushlstring(L, s.data(), s.size());
      break;
    }
    case json::value_t::array: {
      lua_createtable(L, static_cast<int>(v.size()), 0);
      int i = 1;
      for (const auto& item : v) {
        push_json(L, item);
        lua_rawseti(L, -2, i++);
      }
      break;
    }
    case json::value_t::object: {
      lua_createtable(L, 0, static_cast<int>(v.size()));
      for (const auto& [k, item] : v.items()) {
        lua_pushlstring(L, k.data(), k.size());
        push_json(L, item);
        lua_rawset(L, -3);
      }
      break;
    }
    default: lua_pushnil(L); break;
  }
}

}  // namespace rb::lua
