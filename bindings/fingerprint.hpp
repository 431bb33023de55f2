// The rehearsal's fingerprinter (engine/run/rehearsal) over stdlib's fingerprint module.
#pragma once

#include <string>
#include <vector>

#include "bindings/sandbox.hpp"
#include "engine/run/context.hpp"
#include "engine/run/rehearsal.hpp"

namespace rb::lua {

/// The rehearsal's fingerprinter over stdlib's fingerprint module (fingerprint.take,
/// fingerprint.diff). The fingerprints stay in the Lua state; a handle is a registry reference.
class fingerprint_probe final : public run::fingerprinter {
 public:
  explicit fingerprint_probe(sandbox& sb) : m_sb(sb) {}
  ~fingerprint_probe() override;
  fingerprint_probe(const fingerprint_probe&) = delete;
  fingerprint_probe& operator=(const fingerprint_probe&) = delete;

  /// fingerprint.take(ctx.db, opts) of ctx's target. Throws rb::error on failure.
  int take(run::run_context& ctx, const run::fingerprint_options& opts) override;
  /// fingerprint.diff(a, b) in words; empty when the two are the same.
  std::vector<std::string> diff(run::run_context& ctx, int a, int b) override;
  /// The fingerprint's digest.
  std::string digest(int fp) override;

 private:
  void push_module(run::run_context& ctx);
  sandbox& m_sb;
  std::vector<int> m_refs;
};

}  // namespace rb::lua
