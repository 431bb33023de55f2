// Reading a declaration's spec table.
#include "bindings/spec_reader.hpp"

#include <cstdio>

namespace rb::lua {

int absolute(lua_State* L, int idx) { return idx < 0 ? lua_gettop(L) + idx + 1 : idx; }

std::string number_text(double d) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", d);
  return buf;
}

void fail(const run::source_loc& at, const std::string& what) {
  throw error(error_kind::bad_runbook, at.str() + ": " + what);
}

}  // namespace rb::lua
