// Fingerprints from C++: stdlib's fingerprint module driven for `runbook rehearse`.
#pragma once

#include <string>
#include <vector>

#include "bindings/sandbox.hpp"
#include "engine/run/context.hpp"

namespace rb::lua {

/// What a fingerprint covers: `schemas` (empty: every schema but PostgreSQL's own), and with
/// `data` the row counts, content hashes and sequence positions.
struct fingerprint_options {
  std::vector<std::string> schemas{};
  bool data = true;
};

/// Takes fingerprints of the run's database (stdlib/fingerprint.lua) and compares them. The
/// fingerprints stay in the Lua state; a handle is a registry reference.
class fingerprint_probe {
 public:
  explicit fingerprint_probe(sandbox& sb) : m_sb(sb) {}
  ~fingerprint_probe();
  fingerprint_probe(const fingerprint_probe&) = delete;
  fingerprint_probe& operator=(const fingerprint_probe&) = delete;

  /// fingerprint.take(ctx.db, opts) of ctx's target. Throws rb::error on failure.
  int take(run::run_context& ctx, const fingerprint_options& opts = {});
  /// fingerprint.diff(a, b) in words; empty when the two are the same.
  std::vector<std::string> diff(run::run_context& ctx, int a, int b);
  /// The fingerprint's digest.
  std::string digest(int fp);

 private:
  void push_module(run::run_context& ctx);
  sandbox& m_sb;
  std::vector<int> m_refs;
};

}  // namespace rb::lua
