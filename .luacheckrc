-- luacheck configuration for runbooks: the globals the runbook sandbox gives them, read-only.
-- `runbook init` writes this file into a runbook repository; `luacheck runbooks` checks it.

-- The safe standard library the sandbox allows (no io, debug, package, ffi, jit, dofile,
-- loadfile, getfenv/setfenv, os.execute/exit/getenv/remove; string without dump).
stds.runbook_sandbox = {
  read_globals = {
    "assert", "error", "ipairs", "next", "pairs", "pcall", "xpcall", "select", "tonumber",
    "tostring", "type", "unpack", "rawequal", "rawget", "rawset", "setmetatable", "getmetatable",
    "_VERSION", "print", "load", "loadstring", "require",
    "string", "table", "math", "coroutine", "bit",
    os = { fields = { "time", "clock", "date", "difftime" } },
  },
}

-- The runbook API (share/annotations has its LuaLS types).
stds.runbook = {
  read_globals = {
    "runbook", "phase", "step", "checklist", "watch", "trigger", "check",
    "investigate", "escalate", "secret", "alert",
    audit = { fields = { "note" } },
    shell = { fields = { "run", "sh" } },
    db = { fields = { "null", "connect", "array", "sandbox", "pg_bin" } },
  },
}

std = "runbook_sandbox+runbook"
-- Step functions receive ctx (and verify its result) whether they use them or not.
ignore = { "212/ctx", "212/result" }
max_line_length = false
-- Generated and third-party directories a runbook repository may hold.
exclude_files = { "**/.luarocks/**", "build/**" }
