// Error conversion across the Lua boundary.
#include "bindings/error.hpp"

#include <cctype>
#include <cstring>
#include <set>

#include "engine/util/secrets.hpp"
#include "engine/util/text.hpp"

namespace rb::lua {
namespace {

constexpr const char* k_error_meta = "rb.error";

void set_string(lua_State* L, const char* key, const std::string& value) {
  if (value.empty()) return;
  lua_pushlstring(L, value.data(), value.size());
  lua_setfield(L, -2, key);
}

/// Field `key` of the table at idx as text, raw (never runs __index): strings and numbers only.
std::string raw_text(lua_State* L, int idx, const char* key, std::size_t max = k_max_error_text) {
  lua_pushstring(L, key);
  lua_rawget(L, idx);
  std::string out;
  if (lua_type(L, -1) == LUA_TSTRING) {
    size_t n = 0;
    const char* s = lua_tolstring(L, -1, &n);
    out = bounded_text(std::string_view(s, n), max);
  } else if (lua_type(L, -1) == LUA_TNUMBER) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.14g", lua_tonumber(L, -1));
    out = buf;
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
    lua_pushcfunction(L, trampoline<l_error_tostring>);
    lua_setfield(L, -2, "__tostring");
    // Locked: runbook code must not give the engine's errors an __index that loops or raises.
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
  }
}

/// Splits "file:12: message" into its parts when it has that shape (a line of at most 9
/// digits; "job:20240101123456: failed" is a message, not a position).
void split_position(std::string& message, std::string& source, int& line) {
  std::size_t colon = 0;
  while ((colon = message.find(':', colon)) != std::string::npos) {
    std::size_t d = colon + 1;
    while (d < message.size() && std::isdigit(static_cast<unsigned char>(message[d]))) ++d;
    std::size_t digits = d - colon - 1;
    if (digits > 0 && digits <= 9 && d + 1 < message.size() && message[d] == ':' && message[d + 1] == ' ') {
      int n = 0;
      for (std::size_t k = colon + 1; k < d; ++k) n = n * 10 + (message[k] - '0');
      source = message.substr(0, colon);
      line = n;
      message = message.substr(d + 2);
      return;
    }
    ++colon;
  }
}

}  // namespace

run::step_error make_step_error(error_kind kind, const std::string& message, const std::string& klass) {
  run::step_error e;
  e.kind = kind;
  e.klass = klass.empty() ? std::string(kind_name(kind)) : bounded_text(klass, 200);
  e.message = bounded_text(message, k_max_error_text);
  return e;
}

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
  idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
  int type = lua_type(L, idx);
  if (type == LUA_TTABLE) {
    std::string kind = raw_text(L, idx, "kind", 64);
    std::string klass = raw_text(L, idx, "class", 200);
    run::step_error e = make_step_error(error_kind::step_failed, raw_text(L, idx, "message"),
                                        klass.empty() ? (kind.empty() ? "error" : kind) : klass);
    if (auto k = kind_from_name(kind)) e.kind = *k;
    if (e.message.empty()) e.message = "(error table without a message)";
    e.sqlstate = raw_text(L, idx, "sqlstate", 16);
    e.detail = raw_text(L, idx, "detail");
    e.hint = raw_text(L, idx, "hint");
    e.statement = raw_text(L, idx, "statement");
    e.source = raw_text(L, idx, "source", 1024);
    std::string line = raw_text(L, idx, "line", 16);
    if (!line.empty()) e.line = std::atoi(line.c_str());
    if (e.line < 0) e.line = 0;
    e.traceback = raw_text(L, idx, "traceback", 4 * k_max_error_text);
    return e;
  }
  if (type == LUA_TSTRING || type == LUA_TNUMBER) {
    size_t n = 0;
    const char* s = lua_tolstring(L, idx, &n);
    std::string message = bounded_text(std::string_view(s, n), k_max_error_text);
    std::string source;
    int line = 0;
    split_position(message, source, line);
    run::step_error e = make_step_error(error_kind::step_failed, message, "error");
    e.source = bounded_text(source, 1024);
    e.line = line;
    return e;
  }
  return make_step_error(error_kind::step_failed, std::string("(error object is a ") + lua_typename(L, type) + " value)",
                         "error");
}

run::step_error from_exception(const std::exception& ex) {
  run::step_error e = run::step_error_from(ex);
  e.message = bounded_text(secrets::redact(e.message), k_max_error_text);
  e.detail = bounded_text(e.detail, k_max_error_text);
  e.hint = bounded_text(e.hint, k_max_error_text);
  e.statement = bounded_text(e.statement, k_max_error_text);
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
  run::step_error e = make_step_error(kind, message);
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
  // Not through the trampoline: it runs where the error was raised, even at a "stack
  // overflow", so it must not check the stack again. It catches std::exception itself.
  // stack: err
  lua_settop(L, 1);
  if (lua_type(L, 1) != LUA_TTABLE) {
    std::optional<run::step_error> e;
    try {
      e = to_step_error(L, 1);
    } catch (const std::exception&) {
      e.reset();
    }
    if (e) push_error(L, *e);
    else lua_pushliteral(L, "(unable to convert the error: out of memory)");
    lua_replace(L, 1);
  }
  if (lua_type(L, 1) == LUA_TTABLE) {
    lua_pushliteral(L, "traceback");
    luaL_traceback(L, L, nullptr, 1);
    lua_rawset(L, 1);  // raw: the table may be the runbook's own, with a locked metatable
  }
  lua_settop(L, 1);
  return 1;
}

int protected_call(lua_State* L, int nargs, int nresults) {
  int base = lua_gettop(L) - nargs;  // the function
  lua_pushcfunction(L, traceback_handler);
  lua_insert(L, base);
  int status = lua_pcall(L, nargs, nresults, base);
  lua_remove(L, base);
  return status;
}

namespace detail {

std::set<lua_CFunction>& trampolines() {
  static std::set<lua_CFunction> all;
  return all;
}

bool note_trampoline(lua_CFunction f) {
  trampolines().insert(f);
  return true;
}

}  // namespace detail

bool is_trampoline(lua_CFunction f) { return f == &traceback_handler || detail::trampolines().count(f) > 0; }

}  // namespace rb::lua
