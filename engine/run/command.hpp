// A program started for a run: bounded by its deadline, stopped by a cancel, audited as `shell`.
#pragma once

#include "engine/run/context.hpp"
#include "engine/shell/process.hpp"

namespace rb::run {

/// Runs `options` for the run `ctx` and appends its `shell` audit record: argv and env with
/// secrets redacted, exit code (signal, timed_out, cancelled when so), duration, output tails
/// and sizes, cwd, the current phase and step; `via_shell` says it went through /bin/sh -c.
/// `options.timeout` is cut to the context's deadline (the caller sees the timeout that
/// applied), and an operator's cancel kills the process group. A non-zero exit is not an
/// exception: check the result. Whoever starts a process on a run's behalf (shell.run, a
/// rehearsal's clone, ctx.db:psql) goes through here, so every one is audited the same way.
/// `extra` fields are added to the record (ctx.db:psql adds psql, file, sha256 ...). A
/// PGPASSWORD in the environment is always written as "***". Throws rb::error (kind shell)
/// when the program cannot be started.
shell::process_result run_command(run_context& ctx, shell::process_options& options,
                                  bool via_shell = false, json extra = json::object());

/// Runs `options` with it shown on `out`: its argv with --verbose, and on a terminal its name,
/// time and file progress ("pg_dump (3.2s, 14.2 MB written)") until it ends. Not audited: for
/// what runs before a run begins (a sandbox's initdb, its fixture); run_command goes through it.
shell::process_result run_shown(reporter& out, shell::process_options& options);

}  // namespace rb::run
