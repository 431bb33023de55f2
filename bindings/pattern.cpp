// Lua module (part of string): pattern matching that time limits and cancels can stop.
//
// LuaJIT matches patterns in C, where the instruction-count hook never fires, and a pattern
// such as string.rep("a*", 12) .. "b" backtracks for hours. This is a matcher for the same
// Lua 5.1 pattern language that counts its steps and, every few thousand, asks the sandbox
// whether the deadline has passed or the operator cancelled (sandbox::check_interrupt raises
// the usual timeout or cancelled error).
#include "bindings/pattern.hpp"

#include <cstddef>
#include <cstring>

#include "bindings/error.hpp"
#include "bindings/sandbox.hpp"

namespace rb::lua {
namespace {

constexpr int k_max_captures = 32;
constexpr int k_max_depth = 200;        ///< nested match() calls ("pattern too complex")
constexpr long k_check_every = 1 << 14; ///< matching steps between deadline checks
constexpr std::ptrdiff_t k_cap_unfinished = -1;
constexpr std::ptrdiff_t k_cap_position = -2;
constexpr char k_esc = '%';
constexpr const char* k_specials = "^$*+?.([%-";

struct match_state {
  lua_State* L;
  const char* src_init;
  const char* src_end;
  const char* p_end;
  int level = 0;
  int depth = 0;
  long budget = k_check_every;
  struct {
    const char* init;
    std::ptrdiff_t len;
  } capture[k_max_captures];
};

void tick(match_state* ms) {
  if (--ms->budget > 0) return;
  ms->budget = k_check_every;
  sandbox::check_interrupt(ms->L);
}

[[noreturn]] void fail(match_state* ms, const char* what) {
  luaL_error(ms->L, "%s", what);
  __builtin_unreachable();
}

unsigned char uc(char c) { return static_cast<unsigned char>(c); }

// ASCII classes, as LuaJIT's (locale-independent) character tables define them.
bool is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(int c) { return c >= '0' && c <= '9'; }
bool is_lower(int c) { return c >= 'a' && c <= 'z'; }
bool is_upper(int c) { return c >= 'A' && c <= 'Z'; }
bool is_space(int c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
bool is_cntrl(int c) { return c < 32 || c == 127; }
bool is_graph(int c) { return c > 32 && c < 127; }
bool is_punct(int c) { return is_graph(c) && !is_alpha(c) && !is_digit(c); }
bool is_xdigit(int c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

bool match_class(int c, int cl) {
  bool res;
  switch (cl | 0x20) {
    case 'a': res = is_alpha(c); break;
    case 'c': res = is_cntrl(c); break;
    case 'd': res = is_digit(c); break;
    case 'g': res = is_graph(c); break;
    case 'l': res = is_lower(c); break;
    case 'p': res = is_punct(c); break;
    case 's': res = is_space(c); break;
    case 'u': res = is_upper(c); break;
    case 'w': res = is_alpha(c) || is_digit(c); break;
    case 'x': res = is_xdigit(c); break;
    case 'z': res = c == 0; break;
    default: return cl == c;
  }
  return is_upper(cl) ? !res : res;
}

/// The end of the single-character class at p ("%a", "[a-z]", "x").
const char* class_end(match_state* ms, const char* p) {
  char c = *p++;
  if (c == k_esc) {
    if (p >= ms->p_end) fail(ms, "malformed pattern (ends with '%')");
    return p + 1;
  }
  if (c == '[') {
    if (p < ms->p_end && *p == '^') ++p;
    do {  // the first character may be ']' itself
      if (p >= ms->p_end) fail(ms, "malformed pattern (missing ']')");
      char d = *p++;
      if (d == k_esc && p < ms->p_end) ++p;
    } while (p >= ms->p_end || *p != ']');
    return p + 1;
  }
  return p;
}

/// Whether c is in the set [ ... ] from p (at '[') to ec (at ']').
bool match_bracket(int c, const char* p, const char* ec) {
  bool sig = true;
  if (*(p + 1) == '^') {
    sig = false;
    ++p;
  }
  while (++p < ec) {
    if (*p == k_esc) {
      ++p;
      if (match_class(c, uc(*p))) return sig;
    } else if (*(p + 1) == '-' && p + 2 < ec) {
      p += 2;
      if (uc(*(p - 2)) <= c && c <= uc(*p)) return sig;
    } else if (uc(*p) == c) {
      return sig;
    }
  }
  return !sig;
}

bool single_match(match_state* ms, const char* s, const char* p, const char* ep) {
  if (s >= ms->src_end) return false;
  int c = uc(*s);
  switch (*p) {
    case '.': return true;
    case k_esc: return match_class(c, uc(*(p + 1)));
    case '[': return match_bracket(c, p, ep - 1);
    default: return uc(*p) == c;
  }
}

const char* do_match(match_state* ms, const char* s, const char* p);

const char* match_balance(match_state* ms, const char* s, const char* p) {
  if (p + 1 >= ms->p_end) fail(ms, "missing arguments to '%b'");
  if (s >= ms->src_end || *s != *p) return nullptr;
  char open = *p, close = *(p + 1);
  int depth = 1;
  while (++s < ms->src_end) {
    tick(ms);
    if (*s == close) {
      if (--depth == 0) return s + 1;
    } else if (*s == open) {
      ++depth;
    }
  }
  return nullptr;
}

const char* max_expand(match_state* ms, const char* s, const char* p, const char* ep) {
  std::ptrdiff_t i = 0;
  while (single_match(ms, s + i, p, ep)) {
    ++i;
    tick(ms);
  }
  while (i >= 0) {  // try the rest with the longest run first
    if (const char* res = do_match(ms, s + i, ep + 1)) return res;
    --i;
  }
  return nullptr;
}

const char* min_expand(match_state* ms, const char* s, const char* p, const char* ep) {
  for (;;) {
    if (const char* res = do_match(ms, s, ep + 1)) return res;
    if (!single_match(ms, s, p, ep)) return nullptr;
    ++s;
  }
}

const char* start_capture(match_state* ms, const char* s, const char* p, std::ptrdiff_t what) {
  if (ms->level >= k_max_captures) fail(ms, "too many captures");
  ms->capture[ms->level].init = s;
  ms->capture[ms->level].len = what;
  ms->level++;
  const char* res = do_match(ms, s, p);
  if (!res) ms->level--;
  return res;
}

const char* end_capture(match_state* ms, const char* s, const char* p) {
  int l = ms->level - 1;
  while (l >= 0 && ms->capture[l].len != k_cap_unfinished) --l;
  if (l < 0) fail(ms, "invalid pattern capture");
  ms->capture[l].len = s - ms->capture[l].init;
  const char* res = do_match(ms, s, p);
  if (!res) ms->capture[l].len = k_cap_unfinished;
  return res;
}

const char* match_capture(match_state* ms, const char* s, int digit) {
  int l = digit - '1';
  if (l < 0 || l >= ms->level || ms->capture[l].len == k_cap_unfinished) fail(ms, "invalid capture index");
  std::ptrdiff_t len = ms->capture[l].len;
  if (len < 0) return nullptr;  // a position capture matches no text
  if (ms->src_end - s >= len && std::memcmp(ms->capture[l].init, s, static_cast<std::size_t>(len)) == 0) return s + len;
  return nullptr;
}

const char* do_match(match_state* ms, const char* s, const char* p) {
  if (++ms->depth > k_max_depth) fail(ms, "pattern too complex");
  tick(ms);
  const char* res = nullptr;
  for (;;) {
    if (p >= ms->p_end) {
      res = s;
      break;
    }
    if (*p == '(') {
      if (p + 1 < ms->p_end && *(p + 1) == ')') res = start_capture(ms, s, p + 2, k_cap_position);
      else res = start_capture(ms, s, p + 1, k_cap_unfinished);
      break;
    }
    if (*p == ')') {
      res = end_capture(ms, s, p + 1);
      break;
    }
    if (*p == '$' && p + 1 == ms->p_end) {
      res = s == ms->src_end ? s : nullptr;
      break;
    }
    if (*p == k_esc && p + 1 < ms->p_end && *(p + 1) == 'b') {
      s = match_balance(ms, s, p + 2);
      if (!s) break;
      p += 4;
      continue;
    }
    if (*p == k_esc && p + 1 < ms->p_end && *(p + 1) == 'f') {
      p += 2;
      if (p >= ms->p_end || *p != '[') fail(ms, "missing '[' after '%f' in pattern");
      const char* ep = class_end(ms, p);
      int prev = s == ms->src_init ? 0 : uc(*(s - 1));
      int cur = s < ms->src_end ? uc(*s) : 0;
      if (match_bracket(prev, p, ep - 1) || !match_bracket(cur, p, ep - 1)) break;
      p = ep;
      continue;
    }
    if (*p == k_esc && p + 1 < ms->p_end && is_digit(uc(*(p + 1)))) {
      s = match_capture(ms, s, uc(*(p + 1)));
      if (!s) break;
      p += 2;
      continue;
    }
    // A single-character class, maybe followed by a repetition.
    const char* ep = class_end(ms, p);
    bool m = single_match(ms, s, p, ep);
    char rep = ep < ms->p_end ? *ep : '\0';
    if (rep == '?') {
      if (m && (res = do_match(ms, s + 1, ep + 1)) != nullptr) break;
      p = ep + 1;
      continue;
    }
    if (rep == '*') {
      res = max_expand(ms, s, p, ep);
      break;
    }
    if (rep == '+') {
      res = m ? max_expand(ms, s + 1, p, ep) : nullptr;
      break;
    }
    if (rep == '-') {
      res = min_expand(ms, s, p, ep);
      break;
    }
    if (!m) break;
    ++s;
    p = ep;
  }
  ms->depth--;
  return res;
}

void push_one_capture(match_state* ms, int i, const char* s, const char* e) {
  if (i >= ms->level) {
    if (i != 0) fail(ms, "invalid capture index");
    lua_pushlstring(ms->L, s, static_cast<std::size_t>(e - s));  // the whole match
    return;
  }
  std::ptrdiff_t l = ms->capture[i].len;
  if (l == k_cap_unfinished) fail(ms, "unfinished capture");
  if (l == k_cap_position) lua_pushinteger(ms->L, ms->capture[i].init - ms->src_init + 1);
  else lua_pushlstring(ms->L, ms->capture[i].init, static_cast<std::size_t>(l));
}

int push_captures(match_state* ms, const char* s, const char* e) {
  int n = (ms->level == 0 && s) ? 1 : ms->level;
  luaL_checkstack(ms->L, n, "too many captures");
  for (int i = 0; i < n; ++i) push_one_capture(ms, i, s, e);
  return n;
}

void init_state(match_state& ms, lua_State* L, const char* s, std::size_t ls, const char* p_end) {
  ms.L = L;
  ms.src_init = s;
  ms.src_end = s + ls;
  ms.p_end = p_end;
}

bool has_specials(const char* p, std::size_t lp) {
  for (std::size_t i = 0; i < lp; ++i)
    if (std::strchr(k_specials, p[i]) && p[i] != '\0') return true;
  return false;
}

int find_aux(lua_State* L, bool find) {
  std::size_t ls = 0, lp = 0;
  const char* s = luaL_checklstring(L, 1, &ls);
  const char* p = luaL_checklstring(L, 2, &lp);
  lua_Integer init = luaL_optinteger(L, 3, 1);
  lua_Integer st = init < 0 ? init + static_cast<lua_Integer>(ls) : init - 1;
  if (st < 0) st = 0;
  if (st > static_cast<lua_Integer>(ls)) st = static_cast<lua_Integer>(ls);
  if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
    std::string_view hay(s + st, ls - static_cast<std::size_t>(st));
    std::size_t at = hay.find(std::string_view(p, lp));
    if (at != std::string_view::npos) {
      lua_pushinteger(L, static_cast<lua_Integer>(st + at + 1));
      lua_pushinteger(L, static_cast<lua_Integer>(st + at + lp));
      return 2;
    }
    lua_pushnil(L);
    return 1;
  }
  match_state ms;
  const char* pat = p;
  bool anchor = lp > 0 && *pat == '^';
  if (anchor) ++pat;
  init_state(ms, L, s, ls, p + lp);
  const char* s1 = s + st;
  do {
    ms.level = 0;
    ms.depth = 0;
    tick(&ms);
    if (const char* e = do_match(&ms, s1, pat)) {
      if (find) {
        lua_pushinteger(L, s1 - s + 1);
        lua_pushinteger(L, e - s);
        return push_captures(&ms, nullptr, nullptr) + 2;
      }
      return push_captures(&ms, s1, e);
    }
  } while (s1++ < ms.src_end && !anchor);
  lua_pushnil(L);
  return 1;
}

int l_string_find(lua_State* L) { return find_aux(L, true); }
int l_string_match(lua_State* L) { return find_aux(L, false); }

int l_string_gmatch_next(lua_State* L) {
  // upvalues: subject, pattern, position (bytes already consumed)
  std::size_t ls = 0, lp = 0;
  const char* s = lua_tolstring(L, lua_upvalueindex(1), &ls);
  const char* p = lua_tolstring(L, lua_upvalueindex(2), &lp);
  auto pos = static_cast<std::size_t>(lua_tointeger(L, lua_upvalueindex(3)));
  match_state ms;
  init_state(ms, L, s, ls, p + lp);
  for (const char* src = s + pos; src <= ms.src_end; ++src) {
    ms.level = 0;
    ms.depth = 0;
    tick(&ms);
    if (const char* e = do_match(&ms, src, p)) {
      std::ptrdiff_t next = e - s;
      if (e == src) ++next;  // progress past an empty match
      lua_pushinteger(L, next);
      lua_replace(L, lua_upvalueindex(3));
      return push_captures(&ms, src, e);
    }
  }
  lua_pushinteger(L, static_cast<lua_Integer>(ls) + 1);
  lua_replace(L, lua_upvalueindex(3));
  return 0;
}

int l_string_gmatch(lua_State* L) {
  luaL_checkstring(L, 1);
  luaL_checkstring(L, 2);
  lua_settop(L, 2);
  lua_pushinteger(L, 0);
  lua_pushcclosure(L, trampoline<l_string_gmatch_next>, 3);
  return 1;
}

void add_string_replacement(match_state* ms, luaL_Buffer* b, const char* s, const char* e) {
  std::size_t l = 0;
  const char* news = lua_tolstring(ms->L, 3, &l);
  for (std::size_t i = 0; i < l; ++i) {
    if (news[i] != k_esc) {
      luaL_addchar(b, news[i]);
      continue;
    }
    if (++i >= l) fail(ms, "invalid use of '%' in replacement string");
    if (!is_digit(uc(news[i]))) {
      luaL_addchar(b, news[i]);
    } else if (news[i] == '0') {
      luaL_addlstring(b, s, static_cast<std::size_t>(e - s));
    } else {
      push_one_capture(ms, news[i] - '1', s, e);
      luaL_addvalue(b);
    }
  }
}

void add_value(match_state* ms, luaL_Buffer* b, const char* s, const char* e) {
  lua_State* L = ms->L;
  switch (lua_type(L, 3)) {
    case LUA_TNUMBER:
    case LUA_TSTRING: add_string_replacement(ms, b, s, e); return;
    case LUA_TFUNCTION: {
      lua_pushvalue(L, 3);
      int n = push_captures(ms, s, e);
      lua_call(L, n, 1);
      break;
    }
    default: {  // table
      push_one_capture(ms, 0, s, e);
      lua_gettable(L, 3);
      break;
    }
  }
  if (!lua_toboolean(L, -1)) {  // nil or false: keep the original text
    lua_pop(L, 1);
    lua_pushlstring(L, s, static_cast<std::size_t>(e - s));
  } else if (!lua_isstring(L, -1)) {
    luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  }
  luaL_addvalue(b);
}

int l_string_gsub(lua_State* L) {
  std::size_t ls = 0, lp = 0;
  const char* src = luaL_checklstring(L, 1, &ls);
  const char* p = luaL_checklstring(L, 2, &lp);
  int tr = lua_type(L, 3);
  luaL_argcheck(L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE, 3,
                "string/function/table expected");
  lua_Integer max_s = luaL_optinteger(L, 4, static_cast<lua_Integer>(ls) + 1);
  const char* pat = p;
  bool anchor = lp > 0 && *pat == '^';
  if (anchor) ++pat;
  match_state ms;
  init_state(ms, L, src, ls, p + lp);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_Integer n = 0;
  while (n < max_s) {
    ms.level = 0;
    ms.depth = 0;
    tick(&ms);
    const char* e = do_match(&ms, src, pat);
    if (e) {
      ++n;
      add_value(&ms, &b, src, e);
    }
    if (e && e > src) src = e;  // skip a non-empty match
    else if (src < ms.src_end) luaL_addchar(&b, *src++);
    else break;
    if (anchor) break;
  }
  luaL_addlstring(&b, src, static_cast<std::size_t>(ms.src_end - src));
  luaL_pushresult(&b);
  lua_pushinteger(L, n);
  return 2;
}

}  // namespace

void open_bounded_patterns(lua_State* L) {
  // stack: string table
  lua_pushcfunction(L, trampoline<l_string_find>);
  lua_setfield(L, -2, "find");
  lua_pushcfunction(L, trampoline<l_string_match>);
  lua_setfield(L, -2, "match");
  lua_pushcfunction(L, trampoline<l_string_gmatch>);
  lua_setfield(L, -2, "gmatch");
  lua_pushcfunction(L, trampoline<l_string_gsub>);
  lua_setfield(L, -2, "gsub");
}

}  // namespace rb::lua
