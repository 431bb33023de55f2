// A watch phase: the watch runner's host over the run (connection, journal, incidents, alerts).
#include "engine/run/watch_phase.hpp"

#include <algorithm>

#include "engine/run/notify.hpp"
#include "engine/trigger/metrics.hpp"
#include "engine/util/clock.hpp"
#include "engine/util/duration.hpp"

namespace rb::run {
namespace {

class run_host final : public trigger::watch_host {
 public:
  run_host(run_context& ctx, const phase_def& phase) : m_ctx(ctx), m_phase(phase) {}

  trigger::sample read(const trigger::watch_def& w, json& errors) override {
    trigger::sample s;
    bool has_sql = false;
    for (const auto& m : w.metrics) has_sql = has_sql || !m.fn;
    if (has_sql) {
      try {
        if (!m_conn) {
          if (!m_ctx.target() || !m_ctx.target()->configured())
            throw error(error_kind::usage, "this run has no database target for the watch's SQL metrics");
          m_conn = m_ctx.target()->open_another("watch '" + w.name + "'");
          // Its statements are not `sql` records: each sample (or summary) holds the values, and
          // watch.start the metrics; a 24-hour watch would otherwise write four records a sample.
          m_conn->on_statement(nullptr);
        }
        // A metric query never runs past the next sample's time.
        s = trigger::read_sql_metrics(*m_conn, w.metrics, std::min(w.sample_timeout, w.every), errors);
      } catch (const std::exception& e) {
        // No session at all (the server is down): every SQL metric is unread this time.
        for (const auto& m : w.metrics)
          if (!m.fn) errors[m.name] = e.what();
      }
    }
    for (const auto& m : w.metrics) {
      if (!m.fn) continue;
      try {
        s[m.name] = m.fn();
      } catch (const std::exception& e) {
        errors[m.name] = e.what();
      }
    }
    return s;
  }

  void record(std::string_view event, json fields, bool sync) override {
    fields["phase"] = m_phase.name;
    m_ctx.audit(event, std::move(fields), sync);
  }

  void escalate(const json& args, const std::string& reason) override {
    json spec = args;
    if (!spec.contains("summary")) spec["summary"] = reason;
    if (!spec.contains("cause")) spec["cause"] = "watch '" + m_phase.name + "'";
    try {
      run::escalate(m_ctx, spec);
    } catch (const std::exception& e) {
      failed("escalate", e.what());
    }
  }

  void alert(const json& args, const std::string& reason) override {
    json spec = args;
    if (!spec.contains("details") || !spec["details"].is_object()) spec["details"] = json::object();
    spec["details"]["watch"] = m_phase.name;
    spec["details"]["reason"] = reason;
    try {
      send_alert(m_ctx, spec, "alert");
    } catch (const std::exception& e) {
      failed("alert", e.what());
    }
  }

  void call(const trigger::action& a, const trigger::sample& s) override {
    try {
      a.fn(s);
    } catch (const std::exception&) {
      // audited and shown by the function's own call (watch.error); the watch goes on
    }
  }

  bool stopping() override { return m_ctx.stop().requested(); }
  std::chrono::steady_clock::time_point now() override { return m_ctx.clock().now(); }
  void wait_until(std::chrono::steady_clock::time_point t) override {
    // Rounded up, and again until it is time: a wait that wakes a hair early would take the
    // same sample slot twice.
    for (;;) {
      auto left = std::chrono::ceil<milliseconds>(t - m_ctx.clock().now());
      if (left <= milliseconds(0) || !m_ctx.clock().sleep_for(left, m_ctx.stop())) return;
    }
  }
  void show(const trigger::watch_def& w, const trigger::sample& s, milliseconds elapsed, const json& state) override {
    m_ctx.out().watch_sample(w, s, elapsed, state);
  }

 private:
  void failed(const char* what, const std::string& message) {
    m_ctx.audit("watch.error", {{"watch", m_phase.name}, {"phase", m_phase.name}, {"action", what}, {"error", message}}, false);
    m_ctx.out().message("watch '" + m_phase.name + "': " + what + " failed: " + message);
  }

  run_context& m_ctx;
  const phase_def& m_phase;
  std::unique_ptr<db::connection> m_conn;
};

/// Leaves the run when the watch ends, however it ends.
struct scope_guard {
  code_scope* scope;
  ~scope_guard() {
    if (scope) scope->enter(nullptr);
  }
};

}  // namespace

trigger::watch_result run_watch(run_context& ctx, const phase_def& phase, const run_state* resumed) {
  if (phase.scope) phase.scope->enter(&ctx);
  scope_guard leave{phase.scope.get()};
  // every / lasting given as functions of the run (a param) are read now, on a copy.
  trigger::watch_def w = *phase.watch;
  try {
    if (w.every_fn) w.every = w.every_fn();
    if (w.lasting_fn) w.lasting = w.lasting_fn();
    if (w.every <= milliseconds(0)) throw error(error_kind::usage, "every must be more than 0");
    if (w.lasting < w.every)
      throw error(error_kind::usage, "lasting (" + format_duration(w.lasting) + ") must be at least every (" +
                                         format_duration(w.every) + ")");
  } catch (const std::exception& e) {
    // Nothing was sampled: the run ends failed, and nothing is rolled back for it.
    std::string reason = std::string("cannot start: ") + e.what();
    ctx.audit("watch.error", {{"watch", w.name}, {"phase", phase.name}, {"error", reason}}, true);
    ctx.out().message("watch '" + w.name + "' " + reason);
    trigger::watch_result r;
    r.end = trigger::watch_end::abort;
    r.reason = reason;
    return r;
  }
  if (w.every_fn || w.lasting_fn)
    ctx.out().message("watch '" + w.name + "': every " + format_duration(w.every) + " for " + format_duration(w.lasting));
  std::optional<trigger::watch_checkpoint> from;
  if (resumed) from = trigger::checkpoint_from(resumed->records, w.name, rfc3339(ctx.clock().wall_now()));
  run_host host(ctx, phase);
  trigger::watch_runner runner(w, host);
  trigger::watch_result r = runner.run(from);
  ctx.out().watch_finished(w, r);
  return r;
}

}  // namespace rb::run
