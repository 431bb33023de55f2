// A run session: the database (target or sandbox cluster), the audit log, the executor, the end.
#include "engine/run/session.hpp"

#include "engine/db/cluster.hpp"
#include "engine/error.hpp"
#include "engine/incident/run_end.hpp"
#include "engine/report/metrics_file.hpp"
#include "engine/run/cancel.hpp"
#include "engine/run/command.hpp"

namespace rb::run {

database_choice continuation_choice(const run_state& state, database_choice flags, std::string_view what) {
  std::string recorded = state.start.contains("target") && state.start["target"].is_string()
                             ? state.start["target"].get<std::string>()
                             : "";
  if (!flags.target && recorded == "sandbox" && !flags.dsn)
    throw error(error_kind::usage, "run " + state.run_id + " ran in a --sandbox, which is gone; " + std::string(what) +
                                       " it with --dsn or --target");
  if (!flags.target && !recorded.empty() && recorded != "dsn") flags.target = recorded;
  flags.sandbox = flags.keep_sandbox = false;
  return flags;
}

session::session(const runbook_def& book, config cfg, session_options options, reporter& out, confirmer& confirm,
                 clock& clk)
    : m_book(book), m_cfg(std::move(cfg)), m_options(std::move(options)), m_out(out), m_clock(clk) {
  if (book.escalation)
    m_cfg.escalation.require(*book.escalation, "runbook '" + book.name + "' (" + book.where.str() + ")",
                             m_cfg.file.string());
  const database_choice& choice = m_options.database;
  std::optional<resolved_target> target;
  if (choice.sandbox || choice.keep_sandbox) {
    db::cluster_options co;
    co.database = "sandbox";
    co.keep = choice.keep_sandbox;
    auto shown = [&out](shell::process_options& o) { return run_shown(out, o); };  // progress on a terminal
    co.tools = shown;
    if (m_options.status) *m_options.status << "starting a sandbox PostgreSQL…\n";
    m_cluster = std::make_unique<db::cluster>(co);
    if (book.fixture) {
      if (m_options.status) *m_options.status << "loading fixture " << book.fixture->string() << "\n";
      m_cluster->run_sql_file(*book.fixture, "sandbox", shown);
    }
    resolved_target t;
    t.name = "sandbox";
    t.dsn = m_cluster->dsn();
    t.statement_timeout = m_cfg.statement_timeout;
    t.lock_timeout = m_cfg.lock_timeout;
    target = t;
  } else {
    target = resolve_target(m_cfg, choice.target, choice.dsn, book.target);
  }
  m_target = std::make_unique<target_session>(target);
  m_log = std::make_unique<audit::log>(m_options.audit_file, audit::key_from_env());
  m_exec = std::make_unique<executor>(*m_log, out, clk, confirm);
  m_exec->use_target(*m_target);
  m_exec->use_config(m_cfg);
  if (!m_options.notifier && !m_cfg.channels.empty()) {
    m_alert_log = std::make_unique<audit::log>(m_options.audit_file, audit::key_from_env());
    alert::dispatcher_options ao;
    ao.print = [&out](const std::string& line) { out.message(line); };
    m_alerts = std::make_unique<alert::dispatcher>(m_cfg.channels, *m_alert_log, clk, std::move(ao));
    m_options.notifier = m_alerts.get();
  }
  m_exec->use_notifier(m_options.notifier);
  if (!m_options.metrics_dir) m_options.metrics_dir = m_cfg.metrics_dir;
}

session::~session() {
  // The executor and the connection go before the cluster they talk to.
  m_exec.reset();
  m_alerts.reset();
  m_target.reset();
  if (m_cluster && m_cluster->running() && m_options.database.keep_sandbox && m_options.status)
    *m_options.status << "the sandbox is still running: " << m_cluster->connect_hint() << "\n";
}

run_outcome session::run(const run_options& opts) {
  cancel::install_handlers();
  cancel::forward signals(m_exec->stop());
  return finish(m_exec->run(m_book, opts));
}

run_outcome session::resume(const run_state& state, const run_options& opts) {
  cancel::install_handlers();
  cancel::forward signals(m_exec->stop());
  return finish(m_exec->resume(m_book, state, opts));
}

run_outcome session::rollback(const run_state& state, const run_options& opts,
                              const std::optional<std::string>& phase) {
  cancel::install_handlers();
  cancel::forward signals(m_exec->stop());
  // A rollback the operator asked for that did its work is no failure: only rollback_failed
  // opens an incident.
  run_outcome o = m_exec->rollback(m_book, state, opts, phase);
  if (o.status == status::rollback_failed) return finish(std::move(o));
  deliver_pending();
  write_metrics();
  return o;
}

run_outcome session::finish(run_outcome outcome) {
  std::string target = m_target && m_target->configured() ? m_target->target().name : "";
  auto report = incident::on_run_end(*m_log, m_cfg.escalation, m_options.notifier, m_clock, outcome, m_book, target);
  for (const auto& line : report.lines()) m_out.message(line);
  deliver_pending();
  write_metrics();  // after the incident changes, so the file counts them
  return outcome;
}

void session::write_metrics() {
  if (!m_options.metrics_dir) return;
  try {
    report::write_metrics(*m_options.metrics_dir, m_options.audit_file);
  } catch (const std::exception& e) {
    m_out.message(std::string("warning: metrics not written (the run's outcome stands): ") + e.what());
  }
}

void session::deliver_pending() {
  if (!m_alerts) return;
  for (const auto& u : m_alerts->drain(m_cfg.alert_wait))
    m_out.message("alert " + u.delivery + " to channel '" + u.channel + "' was not delivered: " + u.reason);
}

}  // namespace rb::run
