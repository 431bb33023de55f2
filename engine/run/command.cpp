// A program started for a run: bounded by its deadline, stopped by a cancel, audited as `shell`.
#include "engine/run/command.hpp"

#include "engine/shell/progress.hpp"
#include "engine/util/duration.hpp"
#include "engine/util/secrets.hpp"

namespace rb::run {
namespace {

constexpr std::size_t k_audit_tail = 2048;  ///< bytes of each stream kept in the audit record

/// "pg_dump (3.2s, 14.2 MB written)", "pg_restore (1.1s, 37% of 14.2 MB read)", "sleep (2.0s)".
std::string progress_text(const std::string& argv0, int pid, std::chrono::milliseconds elapsed) {
  std::string name = argv0.substr(argv0.find_last_of('/') + 1);
  std::string what = format_duration(std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::duration_cast<std::chrono::duration<long long, std::deci>>(elapsed)));
  if (auto file = shell::busiest_file(pid)) what += ", " + shell::describe(*file);
  return name + " (" + what + ")";
}

}  // namespace

shell::process_result run_shown(reporter& out, shell::process_options& o) {
  out.command_started(o.argv);
  bool ticking = out.shows_progress() && !o.on_tick && !o.argv.empty();
  if (ticking)
    o.on_tick = [&out, argv0 = o.argv[0]](int pid, std::chrono::milliseconds elapsed) {
      out.progress(progress_text(argv0, pid, elapsed));
    };
  shell::process_result r;
  try {
    r = shell::run(o);
  } catch (const std::exception&) {
    if (ticking) o.on_tick = nullptr;
    out.command_finished();
    throw;
  }
  if (ticking) o.on_tick = nullptr;
  out.command_finished();
  return r;
}

shell::process_result run_command(run_context& ctx, shell::process_options& o, bool via_shell, json extra) {
  // The deadline of the code running now bounds the command too (time left on the run's clock).
  if (auto deadline = ctx.deadline()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - ctx.clock().now());
    if (left.count() < 1) left = std::chrono::milliseconds(1);
    if (o.timeout.count() == 0 || left < o.timeout) o.timeout = left;
  }
  // The run's stop token kills it; its descriptor wakes the wait at once. Once the executor
  // has taken a stop up (the rollback path runs), nothing is killed any more.
  if (!o.cancelled) {
    const stop_source& stop = ctx.stop();
    o.cancelled = [&stop] { return stop.requested(); };
    if (!stop.ever_requested() || stop.requested()) o.cancel_fd = stop.wake_fd();
  }
  shell::process_result r = run_shown(ctx.out(), o);  // on a terminal: its progress
  json argv = json::array();
  for (const auto& a : o.argv) argv.push_back(secrets::redact(a));
  json env = json::object();
  for (const auto& [k, v] : o.env) env[k] = k == "PGPASSWORD" ? "***" : secrets::redact(v);
  json f = {{"argv", argv},
            {"shell", via_shell},
            {"exit_code", r.exit_code},
            {"duration_ms", r.duration.count()},
            {"stdout_tail", secrets::redact_tail(r.out, k_audit_tail, r.out_total > r.out.size())},
            {"stderr_tail", secrets::redact_tail(r.err, k_audit_tail, r.err_total > r.err.size())},
            {"stdout_bytes", r.out_total},
            {"stderr_bytes", r.err_total}};
  if (!env.empty()) f["env"] = env;
  if (r.term_signal) f["signal"] = r.term_signal;
  if (r.timed_out) f["timed_out"] = true;
  if (r.cancelled) f["cancelled"] = true;
  if (o.cwd) f["cwd"] = o.cwd->string();
  if (ctx.phase()) f["phase"] = ctx.phase()->name;
  if (ctx.step()) f["step"] = ctx.step()->name;
  for (auto& [k, v] : extra.items()) f[k] = std::move(v);
  ctx.audit("shell", std::move(f));
  return r;
}

}  // namespace rb::run
