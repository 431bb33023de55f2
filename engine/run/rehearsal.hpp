// A rehearsal: prove a runbook's rollback on a copy. Clone the target (or seed the fixture) into
// a throwaway cluster, fingerprint it, run forward, run the rollback path, fingerprint, compare.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "engine/run/config.hpp"
#include "engine/run/confirm.hpp"
#include "engine/run/context.hpp"
#include "engine/run/executor.hpp"
#include "engine/run/model.hpp"
#include "engine/run/reporter.hpp"
#include "engine/run/session.hpp"
#include "engine/util/clock.hpp"

namespace rb::run {

/// What a fingerprint covers: `schemas` (empty: every schema but PostgreSQL's own), and with
/// `data` the row counts, content hashes and sequence positions.
struct fingerprint_options {
  std::vector<std::string> schemas{};
  bool data = true;
};

/// Takes fingerprints of a database and compares them. The engine does not know how: the
/// bindings implement it (stdlib/fingerprint.lua); tests may implement it in C++.
class fingerprinter {
 public:
  virtual ~fingerprinter() = default;
  /// A fingerprint of `ctx`'s target, as a handle for diff() and digest(). Throws rb::error.
  virtual int take(run_context& ctx, const fingerprint_options& opts) = 0;
  /// The differences between two fingerprints in words; empty when they are the same.
  virtual std::vector<std::string> diff(run_context& ctx, int a, int b) = 0;
  /// A fingerprint's digest.
  virtual std::string digest(int fp) = 0;
};

struct rehearsal_options {
  std::filesystem::path audit_file;  ///< the audit log
  /// The database to clone (resolved with resolve_target); with `source.sandbox` the runbook's
  /// fixture is loaded instead.
  database_choice source;
  bool forward_only = false;  ///< only run forward, and report what the runbook changes
  bool schema_only = false;   ///< clone the structure without the data
  /// Count advanced sequences as differences. By default they are notes: PostgreSQL never rolls
  /// a sequence back (nextval is outside transactions), so a correct rollback leaves them ahead.
  bool strict_sequences = false;
  fingerprint_options fingerprint;
  /// Where the rehearsal says what it does (starting the cluster, cloning). Null: nowhere.
  std::ostream* status = nullptr;
};

/// How a rehearsal ended.
struct rehearsal_result {
  std::string rehearsal_id;  ///< "rehearsal-<run id>": the audit id of the clone and fingerprints
  run_outcome forward;       ///< the forward run on the copy
  /// The rollback path: a status, or why it did not run (empty with forward_only).
  std::string rollback;
  bool has_rollback = false;  ///< some step has a rollback handler
  std::vector<std::string> diff;   ///< before vs after, in words
  std::vector<std::string> notes;  ///< what the verdict must say besides the differences
  /// Sequences the run moved forward, "sequence public.x_id_seq: 12 -> 15" (notes, not differences,
  /// unless strict_sequences).
  std::vector<std::string> sequences_advanced;
  std::string before_digest, after_digest;
  /// forward_only: the forward run succeeded; otherwise the copy was restored exactly and the
  /// rollback did not fail.
  bool ok = false;
  json to_json(const rehearsal_options& opts) const;
};

/// The steps of `book` with no rollback handler, as "phase/step".
std::vector<std::string> steps_without_rollback(const runbook_def& book);

/// Rehearses `book` (with `opts`: its params; yes, rehearsal and reason are set here) on a copy
/// and writes the `rehearsal` audit record. Every program it starts (pg_dumpall, psql, pg_dump,
/// pg_restore) is a `shell` record, every fingerprint query a `sql` record, under the
/// rehearsal's id. Throws rb::error(usage) when there is nothing to clone (no target and no
/// --sandbox, or --sandbox and no fixture), rb::error(shell) when the clone fails.
rehearsal_result rehearse(const runbook_def& book, const config& cfg, run_options opts,
                          const rehearsal_options& options, fingerprinter& fp, reporter& out, confirmer& confirm,
                          clock& clk);

}  // namespace rb::run
