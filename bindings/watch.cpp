// Lua module: watches. Reads watch "name" { ... } into trigger::watch_def, and runs the Lua
// functions a watch may hold (metrics, conditions, actions) inside the run that samples it.
#include "bindings/watch.hpp"

#include <algorithm>
#include <cctype>
#include <functional>
#include <memory>
#include <set>

#include "bindings/convert.hpp"
#include "bindings/ctx.hpp"
#include "bindings/db.hpp"
#include "bindings/error.hpp"
#include "bindings/sandbox.hpp"
#include "bindings/spec_reader.hpp"
#include "engine/run/context.hpp"
#include "engine/run/notify.hpp"
#include "engine/run/params.hpp"
#include "engine/trigger/watch.hpp"

namespace rb::lua {
namespace {

using run::milliseconds;
using run::source_loc;
using trigger::value;

/// The run a watch's functions run in, and the functions themselves (registry references).
class watch_scope final : public run::code_scope {
 public:
  watch_scope(sandbox& sb, const std::string& watch, source_loc where, milliseconds timeout)
      : m_sb(sb), m_timeout(timeout) {
    m_step.name = watch;
    m_step.where = std::move(where);
  }
  ~watch_scope() override {
    for (int ref : m_refs) luaL_unref(m_sb.state(), LUA_REGISTRYINDEX, ref);
  }
  watch_scope(const watch_scope&) = delete;
  watch_scope& operator=(const watch_scope&) = delete;

  void enter(run::run_context* ctx) override { m_ctx = ctx; }

  /// Keeps the function at idx; returns its reference.
  int keep(lua_State* L, int idx) {
    lua_pushvalue(L, idx);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    m_refs.push_back(ref);
    return ref;
  }

  /// Calls function `ref` with ctx and, when given, the sample as a table m (in the order
  /// `m_first` says), under the watch's sample timeout. Returns its first result. A failure
  /// is audited (watch.error) and shown, then thrown: the watch treats it as unknown.
  value call(int ref, const trigger::sample* s, bool sample_first, const std::string& what) {
    if (!m_ctx || !m_ctx->phase())
      throw error(error_kind::usage, what + " can only run while its watch runs");
    lua_State* L = m_sb.state();
    int top = lua_gettop(L);
    auto deadline = m_ctx->clock().now() + m_timeout;
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    run::step_call c{m_ctx->book(), *m_ctx->phase(), m_step, 1, deadline, m_ctx};
    if (s && sample_first) push_sample(L, *s);
    push_ctx(L, c);
    if (s && !sample_first) push_sample(L, *s);
    m_sb.set_current_run(m_ctx);
    std::optional<run::step_error> err = m_sb.call(s ? 2 : 1, 1, deadline, what);
    close_open_cursors(L);
    m_sb.set_current_run(nullptr);
    if (err) {
      lua_settop(L, top);
      std::string message = what + ": " + err->describe();
      m_ctx->audit("watch.error", {{"watch", m_step.name}, {"function", what}, {"error", err->to_json()}}, false);
      m_ctx->out().message(message);
      throw error(err->kind, message);
    }
    value v;
    switch (lua_type(L, -1)) {
      case LUA_TNIL: break;
      case LUA_TBOOLEAN: v = lua_toboolean(L, -1) != 0; break;
      case LUA_TNUMBER: v = static_cast<double>(lua_tonumber(L, -1)); break;
      case LUA_TSTRING: {
        std::size_t n = 0;
        const char* p = lua_tolstring(L, -1, &n);
        v = std::string(p, n);
        break;
      }
      default: {
        std::string type = luaL_typename(L, -1);
        lua_settop(L, top);
        throw error(error_kind::step_failed,
                    what + " returned a " + type + "; it must return a number, boolean, string or nil");
      }
    }
    lua_settop(L, top);
    return v;
  }

 private:
  static void push_sample(lua_State* L, const trigger::sample& s) {
    lua_createtable(L, 0, static_cast<int>(s.size()));
    for (const auto& [name, v] : s) {
      if (std::holds_alternative<std::monostate>(v)) continue;
      if (auto b = std::get_if<bool>(&v)) lua_pushboolean(L, *b);
      else if (auto d = std::get_if<double>(&v)) lua_pushnumber(L, *d);
      else {
        const std::string& t = std::get<std::string>(v);
        lua_pushlstring(L, t.data(), t.size());
      }
      lua_setfield(L, -2, name.c_str());
    }
  }

  sandbox& m_sb;
  milliseconds m_timeout;
  run::step_def m_step;  ///< what ctx.step says inside the watch: its name
  run::run_context* m_ctx = nullptr;
  std::vector<int> m_refs;
};

/// "function (file.lua:12)" for a function at idx.
std::string function_text(lua_State* L, int idx) {
  lua_Debug ar;
  lua_pushvalue(L, idx);
  std::string out = "function";
  if (lua_getinfo(L, ">S", &ar)) {
    std::string src = ar.source && ar.source[0] == '@' ? ar.source + 1 : ar.short_src;
    out += " (" + src + ":" + std::to_string(ar.linedefined) + ")";
  }
  return out;
}

bool identifier(const std::string& n) {
  if (n.empty() || !(std::isalpha(static_cast<unsigned char>(n[0])) || n[0] == '_')) return false;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  static const std::set<std::string> reserved = {"and", "or", "not", "true", "false", "nil"};
  return !reserved.count(n);
}

class watch_reader {
 public:
  watch_reader(lua_State* L, std::shared_ptr<watch_scope> scope) : m_L(L), m_scope(std::move(scope)) {}

  /// The condition at the top of the stack (popped): an expression string or a function(m, ctx).
  std::optional<trigger::condition> condition(const source_loc& at, const std::string& owner, const char* key) {
    std::optional<trigger::condition> out;
    int t = lua_type(m_L, -1);
    if (t == LUA_TSTRING) {
      trigger::condition c;
      c.text = lua_tostring(m_L, -1);
      try {
        c.expr = trigger::expression::parse(c.text);
      } catch (const error& e) {
        fail(at, owner + ": " + key + ": " + e.what());
      }
      out = std::move(c);
    } else if (t == LUA_TFUNCTION) {
      trigger::condition c;
      c.text = function_text(m_L, -1);
      int ref = m_scope->keep(m_L, -1);
      std::string what = owner + " " + key + " " + c.text;
      c.fn = [scope = m_scope, ref, what](const trigger::sample& s) { return scope->call(ref, &s, true, what); };
      out = std::move(c);
    } else if (t != LUA_TNIL) {
      fail(at, owner + ": '" + key + "' must be an expression string such as \"x > 5\" or a function(m, ctx), not a " +
                   luaL_typename(m_L, -1));
    }
    lua_pop(m_L, 1);
    return out;
  }

  /// The action at the top of the stack (popped).
  trigger::action action(const source_loc& at, const std::string& owner) {
    trigger::action a;
    int t = lua_type(m_L, -1);
    if (t == LUA_TSTRING) {
      std::string s = lua_tostring(m_L, -1);
      if (s == "rollback") a.what = trigger::action::kind::rollback;
      else if (s == "abort") a.what = trigger::action::kind::abort;
      else
        fail(at, owner + ": action = \"" + s + "\" is not \"rollback\" or \"abort\"" + did_you_mean(s, {"rollback", "abort"}) +
                     " (or use escalate{...}, alert{...}, investigate{...} or a function)");
    } else if (t == LUA_TFUNCTION) {
      a.what = trigger::action::kind::call;
      std::string what = owner + " action " + function_text(m_L, -1);
      int ref = m_scope->keep(m_L, -1);
      a.args = {{"function", function_text(m_L, -1)}};
      a.fn = [scope = m_scope, ref, what](const trigger::sample& s) { scope->call(ref, &s, false, what); };
    } else if (t == LUA_TTABLE) {
      lua_getfield(m_L, -1, "action");
      std::string kind = lua_type(m_L, -1) == LUA_TSTRING ? lua_tostring(m_L, -1) : "";
      lua_pop(m_L, 1);
      if (kind == "escalate" || kind == "alert") {
        json args = to_json(m_L, -1);
        try {
          if (kind == "escalate") run::check_escalate_spec(args);
          else run::check_alert_spec(args, "alert");
        } catch (const error& e) {
          fail(at, owner + ": " + e.what());
        }
        args.erase("action");
        a.what = kind == "escalate" ? trigger::action::kind::escalate : trigger::action::kind::alert;
        a.args = std::move(args);
      } else if (kind == "investigate") {
        spec_reader r(m_L, -1, at, owner + " investigate", {"action", "window", "unless", "then"});
        a.what = trigger::action::kind::investigate;
        a.window = r.duration("window").value_or(milliseconds(0));
        r.get("unless");
        a.unless = condition(at, owner + " investigate", "unless");
        if (r.get("then") == LUA_TNIL) fail(at, owner + ": investigate needs an action (what to do when the window passes)");
        a.then = std::make_shared<const trigger::action>(action(at, owner + " investigate"));
      } else {
        fail(at, owner + ": action must be \"rollback\", \"abort\", escalate{...}, alert{...}, investigate{...} or a function");
      }
    } else {
      fail(at, owner + ": action must be \"rollback\", \"abort\", escalate{...}, alert{...}, investigate{...} or a function, not " +
                   (t == LUA_TNIL ? std::string("missing") : std::string("a ") + luaL_typename(m_L, -1)));
    }
    lua_pop(m_L, 1);
    return a;
  }

  trigger::trigger_def trigger(const declaration& d) {
    trigger::trigger_def t;
    t.name = d.name;
    t.line = d.line;
    source_loc at{d.source, d.line};
    std::string owner = "trigger '" + d.name + "'";
    spec_reader r(m_L, -1, at, owner, {"when", "after", "before", "sustained", "clear_when", "action", "description"});
    if (r.items() > 0) fail(at, owner + ": a trigger holds fields only");
    t.after = r.duration("after");
    t.before = r.duration("before");
    t.sustained = r.duration("sustained");
    r.string("description");
    r.get("when");
    auto when = condition(at, owner, "when");
    if (!when) fail(at, owner + " needs when = \"expression\" (or a function(m, ctx))");
    t.when = std::move(*when);
    r.get("clear_when");
    t.clear_when = condition(at, owner, "clear_when");
    r.get("action");
    t.act = action(at, owner);
    return t;
  }

 private:
  lua_State* m_L;
  std::shared_ptr<watch_scope> m_scope;
};

/// investigate{ window = "10m", unless = "...", action = ... }: a descriptor read by the loader.
int l_watch_investigate(lua_State* L) {
  if (lua_type(L, 1) != LUA_TTABLE)
    raise_usage(L, error_kind::bad_runbook,
                "investigate takes a table: investigate{ window = \"10m\", unless = \"x < 5\", action = \"rollback\" }");
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {
    std::string key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
    if (key != "window" && key != "unless" && key != "action")
      raise_usage(L, error_kind::bad_runbook,
                  "investigate: unknown field '" + key + "'" + did_you_mean(key, {"window", "unless", "action"}) +
                      "; known fields: window, unless, action");
    lua_pop(L, 1);
  }
  lua_createtable(L, 0, 4);
  for (const char* k : {"window", "unless"}) {
    lua_getfield(L, 1, k);
    lua_setfield(L, -2, k);
  }
  lua_getfield(L, 1, "action");
  lua_setfield(L, -2, "then");
  lua_pushliteral(L, "investigate");
  lua_setfield(L, -2, "action");
  return 1;
}

}  // namespace

void open_watch(sandbox& sb) {
  lua_pushcfunction(sb.state(), trampoline<l_watch_investigate>);
  sb.set_global("investigate");
}

run::phase_def read_watch(sandbox& sb, const declaration& d) {
  lua_State* L = sb.state();
  run::phase_def p;
  p.name = d.name;
  p.where = {d.source, d.line};
  std::string owner = "watch '" + d.name + "'";
  spec_reader r(L, -1, p.where, owner, {"every", "lasting", "sample_timeout", "metrics", "description"});
  auto def = std::make_shared<trigger::watch_def>();
  def->name = d.name;
  def->line = d.line;
  if (auto v = r.duration("sample_timeout")) def->sample_timeout = *v;
  p.description = r.string("description").value_or("");
  auto scope = std::make_shared<watch_scope>(sb, d.name, p.where, def->sample_timeout);
  watch_reader w(L, scope);
  // every / lasting: a duration, or a function(ctx) returning one, called as the watch starts
  // (lasting = function(ctx) return ctx.params.watch_for end).
  for (const char* key : {"every", "lasting"}) {
    std::function<milliseconds()>& fn = std::string_view(key) == "every" ? def->every_fn : def->lasting_fn;
    milliseconds& fixed = std::string_view(key) == "every" ? def->every : def->lasting;
    if (r.get(key) == LUA_TFUNCTION) {
      int ref = scope->keep(L, -1);
      std::string what = owner + " " + key + " " + function_text(L, -1);
      fn = [scope, ref, what] {
        value v = scope->call(ref, nullptr, false, what);
        milliseconds out{};
        if (auto d = std::get_if<double>(&v); d && duration_from_seconds(*d, out)) return out;
        if (auto t = std::get_if<std::string>(&v); t && try_parse_duration(*t, out)) return out;
        throw error(error_kind::usage, what + " must return a duration (seconds from 0 to a year, or a string such as "
                                              "\"30s\"), not " + trigger::to_string(v));
      };
      lua_pop(L, 1);
      continue;
    }
    lua_pop(L, 1);
    if (auto v = r.duration(key)) fixed = *v;
  }

  int t = r.get("metrics");
  if (t == LUA_TTABLE) {
    int metrics = absolute(L, -1);
    lua_pushnil(L);
    while (lua_next(L, metrics) != 0) {
      if (lua_type(L, -2) != LUA_TSTRING) fail(p.where, owner + ": metrics must be a table of name = [[select ...]]");
      trigger::metric_def m;
      m.name = lua_tostring(L, -2);
      if (!identifier(m.name))
        fail(p.where, owner + ": metric name '" + m.name + "' must be a plain name (letters, digits, _) to be usable in conditions");
      if (lua_type(L, -1) == LUA_TSTRING) {
        m.sql = lua_tostring(L, -1);
        if (trim(m.sql).empty()) fail(p.where, owner + ": metric '" + m.name + "' has empty SQL");
      } else if (lua_type(L, -1) == LUA_TFUNCTION) {
        int ref = scope->keep(L, -1);
        m.function = function_text(L, -1);
        std::string what = owner + " metric '" + m.name + "'";
        m.fn = [scope, ref, what] { return scope->call(ref, nullptr, false, what); };
      } else {
        fail(p.where, owner + ": metric '" + m.name + "' must be SQL text or a function(ctx), not a " + luaL_typename(L, -1));
      }
      def->metrics.push_back(std::move(m));
      lua_pop(L, 1);
    }
    std::sort(def->metrics.begin(), def->metrics.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  } else if (t != LUA_TNIL) {
    r.type_error("metrics", "a table of name = [[select ...]]");
  }
  lua_pop(L, 1);

  for (std::size_t i = 1; i <= r.items(); ++i) {
    lua_rawgeti(L, r.index(), static_cast<int>(i));
    declaration td;
    if (!read_declaration(L, -1, td) || td.kind != "trigger")
      fail(p.where, owner + ": item " + std::to_string(i) + " is not a trigger \"name\" { ... }");
    for (const auto& earlier : def->triggers)
      if (earlier.name == td.name)
        fail({td.source, td.line}, owner + ": trigger '" + td.name + "': another trigger of the watch has that name (line " +
                                       std::to_string(earlier.line) + ")");
    def->triggers.push_back(w.trigger(td));
    lua_pop(L, 2);
  }
  std::vector<std::string> problems = trigger::validate(*def);
  if (!problems.empty()) {
    // Name the trigger's own line when a problem is about one.
    source_loc at = p.where;
    for (const auto& tr : def->triggers)
      if (problems.front().find("trigger '" + tr.name + "'") != std::string::npos) at.line = tr.line;
    fail(at, join(problems, "; "));
  }
  p.watch = std::move(def);
  p.scope = std::move(scope);
  return p;
}

}  // namespace rb::lua
