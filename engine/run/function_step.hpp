// A step whose code is C++ functions: for steps the engine provides itself, and for testing the
// executor without Lua.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <string>

#include "engine/run/context.hpp"
#include "engine/run/model.hpp"

namespace rb::run {

/// Thrown by a step function to fail with exactly this error (its class decides retries).
struct step_failure : std::exception {
  step_error err;
  explicit step_failure(step_error e) : err(std::move(e)) {}
  const char* what() const noexcept override { return err.message.c_str(); }
};

/// The code of one step. Each function gets the call (attempt, deadline, and ctx: the run's
/// context, its clock, stop token and database) and returns what the audit records (`run`'s
/// value is kept for verify); it fails by throwing: a step_failure as is, any other exception
/// as step_error_from() reads it. `when` returns true to run the step, or false / a reason
/// string to skip it. Long-running code calls ctx->check_interrupt() now and then, as the
/// sandbox's hook does for Lua: the run's stop token and deadline then stop it.
struct step_functions {
  std::function<json(const step_call&)> run{};
  std::function<json(const step_call&)> verify{};
  std::function<json(const step_call&)> rollback{};
  std::function<json(const step_call&)> when{};
};

/// A step_body over step_functions; the functions left empty do nothing.
class function_step final : public step_body {
 public:
  explicit function_step(step_functions fns) : m_fns(std::move(fns)) {}
  call_result run(const step_call& call) override { return invoke(m_fns.run, call, json()); }
  call_result verify(const step_call& call) override { return invoke(m_fns.verify, call, json()); }
  call_result rollback(const step_call& call) override { return invoke(m_fns.rollback, call, json()); }
  call_result when(const step_call& call) override { return invoke(m_fns.when, call, json(true)); }

 private:
  static call_result invoke(const std::function<json(const step_call&)>& fn, const step_call& call, json none) {
    call_result out;
    if (!fn) {
      out.value = std::move(none);
      return out;
    }
    if (call.ctx) call.ctx->set_position(&call.phase, &call.step);
    try {
      out.value = fn(call);
    } catch (const step_failure& f) {
      out.error = f.err;
    } catch (const std::exception& e) {
      out.error = step_error_from(e);
    }
    if (out.error && out.error->source.empty()) {
      out.error->source = call.step.where.file;
      out.error->line = call.step.where.line;
    }
    return out;
  }

  step_functions m_fns;
};

/// A step named `name` whose code is `fns` (has_verify, has_rollback and has_when follow the
/// functions given). Set retry, timeout, on_err ... on the result.
inline step_def function_step_def(std::string name, step_functions fns) {
  step_def s;
  s.name = std::move(name);
  s.has_verify = static_cast<bool>(fns.verify);
  s.has_rollback = static_cast<bool>(fns.rollback);
  s.has_when = static_cast<bool>(fns.when);
  s.body = std::make_shared<function_step>(std::move(fns));
  return s;
}

}  // namespace rb::run
