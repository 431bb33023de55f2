// The audit log read back as a journal.
#include "engine/run/journal.hpp"

#include "engine/audit/log.hpp"
#include "engine/error.hpp"
#include "engine/util/text.hpp"

namespace rb::run {

std::string text_field(const json& record, const char* key) {
  auto it = record.find(key);
  return it != record.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool run_state::step_done(const std::string& phase, const std::string& step) const {
  auto it = step_end.find({phase, step});
  if (it == step_end.end()) return false;
  std::string status = it->second.value("status", "");
  return status == "succeeded" || status == "skipped" ||
         (status == "failed" && it->second.value("on_error", "") == "continue");
}

run_state load_run(const std::filesystem::path& log, const std::string& id) {
  std::set<std::string> matches;
  std::vector<std::string> runs;  // every run id, for "did you mean"
  audit::for_each_record(log, [&](const json& r) {
    if (r.value("event", "") != "run.start") return;
    std::string run = r.value("run", "");
    runs.push_back(run);
    if (run == id || (id.size() >= 4 && run.rfind(id, 0) == 0)) matches.insert(run);
  });
  if (matches.size() > 1 && matches.count(id)) matches = {id};
  if (matches.empty())
    throw error(error_kind::usage, "no run '" + id + "' in the audit log '" + log.string() + "'" +
                                       did_you_mean(id, runs) + "; 'runbook history' lists runs");
  if (matches.size() > 1)
    throw error(error_kind::usage, "run id '" + id + "' is ambiguous: it matches " +
                                       join(std::vector<std::string>(matches.begin(), matches.end()), ", "));
  run_state s;
  s.run_id = *matches.begin();
  audit::for_each_record(log, [&](const json& r) {
    if (r.value("run", "") != s.run_id) return;
    s.records.push_back(r);
    std::string ev = r.value("event", "");
    // run.rollback has "phase": null when it covers every phase.
    step_key key{text_field(r, "phase"), text_field(r, "step")};
    if (ev == "run.start") s.start = r;
    else if (ev == "run.end") s.end = r;
    else if (ev == "run.resume") s.end.reset();  // a resumed run is open again
    else if (ev == "step.start") {
      s.step_started.insert(key);
      s.step_interrupted.insert(key);
    } else if (ev == "step.end") {
      s.step_end[key] = r;
      bool cancelled = r.contains("error") && r["error"].is_object() && r["error"].value("kind", "") == "cancelled";
      if (cancelled) s.step_interrupted.insert(key);
      else s.step_interrupted.erase(key);
    } else if (ev == "phase.start") {
      s.commit_pending.erase(key.first);
    } else if (ev == "phase.commit") {
      s.commit_pending[key.first] = r;
    } else if (ev == "phase.end") {
      s.phase_status[key.first] = r.value("status", "");
      s.commit_pending.erase(key.first);
    } else if (ev == "run.rollback") {
      s.rolling_back = true;
    } else if (ev == "rollback.end" && r.value("status", "") == "succeeded") {
      s.rolled_back.insert(key);
    }
  });
  // In the order they ran; a step that failed and was later run again counts by its last end.
  for (const auto& r : s.records) {
    if (r.value("event", "") != "step.end") continue;
    // run.rollback has "phase": null when it covers every phase.
    step_key key{text_field(r, "phase"), text_field(r, "step")};
    const json& last = s.step_end.at(key);
    if (last.value("seq", 0ULL) == r.value("seq", 0ULL) && r.value("status", "") == "failed" &&
        r.value("on_error", "") == "continue")
      s.continued.push_back(key);
  }
  return s;
}

std::vector<run_summary> history(const std::filesystem::path& log, const std::optional<std::string>& runbook) {
  std::vector<run_summary> out;
  std::map<std::string, std::size_t> index;
  audit::for_each_record(log, [&](const json& r) {
    std::string ev = r.value("event", "");
    std::string run = r.value("run", "");
    if (ev == "run.start") {
      if (runbook && r.value("runbook", "") != *runbook) return;
      run_summary s;
      s.run_id = run;
      s.runbook = r.value("runbook", "");
      s.status = "running";
      s.started = r.value("ts", "");
      s.op = r.value("operator", "");
      s.reason = r.value("reason", "");
      s.host = r.value("host", "");
      s.pid = r.value("pid", 0LL);
      index[run] = out.size();
      out.push_back(std::move(s));
      return;
    }
    auto it = index.find(run);
    if (it == index.end()) return;
    run_summary& s = out[it->second];
    if (ev == "run.end") {
      s.status = r.value("status", "");
      s.ended = r.value("ts", "");
      s.skip_reason = text_field(r, "skip_reason");
      s.continued.clear();
      if (r.contains("continued") && r["continued"].is_array())
        for (const auto& c : r["continued"])
          if (c.is_string()) s.continued.push_back(c.get<std::string>());
    } else if (ev == "run.resume") {
      s.status = "running";
      s.host = r.value("host", s.host);
      s.pid = r.value("pid", s.pid);
      ++s.resumes;
    }
  });
  return out;
}

}  // namespace rb::run
