// Lua module: db, method rows — for row in db:rows(sql, ...) do ... end: the engine's streaming
// cursor (engine/db/cursor) as a for-in iterator, 1000 rows a fetch, so memory stays bounded
// however many rows there are. Closed at the end of the rows, on an error, and after the step
// for a loop left with break.
#include <vector>

#include "bindings/convert.hpp"
#include "bindings/db.hpp"
#include "bindings/db_module.hpp"
#include "bindings/error.hpp"
#include "engine/db/cursor.hpp"

namespace rb::lua {
namespace {

constexpr const char* k_rows_meta = "rb.db.rows";
constexpr const char* k_open_cursors = "rb.db.cursors";
constexpr std::size_t k_batch = 1000;

/// A rows() iterator.
struct lua_rows {
  lua_db* handle = nullptr;  // the connection object (kept alive by a registry ref)
  int handle_ref = LUA_NOREF;
  std::unique_ptr<db::cursor> cursor;
};

/// Ends the read: CLOSE, and COMMIT of the transaction the cursor opened. Its failure is not
/// raised (a lost session took the cursor and its transaction with it; a failed one is rolled
/// back). When db:close() destroyed the connection, the cursor is only forgotten.
void close_rows(lua_rows* it) {
  if (!it->cursor) return;
  if (it->handle && it->handle->closed) {
    it->cursor->abandon();
  } else {
    try {
      it->cursor->close();
    } catch (const std::exception&) {
      // ended all the same: the cursor rolled back what it had opened
    }
  }
  it->cursor.reset();
}

/// Removes the iterator from the open ones and lets its connection handle go.
void forget_rows(lua_State* L, lua_rows* it) {
  lua_getfield(L, LUA_REGISTRYINDEX, k_open_cursors);
  lua_pushlightuserdata(L, it);
  lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  luaL_unref(L, LUA_REGISTRYINDEX, it->handle_ref);
  it->handle_ref = LUA_NOREF;
}

int l_db_rows_next(lua_State* L) {
  auto* it = static_cast<lua_rows*>(luaL_checkudata(L, 1, k_rows_meta));
  if (!it->cursor) return 0;
  conn_of(L, it->handle);  // raises outside a step, or when db:close() ended the connection
  const std::vector<db::field>* row = it->cursor->next();  // a failure closes the cursor
  if (!row) {
    it->cursor.reset();
    forget_rows(L, it);
    return 0;
  }
  push_row(L, it->cursor->columns(), *row);
  return 1;
}

/// Never a word to the server from a finalizer: an iterator is collected only after it was
/// closed (the open ones are held by the registry until close_open_cursors).
int l_db_rows_gc(lua_State* L) {
  auto* it = static_cast<lua_rows*>(lua_touserdata(L, 1));
  if (it->cursor) it->cursor->abandon();
  it->~lua_rows();
  return 0;
}

/// rows(sql, ...): for row in db:rows(sql, ...) do ... end — rows fetched 1000 at a time from
/// a server-side cursor, so memory stays bounded however many rows there are.
int l_db_rows(lua_State* L) {
  lua_db* h = check_db(L, 1);
  std::string sql = sql_arg(L, 2);
  auto params = params_from(L, 3);
  auto cursor = std::make_unique<db::cursor>(conn_of(L, h), sql, params, k_batch);
  auto* it = static_cast<lua_rows*>(lua_newuserdata(L, sizeof(lua_rows)));
  new (it) lua_rows();
  it->cursor = std::move(cursor);
  luaL_getmetatable(L, k_rows_meta);
  lua_setmetatable(L, -2);
  it->handle = h;
  lua_pushvalue(L, 1);
  it->handle_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  // Remember it, so a loop left with break does not leave the cursor open past the step.
  lua_getfield(L, LUA_REGISTRYINDEX, k_open_cursors);
  lua_pushlightuserdata(L, it);
  lua_pushvalue(L, -3);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  // for-in protocol: iterator function, state (the userdata), nil
  lua_pushcfunction(L, trampoline<l_db_rows_next>);
  lua_insert(L, -2);
  return 2;
}

}  // namespace

void close_open_cursors(lua_State* L) {
  lua_getfield(L, LUA_REGISTRYINDEX, k_open_cursors);
  std::vector<lua_rows*> open;
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    open.push_back(static_cast<lua_rows*>(lua_touserdata(L, -2)));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  for (lua_rows* it : open) {
    close_rows(it);
    forget_rows(L, it);
  }
}

void open_db_rows(lua_State* L) {
  // stack: methods
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, k_open_cursors);

  luaL_newmetatable(L, k_rows_meta);
  lua_pushcfunction(L, finalizer<l_db_rows_gc>);
  lua_setfield(L, -2, "__gc");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);

  lua_pushcfunction(L, trampoline<l_db_rows>);
  lua_setfield(L, -2, "rows");
}

}  // namespace rb::lua
