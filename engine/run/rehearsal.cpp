// A rehearsal: clone, fingerprint, forward run, rollback, fingerprint, compare, audit.
#include "engine/run/rehearsal.hpp"

#include <climits>
#include <optional>

#include "engine/audit/log.hpp"
#include "engine/db/cluster.hpp"
#include "engine/db/dsn.hpp"
#include "engine/error.hpp"
#include "engine/run/cancel.hpp"
#include "engine/run/command.hpp"
#include "engine/run/state.hpp"
#include "engine/util/secrets.hpp"
#include "engine/util/text.hpp"

namespace rb::run {
namespace {

/// The table a difference line is about when the line is one a log table may show: rows added
/// ("table T: 3 rows more") or the table itself added ("table T added": a history or snapshot
/// table the run created and keeps).
std::optional<std::string> log_table_of(const std::string& line) {
  const std::string head = "table ", added = " added", more = " more";
  if (line.rfind(head, 0) != 0) return std::nullopt;
  std::string rest = line.substr(head.size());
  if (rest.size() > added.size() && rest.compare(rest.size() - added.size(), added.size(), added) == 0 &&
      rest.find(": ") == std::string::npos)
    return rest.substr(0, rest.size() - added.size());
  auto colon = rest.find(": ");
  if (colon != std::string::npos && rest.size() > colon + more.size() &&
      rest.compare(rest.size() - more.size(), more.size(), more) == 0 && rest.find("row", colon) != std::string::npos)
    return rest.substr(0, colon);
  return std::nullopt;
}

/// `log_tables` names a table ("migration_log", "public.migration_log") or, ending in "*", every
/// table whose name starts with the rest ("rollback_backup_*").
bool is_log_table(const std::string& table, const std::vector<std::string>& tables) {
  for (std::string t : tables) {
    if (t.rfind("public.", 0) == 0) t = t.substr(7);  // the diff names public tables unqualified
    if (!t.empty() && t.back() == '*' ? table.rfind(t.substr(0, t.size() - 1), 0) == 0 : table == t) return true;
  }
  return false;
}

/// Moves "table T: N rows more" and "table T added" out of the differences into notes for the
/// runbook's log_tables: a history of what happened (migration_log) or a snapshot kept for
/// analysis is left by the rollback on purpose. Rows fewer, changed content or a changed
/// structure stay differences.
void set_aside_log_tables(rehearsal_result& res, const std::vector<std::string>& tables) {
  if (tables.empty()) return;
  std::vector<std::string> kept, noted;
  for (auto& line : res.diff) {
    auto table = log_table_of(line);
    (table && is_log_table(*table, tables) ? noted : kept).push_back(std::move(line));
  }
  res.diff = std::move(kept);
  for (const auto& n : noted) res.notes.push_back(n + " (a log table of the runbook: its rollback keeps it on purpose)");
}

/// Moves "sequence S: last_value changed from A to B" with B > A out of the differences into
/// notes: sequences never roll back in PostgreSQL, so a rollback that restored every row
/// leaves them ahead, and that is not a failed rollback. A sequence that went back, or changed
/// otherwise (increment, owner), stays a difference.
void set_aside_advanced_sequences(rehearsal_result& res) {
  const std::string marker = ": last_value changed from ";
  std::vector<std::string> kept;
  for (auto& line : res.diff) {
    auto at = line.find(marker);
    bool advanced = false;
    if (line.rfind("sequence ", 0) == 0 && at != std::string::npos) {
      std::string rest = line.substr(at + marker.size());
      auto to = rest.find(" to ");
      if (to != std::string::npos) {
        try {
          std::size_t used_a = 0, used_b = 0;
          std::string a = rest.substr(0, to), b = rest.substr(to + 4);
          long long from = a == "unused" ? LLONG_MIN : std::stoll(a, &used_a);
          long long now = std::stoll(b, &used_b);
          advanced = (a == "unused" || used_a == a.size()) && used_b == b.size() && now > from;
          if (advanced)
            res.sequences_advanced.push_back(line.substr(0, at) + ": " + a + " -> " + b);
        } catch (const std::exception&) {
          advanced = false;
        }
      }
    }
    if (!advanced) kept.push_back(std::move(line));
  }
  res.diff = std::move(kept);
  if (!res.sequences_advanced.empty())
    res.notes.push_back("sequences the run advanced (PostgreSQL never rolls a sequence back, so these are not "
                        "differences; --strict-sequences counts them): " + join(res.sequences_advanced, ", "));
}


namespace fs = std::filesystem;

bool succeeded(const run_outcome& o) {
  return o.status == status::succeeded || o.status == status::succeeded_with_failures;
}

/// Clones `source` into `copy`: its roles (without passwords) when they can be read, then the
/// database through pg_dump / pg_restore. Adds to `notes` what the copy lacks.
void clone(const resolved_target& source, db::cluster& copy, bool schema_only, run_context& ctx,
           std::vector<std::string>& notes, std::ostream* status) {
  auto audited = [&](shell::process_options& o) { return run_command(ctx, o); };
  std::optional<std::string> password = db::dsn_password(source.dsn);
  auto source_tool = [&](std::vector<std::string> argv) {
    shell::process_options o;
    o.argv = std::move(argv);
    if (password) o.env["PGPASSWORD"] = *password;
    return o;
  };
  if (status) *status << "cloning " << source.name << (schema_only ? " (structure only)" : "") << " into it…\n";
  // Roles first (cluster-wide, without passwords), so that owners and privileges come along
  // and a migration's GRANT to a role of the source works on the copy. psql goes on past the
  // roles the sandbox has already (postgres).
  fs::path roles = copy.base_dir() / "roles.sql";
  auto roles_opts = source_tool({db::pg_bin("pg_dumpall").string(), "--roles-only", "--no-role-passwords", "-f",
                                 roles.string(), "-d", db::dsn_without_password(source.dsn)});
  auto rr = audited(roles_opts);
  bool with_roles = rr.ok();
  if (with_roles) {
    shell::process_options load;
    load.argv = {db::pg_bin("psql").string(), "--no-psqlrc", "--quiet", "--dbname=" + copy.dsn("postgres"),
                 "--file=" + roles.string()};
    auto lr = audited(load);
    with_roles = lr.ok();
    if (!with_roles) rr.err = "psql: " + lr.err;
  }
  if (!with_roles)
    notes.push_back("the source's roles could not be copied (" + std::string(trim(secrets::redact(rr.err))) +
                    "), so the copy was restored without owners or privileges");
  // Then the database: pg_dump of the source (custom format) restored into the sandbox.
  std::vector<std::string> keep_access;
  if (!with_roles) keep_access = {"--no-owner", "--no-privileges"};
  fs::path dump = copy.base_dir() / "clone.dump";
  auto dump_opts = source_tool({db::pg_bin("pg_dump").string(), "-Fc"});
  dump_opts.argv.insert(dump_opts.argv.end(), keep_access.begin(), keep_access.end());
  if (schema_only) dump_opts.argv.push_back("--schema-only");
  dump_opts.argv.insert(dump_opts.argv.end(), {"-f", dump.string(), "-d", db::dsn_without_password(source.dsn)});
  auto d = audited(dump_opts);
  if (!d.ok()) throw error(error_kind::shell, "unable to clone " + source.name + ": pg_dump: " + secrets::redact(d.err));
  shell::process_options restore;
  restore.argv = {db::pg_bin("pg_restore").string()};
  restore.argv.insert(restore.argv.end(), keep_access.begin(), keep_access.end());
  restore.argv.insert(restore.argv.end(), {"-d", copy.dsn(), dump.string()});
  auto rs = audited(restore);
  if (!rs.ok()) throw error(error_kind::shell, "unable to restore the clone: pg_restore: " + rs.err);
}

}  // namespace

std::vector<std::string> steps_without_rollback(const runbook_def& book) {
  std::vector<std::string> out;
  for (const auto& ph : book.phases)
    for (const auto& st : ph.steps)
      if (!st.has_rollback) out.push_back(ph.name + "/" + st.name);
  return out;
}

json rehearsal_result::to_json(const rehearsal_options& opts) const {
  json j = {{"run", forward.run_id}, {"rehearsal", rehearsal_id}, {"forward", forward.status},
            {"before", before_digest}, {"after", after_digest}, {"passed", ok}};
  if (!opts.forward_only) {
    j["rollback"] = rollback;
    j["restored"] = diff.empty();
    j["has_rollback"] = has_rollback;
  }
  j["diff"] = diff;
  j["notes"] = notes;
  j["sequences_advanced"] = sequences_advanced;
  j["schema_only"] = opts.schema_only;
  j["schemas"] = opts.fingerprint.schemas.empty() ? json("all") : json(opts.fingerprint.schemas);
  return j;
}

rehearsal_result rehearse(const runbook_def& book, const config& cfg, run_options opts,
                          const rehearsal_options& options, fingerprinter& fp, reporter& out, confirmer& confirm,
                          clock& clk) {
  opts.yes = true;  // a copy: destructive steps are what is being rehearsed
  opts.rehearsal = true;
  opts.reason = "rehearsal";
  std::optional<resolved_target> source;
  if (!options.source.sandbox) {
    source = resolve_target(cfg, options.source.target, options.source.dsn, book.target);
    if (!source)
      throw error(error_kind::usage, "rehearse needs a database to clone (--target, --dsn, RUNBOOK_DSN) or --sandbox");
  } else if (!book.fixture) {
    throw error(error_kind::usage,
                "runbook '" + book.name + "' has no fixture to rehearse on; clone a target with --target or --dsn");
  }
  audit::log log(options.audit_file, audit::key_from_env());
  rehearsal_result res;
  // The rehearsal's own work (the clone, the fingerprints) is audited under an id of its own,
  // outside the rehearsed run: `shell` records for pg_dump / pg_restore / psql, `sql` records.
  res.rehearsal_id = "rehearsal-" + new_run_id();
  run_context probe_ctx(log, out, res.rehearsal_id, book, opts.params);

  db::cluster_options co;
  co.database = "rehearsal";
  co.tools = [&out](shell::process_options& o) { return run_shown(out, o); };  // progress on a terminal
  if (options.status) *options.status << "starting a sandbox PostgreSQL for the rehearsal…\n";
  db::cluster copy(co);
  if (source) {
    clone(*source, copy, options.schema_only, probe_ctx, res.notes, options.status);
  } else {
    copy.run_sql_file(*book.fixture, "rehearsal",
                      [&](shell::process_options& o) { return run_command(probe_ctx, o); });
  }
  resolved_target t;
  t.name = "rehearsal";
  t.dsn = copy.dsn();
  t.lock_timeout = cfg.lock_timeout;
  t.statement_timeout = cfg.statement_timeout;
  target_session session(t);
  executor exec(log, out, clk, confirm);
  exec.use_target(session);
  exec.use_config(cfg);
  // Fingerprints are taken through the rehearsal's context, outside the rehearsed run, and
  // their statements audited under its id (the executor hooks its own runs in between).
  probe_ctx.set_target(&session);
  probe_ctx.use_services(clk, exec.stop());  // Ctrl-C stops a fingerprint too
  auto probe_statements = [&] {
    session.on_statement([&probe_ctx](const db::statement_record& r) { probe_ctx.record_statement(r); });
  };
  probe_statements();
  int before = fp.take(probe_ctx, options.fingerprint);
  cancel::install_handlers();
  cancel::forward signals(exec.stop());
  res.forward = exec.run(book, opts);
  probe_statements();
  res.before_digest = fp.digest(before);
  std::vector<std::string> no_rollback = steps_without_rollback(book);
  res.has_rollback = no_rollback.size() < book.step_count();
  if (options.schema_only)
    res.notes.push_back(
        "--schema-only: the copy has no rows, so row counts, table contents and sequence positions were not compared");
  if (!options.fingerprint.schemas.empty())
    res.notes.push_back("only schemas " + join(options.fingerprint.schemas, ", ") + " were compared (--schemas)");
  if (options.forward_only) {
    int after = fp.take(probe_ctx, options.fingerprint);
    res.diff = fp.diff(probe_ctx, before, after);
    res.ok = succeeded(res.forward);
    res.after_digest = fp.digest(after);
  } else {
    if (res.forward.status == status::skipped) {
      res.rollback = "did not run: a guard skipped the forward run";
    } else if (!res.has_rollback) {
      res.rollback = "none: the runbook has no rollback handlers";
    } else if (succeeded(res.forward)) {
      run_state state = load_run(options.audit_file, res.forward.run_id);
      res.rollback = exec.rollback(book, state, opts, std::nullopt).status;
      probe_statements();
    } else {
      res.rollback = res.forward.rolled_back ? "ran after the failure" : "did not run";
    }
    int after = fp.take(probe_ctx, options.fingerprint);
    res.diff = fp.diff(probe_ctx, before, after);
    if (!options.strict_sequences) set_aside_advanced_sequences(res);
    set_aside_log_tables(res, book.log_tables);
    // A forward run a guard skipped changed nothing, so an empty difference proves nothing about
    // the rollback: the rehearsal did not happen, and must not read as passed.
    bool skipped = res.forward.status == status::skipped;
    res.ok = !skipped && res.diff.empty() && res.forward.status != status::rollback_failed;
    if (skipped)
      res.notes.insert(res.notes.begin(),
                       "a guard skipped the forward run (" + res.forward.skip_reason +
                           "): nothing ran, so the rollback was not rehearsed; rehearse with params under which the "
                           "guard lets the runbook run");
    if (res.has_rollback && !res.diff.empty() && !no_rollback.empty())
      res.notes.insert(res.notes.begin(), "steps with no rollback handler: " + join(no_rollback, ", "));
    res.after_digest = fp.digest(after);
  }
  session.on_statement(nullptr);
  probe_ctx.flush_statements();
  json schemas = options.fingerprint.schemas.empty() ? json("all") : json(options.fingerprint.schemas);
  log.append(res.forward.run_id, "rehearsal",
             {{"runbook", book.name},
              {"rehearsal", res.rehearsal_id},
              {"forward_only", options.forward_only},
              {"diff", res.diff},
              {"notes", res.notes},
              {"sequences_advanced", res.sequences_advanced},
              {"strict_sequences", options.strict_sequences},
              {"has_rollback", res.has_rollback},
              {"schema_only", options.schema_only},
              {"schemas", schemas},
              {"restored", options.forward_only ? json(nullptr) : json(res.diff.empty())},
              {"passed", res.ok}});
  return res;
}

}  // namespace rb::run
