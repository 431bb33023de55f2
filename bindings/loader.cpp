// Loading a runbook file into the engine's model.
#include "bindings/loader.hpp"

#include <algorithm>
#include <cstdio>
#include <set>
#include <vector>

#include "bindings/checklist.hpp"
#include "bindings/convert.hpp"
#include "bindings/dsl.hpp"
#include "bindings/loader_schedule.hpp"
#include "bindings/lua_guard.hpp"
#include "bindings/lua_step.hpp"
#include "bindings/spec_reader.hpp"
#include "bindings/watch.hpp"
#include "engine/run/params.hpp"
#include "engine/util/duration.hpp"
#include "engine/util/hash.hpp"
#include "engine/util/secrets.hpp"
#include "engine/util/text.hpp"

namespace rb::lua {
namespace {

using run::source_loc;

run::retry_policy read_retry(lua_State* L, spec_reader& step) {
  run::retry_policy p;
  int t = step.get("retry");
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return p;
  }
  if (t == LUA_TNUMBER) {
    p.attempts = static_cast<int>(lua_tointeger(L, -1));
    lua_pop(L, 1);
    if (p.attempts < 1) fail(step.at(), step.owner() + ": retry must be at least 1 attempt");
    return p;
  }
  if (t != LUA_TTABLE) step.type_error("retry", "a table { attempts = 3, backoff = \"exponential\", ... }");
  spec_reader r(L, -1, step.at(), step.owner() + " retry", {"attempts", "backoff", "initial", "max", "on"});
  if (r.get("attempts") == LUA_TNUMBER) p.attempts = static_cast<int>(lua_tointeger(L, -1));
  else if (!lua_isnil(L, -1)) r.type_error("attempts", "a number");
  lua_pop(L, 1);
  if (p.attempts < 1) fail(step.at(), step.owner() + ": retry.attempts must be at least 1");
  if (auto b = r.string("backoff")) {
    if (*b == "fixed") p.backoff = run::backoff_kind::fixed;
    else if (*b == "exponential") p.backoff = run::backoff_kind::exponential;
    else fail(step.at(), step.owner() + ": retry.backoff = \"" + *b + "\" must be \"fixed\" or \"exponential\"");
  }
  if (auto d = r.duration("initial")) p.initial = *d;
  if (auto d = r.duration("max")) p.max = *d;
  if (p.max < p.initial) p.max = p.initial;
  int on = r.get("on");
  if (on == LUA_TSTRING) {
    p.on.push_back(lua_tostring(L, -1));
  } else if (on == LUA_TTABLE) {
    std::size_t n = lua_objlen(L, -1);
    for (std::size_t i = 1; i <= n; ++i) {
      lua_rawgeti(L, -1, static_cast<int>(i));
      if (lua_type(L, -1) != LUA_TSTRING) fail(step.at(), step.owner() + ": retry.on must list error classes or SQLSTATE patterns as strings");
      p.on.push_back(lua_tostring(L, -1));
      lua_pop(L, 1);
    }
  } else if (on != LUA_TNIL) {
    r.type_error("on", "a list of error classes or SQLSTATE patterns");
  }
  lua_pop(L, 2);  // on, retry table
  return p;
}

/// `guard = function(ctx) ... end` or `guard = { f1, f2 }`: the runbook's or phase's guards, in order.
std::vector<run::guard_def> read_guards(sandbox& sb, spec_reader& r) {
  lua_State* L = sb.state();
  std::vector<run::guard_def> out;
  int t = r.get("guard");
  if (t == LUA_TFUNCTION) {
    out.push_back({r.at(), std::make_shared<lua_guard>(sb, -1)});
  } else if (t == LUA_TTABLE) {
    int list = absolute(L, -1);
    std::size_t n = lua_objlen(L, list);
    lua_pushnil(L);
    while (lua_next(L, list) != 0) {
      bool in_list = lua_type(L, -2) == LUA_TNUMBER && lua_tonumber(L, -2) >= 1 &&
                     lua_tonumber(L, -2) <= static_cast<double>(n);
      lua_pop(L, 1);
      if (!in_list) fail(r.at(), r.owner() + ": guard must be a function or a list of functions, not a table with other keys");
    }
    for (std::size_t i = 1; i <= n; ++i) {
      lua_rawgeti(L, list, static_cast<int>(i));
      if (lua_type(L, -1) != LUA_TFUNCTION)
        fail(r.at(), r.owner() + ": guard " + std::to_string(i) + " is a " + luaL_typename(L, -1) +
                         ", not a function (a guard is function(ctx) return ok, reason end, e.g. "
                         "guards.no_blocking_locks())");
      out.push_back({r.at(), std::make_shared<lua_guard>(sb, -1)});
      lua_pop(L, 1);
    }
  } else if (t != LUA_TNIL) {
    r.type_error("guard", "a function(ctx) returning ok, reason, or a list of them");
  }
  lua_pop(L, 1);
  return out;
}

/// `confirm = "what it destroys"` or `confirm = { "what it destroys", on_decline = "skip" | "fail" }`.
void read_confirm(lua_State* L, spec_reader& step, run::step_def& s) {
  const std::string form = "confirm = \"what the step destroys\" or confirm = { \"what it destroys\", "
                           "on_decline = \"skip\" | \"fail\" }";
  int t = step.get("confirm");
  if (t == LUA_TSTRING) {
    s.confirm = lua_tostring(L, -1);
  } else if (t == LUA_TTABLE) {
    spec_reader c(L, -1, s.where, step.owner() + ": confirm", {"on_decline"});
    if (c.items() != 1) fail(s.where, step.owner() + ": " + form);
    lua_rawgeti(L, c.index(), 1);
    if (lua_type(L, -1) != LUA_TSTRING) fail(s.where, step.owner() + ": " + form);
    s.confirm = lua_tostring(L, -1);
    lua_pop(L, 1);
    std::string decline = c.string("on_decline").value_or("fail");
    if (decline != "skip" && decline != "fail")
      fail(s.where, step.owner() + ": confirm's on_decline = \"" + decline + "\" is not \"skip\" or \"fail\"" +
                        did_you_mean(decline, {"skip", "fail"}));
    s.skip_on_decline = decline == "skip";
  } else if (t != LUA_TNIL) {
    step.type_error("confirm", ("a string or a table: " + form).c_str());
  }
  lua_pop(L, 1);
  if (s.confirm && trim(*s.confirm).empty()) fail(s.where, step.owner() + ": confirm must say what the step destroys");
}

run::step_def read_step(sandbox& sb, const declaration& d) {
  lua_State* L = sb.state();
  run::step_def s;
  s.name = d.name;
  s.where = {d.source, d.line};
  spec_reader r(L, -1, s.where, "step '" + d.name + "'",
                {"run", "verify", "rollback", "when", "retry", "timeout", "confirm", "on_error", "description",
                 "statement_timeout", "lock_timeout", "idempotent"});
  if (r.items() > 0) fail(s.where, r.owner() + ": a step holds fields only, not other steps or phases");
  r.function("run", true);
  s.has_verify = r.function("verify", false);
  s.has_rollback = r.function("rollback", false);
  s.has_when = r.function("when", false);
  s.idempotent = r.boolean("idempotent").value_or(false);
  s.retry = read_retry(L, r);
  s.timeout = r.duration("timeout");
  read_confirm(L, r, s);
  s.on_err = r.on_error("on_error");
  s.description = r.string("description").value_or("");
  s.statement_timeout = r.duration("statement_timeout");
  s.lock_timeout = r.duration("lock_timeout");
  s.body = std::make_shared<lua_step>(sb, r.index());
  return s;
}

run::phase_def read_phase(sandbox& sb, const declaration& d) {
  lua_State* L = sb.state();
  run::phase_def p;
  p.name = d.name;
  p.where = {d.source, d.line};
  spec_reader r(L, -1, p.where, "phase '" + d.name + "'", {"timeout", "on_error", "description", "transaction", "guard"});
  p.transaction = r.boolean("transaction").value_or(false);
  p.guards = read_guards(sb, r);
  p.timeout = r.duration("timeout");
  p.on_err = r.on_error("on_error");
  p.description = r.string("description").value_or("");
  std::set<std::string> names;
  for (std::size_t i = 1; i <= r.items(); ++i) {
    lua_rawgeti(L, r.index(), static_cast<int>(i));
    declaration sd;
    bool declared = read_declaration(L, -1, sd);
    if (!declared || sd.kind != "step")
      fail(declared ? source_loc{sd.source, sd.line} : p.where,  // a watch or phase in it: its own line
           r.owner() + ": item " + std::to_string(i) + " is not a step \"name\" { ... }" +
               (sd.kind == "watch" || sd.kind == "checklist"
                    ? " (a " + sd.kind + " is a phase of its own: put it beside the phases)"
                    : ""));
    if (!names.insert(sd.name).second)
      fail({sd.source, sd.line}, "phase '" + p.name + "' has two steps named '" + sd.name + "'");
    p.steps.push_back(read_step(sb, sd));
    lua_pop(L, 2);
  }
  if (p.steps.empty()) fail(p.where, r.owner() + " has no steps");
  return p;
}

run::param_spec read_param(lua_State* L, const std::string& name, const source_loc& at) {
  run::param_spec p;
  p.name = name;
  p.where = at;
  std::string owner = "param '" + name + "'";
  if (lua_type(L, -1) != LUA_TTABLE) fail(at, owner + " must be a table { type = \"integer\", default = 1000, doc = \"...\" }");
  spec_reader r(L, -1, at, owner, {"type", "default", "doc", "values", "required"});
  std::string type = r.string("type").value_or("string");
  if (type == "string") p.type = run::param_type::string;
  else if (type == "integer") p.type = run::param_type::integer;
  else if (type == "number") p.type = run::param_type::number;
  else if (type == "boolean") p.type = run::param_type::boolean;
  else if (type == "enum") p.type = run::param_type::enumeration;
  else if (type == "duration") p.type = run::param_type::duration;
  else
    fail(at, owner + ": type = \"" + type + "\" is not one of string, integer, number, boolean, enum, duration" +
                 did_you_mean(type, {"string", "integer", "number", "boolean", "enum", "duration"}));
  p.doc = r.string("doc").value_or("");
  if (r.get("values") == LUA_TTABLE) {
    std::size_t n = lua_objlen(L, -1);
    for (std::size_t i = 1; i <= n; ++i) {
      lua_rawgeti(L, -1, static_cast<int>(i));
      if (lua_type(L, -1) != LUA_TSTRING) fail(at, owner + ": values must be strings");
      p.values.push_back(lua_tostring(L, -1));
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    r.type_error("values", "a list of strings");
  }
  lua_pop(L, 1);
  if (p.type == run::param_type::enumeration && p.values.empty()) fail(at, owner + ": an enum needs values = { ... }");
  if (p.type != run::param_type::enumeration && !p.values.empty()) fail(at, owner + ": values only apply to type = \"enum\"");
  int t = r.get("default");
  if (t == LUA_TBOOLEAN) p.default_text = lua_toboolean(L, -1) ? "true" : "false";
  else if (t == LUA_TNUMBER || t == LUA_TSTRING) p.default_text = lua_tostring(L, -1);
  else if (t != LUA_TNIL) r.type_error("default", "a string, number or boolean");
  lua_pop(L, 1);
  p.required = r.boolean("required").value_or(!p.default_text.has_value());
  return p;
}

}  // namespace

run::runbook_def load_runbook(sandbox& sb, const std::filesystem::path& file, const std::string& expected_name) {
  lua_State* L = sb.state();
  int top = lua_gettop(L);
  clear_runbook_declarations(L);
  sb.load_file(file);
  if (auto err = sb.call(0, 0, std::chrono::steady_clock::now() + std::chrono::seconds(10), "loading " + file.string())) {
    std::string where = err->source.empty() ? file.string() : err->source + (err->line ? ":" + std::to_string(err->line) : "");
    // The file's top level may have read a secret and put it in its error.
    throw error(error_kind::bad_runbook, secrets::redact(full_paths(where + ": " + err->message, file.string())));
  }
  push_runbook_declarations(L);
  std::size_t n = lua_objlen(L, -1);
  if (n == 0) fail({file.string(), 0}, "declares no runbook; write runbook \"name\" { ... }");
  if (n > 1) fail({file.string(), 0}, "declares " + std::to_string(n) + " runbooks; one file holds one runbook");
  lua_rawgeti(L, -1, 1);
  declaration d;
  read_declaration(L, -1, d);

  run::runbook_def book;
  book.name = d.name;
  book.file = file;
  book.file_sha256 = sha256_file(file);
  book.where = {d.source, d.line};
  if (!expected_name.empty() && d.name != expected_name)
    fail(book.where, "declares runbook '" + d.name + "' but its path names it '" + expected_name +
                         "'; a runbook's name mirrors its path below runbooks/ (rename the file or the runbook)");
  spec_reader r(L, -1, book.where, "runbook '" + d.name + "'",
                {"title", "description", "tags", "params", "on_error", "timeout", "target", "lock", "fixture",
                 "escalation", "guard", "schedule", "log_tables"});
  book.target = r.string("target");
  book.guards = read_guards(sb, r);
  book.lock = r.boolean("lock").value_or(false);
  book.escalation = r.string("escalation");
  if (auto fixture = r.string("fixture")) {
    std::filesystem::path f = file.parent_path() / *fixture;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(f, ec))
      fail(book.where, "fixture '" + *fixture + "' not found (looked for " + f.string() + ")");
    book.fixture = f;
  }
  book.title = r.string("title").value_or("");
  book.description = r.string("description").value_or("");
  if (auto t = r.duration("timeout")) book.timeout = *t;
  if (auto e = r.on_error("on_error")) book.on_err = *e;
  if (r.get("log_tables") == LUA_TTABLE) {
    std::size_t nt = lua_objlen(L, -1);
    for (std::size_t i = 1; i <= nt; ++i) {
      lua_rawgeti(L, -1, static_cast<int>(i));
      if (lua_type(L, -1) != LUA_TSTRING) fail(book.where, r.owner() + ": log_tables must list table names as strings");
      book.log_tables.push_back(lua_tostring(L, -1));
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    r.type_error("log_tables", "a list of table names");
  }
  lua_pop(L, 1);
  if (r.get("tags") == LUA_TTABLE) {
    std::size_t nt = lua_objlen(L, -1);
    for (std::size_t i = 1; i <= nt; ++i) {
      lua_rawgeti(L, -1, static_cast<int>(i));
      if (lua_type(L, -1) == LUA_TSTRING) book.tags.push_back(lua_tostring(L, -1));
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    r.type_error("tags", "a list of strings");
  }
  lua_pop(L, 1);
  if (r.get("params") == LUA_TTABLE) {
    int params = absolute(L, -1);
    lua_pushnil(L);
    while (lua_next(L, params) != 0) {
      if (lua_type(L, -2) != LUA_TSTRING) fail(book.where, "params must be a table of name = { ... }");
      std::string name = lua_tostring(L, -2);
      book.params.push_back(read_param(L, name, book.where));
      lua_pop(L, 1);
    }
    std::sort(book.params.begin(), book.params.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    for (const auto& p : book.params) {
      if (!p.default_text) continue;
      try {
        run::convert_param(book, p, *p.default_text);
      } catch (const error& e) {
        fail(book.where, std::string("the default of ") + e.what());
      }
    }
  } else if (!lua_isnil(L, -1)) {
    r.type_error("params", "a table of name = { type = ..., default = ..., doc = ... }");
  }
  lua_pop(L, 1);
  if (r.get("schedule") != LUA_TNIL) book.schedule = read_schedule(L, -1, book);
  lua_pop(L, 1);

  // The list part: phases, or (for a short runbook) steps that form one phase "main"; and
  // watches, phases of their own kind, anywhere among them (a watch after the steps of a short
  // runbook ends its phase "main").
  std::set<std::string> phase_names;
  run::phase_def implicit;
  implicit.name = "main";
  implicit.where = book.where;
  bool had_phase = false, had_steps = false;
  auto add_phase = [&](run::phase_def p, const source_loc& at) {
    if (!phase_names.insert(p.name).second)
      fail(at, "runbook '" + book.name + "' has two phases or watches named '" + p.name + "'");
    book.phases.push_back(std::move(p));
  };
  auto end_implicit = [&] {
    if (implicit.steps.empty()) return;
    add_phase(std::move(implicit), book.where);
    implicit = run::phase_def{};
    implicit.name = "main";
    implicit.where = book.where;
  };
  for (std::size_t i = 1; i <= r.items(); ++i) {
    lua_rawgeti(L, r.index(), static_cast<int>(i));
    declaration item;
    if (!read_declaration(L, -1, item))
      fail(book.where, r.owner() + ": item " + std::to_string(i) +
                           " is not a phase \"name\" { ... }, a step \"name\" { ... }, a watch \"name\" { ... } or a "
                           "checklist \"name\" { ... }");
    source_loc at{item.source, item.line};
    if (item.kind == "phase") {
      if (had_steps) fail(at, "a runbook lists either phases or steps, not both");
      had_phase = true;
      add_phase(read_phase(sb, item), at);
    } else if (item.kind == "step") {
      if (had_phase) fail(at, "a runbook lists either phases or steps, not both");
      if (had_steps && implicit.steps.empty()) fail(at, "the steps of a runbook without phases come before its watches");
      had_steps = true;
      for (const auto& s : implicit.steps)
        if (s.name == item.name) fail(at, "runbook '" + book.name + "' has two steps named '" + item.name + "'");
      implicit.steps.push_back(read_step(sb, item));
    } else if (item.kind == "watch") {
      end_implicit();
      add_phase(read_watch(sb, item), at);
    } else if (item.kind == "checklist") {
      end_implicit();
      add_phase(read_checklist(sb, item), at);
    } else if (item.kind == "trigger") {
      fail(at, "trigger '" + item.name + "' belongs inside a watch \"name\" { ... }");
    } else {
      fail(at, "a runbook cannot contain another runbook");
    }
    lua_pop(L, 2);
  }
  end_implicit();
  if (book.phases.empty()) fail(book.where, "runbook '" + book.name + "' has no phases, steps or watches");
  lua_settop(L, top);
  return book;
}

}  // namespace rb::lua
