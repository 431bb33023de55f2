// Checklists: each item checked (its check runs as a step) or asked of a person, each outcome
// audited, the list printed; a failed check fails the phase once every item had its turn.
#include "engine/run/context.hpp"
#include "engine/run/executor.hpp"
#include "engine/run/executor_detail.hpp"
#include "engine/run/state.hpp"

#include <map>

namespace rb::run {

executor::checklist_item executor::check_item(run_context& ctx, const runbook_def& book, const phase_def& phase,
                                              const step_def& item, const run_options& opts, std::size_t index,
                                              std::size_t total) {
  checklist_item out{&item, "", nullptr, std::nullopt};
  json f = detail::step_fields(phase, item);
  if (item.manual) {
    // Only a person can say it: --yes answers for the engine's questions, not for this one.
    m_out.step_started(item, index, total);
    bool yes = m_confirm.interactive() &&
               m_confirm.ask("Checklist '" + phase.name + "': " + item.name + "\n  " + *item.manual);
    out.outcome = yes ? "confirmed" : "unconfirmed";
    out.detail = *item.manual;
    f["kind"] = "manual";
    f["by"] = m_confirm.interactive() ? "terminal" : "none";
    f["operator"] = operator_identity();
    m_out.step_finished(item, out.outcome, milliseconds(0), nullptr,
                        yes ? "" : m_confirm.interactive() ? "not confirmed" : "nobody to ask (not a terminal)");
  } else {
    // Every item is looked at: a failed check does not stop the list (on_error = "continue").
    step_result r = execute_step(ctx, book, phase, item, on_error::cont, opts, index, total);
    f["kind"] = "check";
    if (r.status == step_status::succeeded) {
      out.outcome = "passed";
      out.detail = std::move(r.value);
    } else {
      out.outcome = r.error && r.error->kind == error_kind::cancelled ? "cancelled" : "failed";
      out.error = r.error;
      if (r.error) out.detail = r.error->message;
    }
  }
  f["outcome"] = out.outcome;
  if (!out.detail.is_null()) f["detail"] = out.detail;
  ctx.audit("checklist.item", std::move(f), false);  // durable with the next synced record
  return out;
}

std::optional<step_error> executor::finish_checklist(run_context& ctx, const phase_def& phase,
                                                     const std::vector<checklist_item>& items) {
  std::map<std::string, int> count{{"passed", 0}, {"failed", 0}, {"confirmed", 0}, {"unconfirmed", 0}};
  std::vector<std::string> failed;
  for (const auto& i : items) {
    ++count[i.outcome];
    if (i.outcome == "failed") failed.push_back(i.item->name + (i.detail.is_string() ? ": " + i.detail.get<std::string>() : ""));
  }
  json f = {{"phase", phase.name}};
  for (const auto& [k, n] : count) f[k] = n;
  ctx.audit("checklist.end", std::move(f));
  std::string summary = "checklist '" + phase.name + "': " + std::to_string(count["passed"]) + " passed, " +
                        std::to_string(count["failed"]) + " failed";
  if (count["confirmed"] + count["unconfirmed"] > 0)
    summary += ", " + std::to_string(count["confirmed"]) + " confirmed, " + std::to_string(count["unconfirmed"]) +
               " unconfirmed";
  for (const auto& i : items) {
    const char* mark = i.outcome == "passed" || i.outcome == "confirmed" ? "[x]" : i.outcome == "failed" ? "[!]" : "[ ]";
    summary += std::string("\n") + mark + " " + i.item->name;
    if (i.outcome == "failed" || i.outcome == "unconfirmed") summary += " (" + i.outcome + ")";
    if (i.detail.is_string() && i.outcome != "unconfirmed") summary += " — " + i.detail.get<std::string>();
    else if (!i.detail.is_null() && !i.detail.is_string()) summary += " — " + i.detail.dump();
  }
  m_out.message(summary);
  if (failed.empty()) return std::nullopt;
  step_error err;
  err.kind = error_kind::check_failed;
  err.klass = "checklist";
  err.source = phase.where.file;
  err.line = phase.where.line;
  err.message = "checklist '" + phase.name + "': " + std::to_string(failed.size()) + " of " +
                std::to_string(items.size()) + " items failed: ";
  for (std::size_t i = 0; i < failed.size(); ++i) err.message += (i ? "; " : "") + failed[i];
  return err;
}

}  // namespace rb::run
