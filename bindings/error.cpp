// Error conversion across the Lua boundary.
#include "bindings/error.hpp"

#include <cctype>
#include <cstring>

#include "engine/util/secrets.hpp"

namespace rb::lua {
namespace {

constexpr const char* k_error_meta = "rb.error";

void set_string(lua_State* L, const char* key, const std::string& value) {
  if (value.empty()) return;
  lua_pushlstring(L, value.data(), value.size());
  lua_setfield(L, -2, key);
}

std::string get_string(lua_State* L, int idx, const char* key) {
  lua_getfield(L, idx, key);
  std::string out;
  if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
    size_t n = 0;
    const char* s = lua_tolstring(L, -1, &n);
    out.assign(s, n);
  }
  lua_pop(L, 1);
  return out;
}

int l_error_tostring(lua_State* L) {
  run::step_error e = to_step_error(L, 1);
  std::string text = e.describe();
  lua_pushlstring(L, text.data(), text.size());
  return 1;
}

void push_error_meta(lua_State* L) {
  if (luaL_newmetatable(L, k_error_meta)) {
    lua_pushcfunction(L, l_error_tostring);
    lua_setfield(L, -2, "__tostring");
  }
}

/// Splits "file:12: message" into its parts when it has that shape.
void split_position(std::string& message, std::string& source, int& line) {
  std::size_t colon = 0;
  while ((colon = message.find(':', colon)) != std::string::npos) {
    std::size_t d = colon + 1;
    while (d < message.size() && std::isdigit(static_cast<unsigned char>(message[d]))) ++d;
    if (d > colon + 1 && d + 1 < message.size() && message[d] == ':' && message[d + 1] == ' ') {
      source = message.substr(0, colon);
      line = std::stoi(message.substr(colon + 1, d - colon - 1));
      message = message.substr(d + 2);
      return;
    }
    ++colon;
  }
}

}  // namespace

void push_error(lua_State* L, const run::step_error& err) {
  lua_createtable(L, 0, 8);
  std::string kind(kind_name(err.kind));
  set_string(L, "kind", kind);
  set_string(L, "class", err.klass.empty() ? kind : err.klass);
  set_string(L, "message", err.message);
  set_string(L, "sqlstate", err.sqlstate);
  set_string(L, "detail", err.detail);
  set_string(L, "hint", err.hint);
  set_string(L, "statement", err.statement);
  set_string(L, "source", err.source);
  if (err.line > 0) {
    lua_pushinteger(L, err.line);
    lua_setfield(L, -2, "line");
  }
  push_error_meta(L);
  lua_setmetatable(L, -2);
}

run::step_error to_step_error(lua_State* L, int idx) {
  run::step_error e;
  idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
  if (lua_type(L, idx) == LUA_TTABLE) {
    std::string kind = get_string(L, idx, "kind");
    if (auto k = kind_from_name(kind)) e.kind = *k;
    e.klass = get_string(L, idx, "class");
    if (e.klass.empty()) e.klass = kind.empty() ? "error" : kind;
    e.message = get_string(L, idx, "message");
    if (e.message.empty()) e.message = "(error table without a message)";
    e.sqlstate = get_string(L, idx, "sqlstate");
    e.detail = get_string(L, idx, "detail");
    e.hint = get_string(L, idx, "hint");
    e.statement = get_string(L, idx, "statement");
    e.source = get_string(L, idx, "source");
    std::string line = get_string(L, idx, "line");
    if (!line.empty()) e.line = std::atoi(line.c_str());
    e.traceback = get_string(L, idx, "traceback");
    return e;
  }
  if (lua_type(L, idx) == LUA_TSTRING || lua_type(L, idx) == LUA_TNUMBER) {
    size_t n = 0;
    const char* s = lua_tolstring(L, idx, &n);
    e.message.assign(s, n);
    split_position(e.message, e.source, e.line);
  } else {
    e.message = std::string("(error object is a ") + luaL_typename(L, idx) + " value)";
  }
  e.klass = "error";
  return e;
}

run::step_error from_exception(const std::exception& ex) {
  run::step_error e = run::step_error_from(ex);
  e.message = secrets::redact(e.message);
  return e;
}

void raise(lua_State* L, const run::step_error& err) {
  if (err.source.empty()) {
    // An error from a binding (a failed statement): point at the runbook line that called it.
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); ++level) {
      lua_getinfo(L, "Sl", &ar);
      if (ar.currentline > 0) {
        run::step_error located = err;
        located.source = ar.source && ar.source[0] == '@' ? ar.source + 1 : ar.short_src;
        located.line = ar.currentline;
        push_error(L, located);
        lua_error(L);
        __builtin_unreachable();
      }
    }
  }
  push_error(L, err);
  lua_error(L);
  __builtin_unreachable();
}

void raise_usage(lua_State* L, error_kind kind, const std::string& message) {
  run::step_error e;
  e.kind = kind;
  e.klass = std::string(kind_name(kind));
  e.message = message;
  lua_Debug ar;
  for (int level = 1; lua_getstack(L, level, &ar); ++level) {
    lua_getinfo(L, "Sl", &ar);
    if (ar.currentline > 0) {
      e.source = ar.source && ar.source[0] == '@' ? ar.source + 1 : ar.short_src;
      e.line = ar.currentline;
      break;
    }
  }
  raise(L, e);
}

int traceback_handler(lua_State* L) {
  // stack: err
  if (lua_type(L, 1) != LUA_TTABLE) {
    run::step_error e = to_step_error(L, 1);
    push_error(L, e);
    lua_replace(L, 1);
  }
  lua_pushliteral(L, "traceback");
  luaL_traceback(L, L, nullptr, 1);
  lua_rawset(L, 1);  // raw: the table may be the runbook's own, with a locked metatable
  lua_settop(L, 1);
  return 1;
}

}  // namespace rb::lua
