// Type conversion: Lua values and JSON, bound SQL parameters, and SQL fields as Lua values.
#include "bindings/convert.hpp"

#include <cmath>
#include <cstdio>

#include "bindings/error.hpp"
#include "engine/util/json_text.hpp"

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

// ---- SQL values (the db module's) ------------------------------------------------------

namespace {

constexpr const char* k_null_key = "rb.db.null";

int l_db_null_tostring(lua_State* L) {
  lua_pushliteral(L, "NULL");
  return 1;
}

void push_scalar_text(lua_State* L, unsigned oid, const std::string& t);

/// Parses a PostgreSQL array literal ({1,2,"a b",NULL}, nested for more dimensions).
void push_array(lua_State* L, unsigned elem_oid, const std::string& text, std::size_t& i) {
  lua_newtable(L);
  int n = 0;
  if (i < text.size() && text[i] == '{') ++i;
  while (i < text.size() && text[i] != '}') {
    if (text[i] == ',') {
      ++i;
      continue;
    }
    if (text[i] == '{') {
      push_array(L, elem_oid, text, i);
    } else {
      std::string item;
      bool quoted = false;
      if (text[i] == '"') {
        quoted = true;
        ++i;
        while (i < text.size() && text[i] != '"') {
          if (text[i] == '\\' && i + 1 < text.size()) ++i;
          item += text[i++];
        }
        ++i;
      } else {
        while (i < text.size() && text[i] != ',' && text[i] != '}') item += text[i++];
      }
      if (!quoted && item == "NULL") push_null(L);
      else push_scalar_text(L, elem_oid, item);
    }
    lua_rawseti(L, -2, ++n);
  }
  if (i < text.size()) ++i;  // '}'
}

unsigned array_element(unsigned oid) {
  switch (oid) {
    case 1000: return 16;    // bool[]
    case 1005: return 21;    // int2[]
    case 1007: return 23;    // int4[]
    case 1016: return 20;    // int8[]
    case 1021: return 700;   // float4[]
    case 1022: return 701;   // float8[]
    case 1231: return 1700;  // numeric[]
    case 1009: case 1015: case 1014: case 2951: return 25;  // text, varchar, bpchar, uuid
    case 199: case 3807: return 3802;                        // json[], jsonb[]
    case 1115: case 1185: return 1184;                       // timestamp[], timestamptz[]
    default: return 0;
  }
}

std::string iso_time(std::string t) {
  // "2026-11-22 02:26:48.123+00" -> "2026-11-22T02:26:48.123+00:00"
  if (t.size() > 10 && t[10] == ' ') t[10] = 'T';
  std::size_t sign = t.find_last_of("+-");
  if (sign != std::string::npos && sign > 10 && t.size() - sign == 3) t += ":00";
  return t;
}

void push_scalar_text(lua_State* L, unsigned oid, const std::string& t) {
  switch (oid) {
    case 16: lua_pushboolean(L, t == "t" || t == "true"); return;
    case 20: case 21: case 23: case 26: {
      double d = std::strtod(t.c_str(), nullptr);
      if (std::fabs(d) < 9.007199254740992e15) lua_pushnumber(L, d);
      else lua_pushlstring(L, t.data(), t.size());  // beyond 2^53: exact as text
      return;
    }
    case 700: case 701:
      if (t == "NaN") lua_pushnumber(L, NAN);
      else if (t == "Infinity") lua_pushnumber(L, HUGE_VAL);
      else if (t == "-Infinity") lua_pushnumber(L, -HUGE_VAL);
      else lua_pushnumber(L, std::strtod(t.c_str(), nullptr));
      return;
    case 1700: {
      std::size_t digits = 0;
      for (char c : t) digits += std::isdigit(static_cast<unsigned char>(c)) != 0;
      double d = std::strtod(t.c_str(), nullptr);
      // Exact when a double round-trips it; otherwise the exact text.
      if (digits <= 15 && t != "NaN") lua_pushnumber(L, d);
      else lua_pushlstring(L, t.data(), t.size());
      return;
    }
    case 114: case 3802: {
      json j = json::parse(t, nullptr, false);
      if (j.is_discarded()) lua_pushlstring(L, t.data(), t.size());
      else push_json(L, j);
      return;
    }
    case 1114: case 1184: {
      std::string iso = iso_time(t);
      lua_pushlstring(L, iso.data(), iso.size());
      return;
    }
    default:
      if (unsigned elem = array_element(oid)) {
        std::size_t i = 0;
        push_array(L, elem, t, i);
        return;
      }
      lua_pushlstring(L, t.data(), t.size());
  }
}

}  // namespace

void open_null(lua_State* L) {
  lua_newuserdata(L, 1);
  lua_newtable(L);
  lua_pushcfunction(L, trampoline<l_db_null_tostring>);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, k_null_key);
}

void push_null(lua_State* L) { lua_getfield(L, LUA_REGISTRYINDEX, k_null_key); }

bool is_null(lua_State* L, int idx) {
  if (lua_type(L, idx) != LUA_TUSERDATA) return false;
  push_null(L);
  bool eq = lua_rawequal(L, idx, -1);
  lua_pop(L, 1);
  return eq;
}

std::string sql_number(double d) {
  char buf[64];
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) std::snprintf(buf, sizeof buf, "%.0f", d);
  else std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

/// Lua values from `first` to the top as bound parameters.
std::vector<db::param> params_from(lua_State* L, int first) {
  std::vector<db::param> out;
  int top = lua_gettop(L);
  for (int i = first; i <= top; ++i) {
    switch (lua_type(L, i)) {
      case LUA_TNIL: out.emplace_back(std::nullopt); break;
      case LUA_TBOOLEAN: out.emplace_back(lua_toboolean(L, i) ? "true" : "false"); break;
      case LUA_TNUMBER: out.emplace_back(sql_number(lua_tonumber(L, i))); break;
      case LUA_TSTRING: out.emplace_back(to_string(L, i)); break;
      case LUA_TTABLE: out.emplace_back(json_text(to_json(L, i))); break;
      default:
        if (is_null(L, i)) {
          out.emplace_back(std::nullopt);
          break;
        }
        raise_usage(L, error_kind::usage, "parameter $" + std::to_string(i - first + 1) + " is a " +
                                              luaL_typename(L, i) + ", which cannot be sent to the database");
    }
  }
  return out;
}

void push_field(lua_State* L, const db::column& c, const db::field& f) {
  if (f.null) push_null(L);
  else push_scalar_text(L, c.oid, f.text);
}

void push_row(lua_State* L, const std::vector<db::column>& cols, const std::vector<db::field>& row) {
  lua_createtable(L, 0, static_cast<int>(cols.size()));
  for (std::size_t i = 0; i < cols.size() && i < row.size(); ++i) {
    push_field(L, cols[i], row[i]);
    lua_setfield(L, -2, cols[i].name.c_str());
  }
}

}  // namespace rb::lua
