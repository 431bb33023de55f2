// Lua module: secret "NAME" reads $NAME, or the file named by $NAME_FILE, and registers the
// value so that it is replaced by "***" in output, logs, error messages and the audit log.
#include "bindings/secret.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "bindings/error.hpp"
#include "bindings/sandbox.hpp"
#include "engine/util/secrets.hpp"
#include "engine/util/text.hpp"

namespace rb::lua {
namespace {

int l_secret(lua_State* L) {
  std::string name = luaL_checkstring(L, 1);
  std::string value;
  if (const char* v = std::getenv(name.c_str()); v && *v) {
    value = v;
  } else if (const char* f = std::getenv((name + "_FILE").c_str()); f && *f) {
    std::ifstream in(f, std::ios::binary);
    if (!in) raise_usage(L, error_kind::usage, "secret '" + name + "': unable to read the file named by " + name + "_FILE");
    std::stringstream ss;
    ss << in.rdbuf();
    value = std::string(trim(ss.str()));
  } else {
    raise_usage(L, error_kind::usage, "secret '" + name + "' is not set: set the environment variable " + name +
                                          ", or " + name + "_FILE to a file holding it");
  }
  secrets::add(value);
  lua_pushlstring(L, value.data(), value.size());
  return 1;
}

}  // namespace

void open_secret(sandbox& sb) {
  lua_pushcfunction(sb.state(), trampoline<l_secret>);
  sb.set_global("secret");
}

}  // namespace rb::lua
