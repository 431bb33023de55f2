// Bench driver for bench/watch.sh: a watch of 8 SQL metrics run by the real executor against a
// real PostgreSQL for N samples on a fake clock (every = 1s: the waits between samples take no
// real time), beside the same 8 metrics read N times on their own. Prints the figures as
// "key value" lines: per-sample time of the whole watch and of the SQL alone, peak RSS at
// checkpoints, audit bytes and records.
//
//   rb_bench_watch DSN AUDIT_FILE SAMPLES
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include "engine/audit/log.hpp"
#include "engine/db/connection.hpp"
#include "engine/run/executor.hpp"
#include "engine/trigger/metrics.hpp"
#include "engine/trigger/watch.hpp"
#include "engine/util/clock.hpp"

namespace {

using namespace std::chrono;
using rb::trigger::condition;
using rb::trigger::expression;

/// kB of a "VmHWM:" / "VmRSS:" line of /proc/self/status.
long status_kb(const std::string& key) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(key.size()));
  return -1;
}

/// CPU time (user + system) this process has used, in ms.
double cpu_ms() {
  struct rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto ms = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1000.0 + static_cast<double>(t.tv_usec) / 1000.0; };
  return ms(ru.ru_utime) + ms(ru.ru_stime);
}

/// A fake clock that moves only when slept on, and notes the real time and peak RSS at the
/// sleeps between samples (one per sample).
class bench_clock final : public rb::clock {
 public:
  explicit bench_clock(long samples) : m_samples(samples) {}
  steady_clock::time_point now() const override { return m_start + m_offset; }
  void sleep_for(milliseconds d) override {
    m_offset += d;
    ++m_sleeps;
    if (m_sleeps == 1) {
      m_first = steady_clock::now();
      m_cpu_first = cpu_ms();
    }
    m_last = steady_clock::now();
    m_cpu_last = cpu_ms();
    if (m_sleeps == 1000 || m_sleeps == m_samples - 1 || m_sleeps == 100)
      std::printf("rss_at_%ld_samples_kb %ld\npeak_rss_at_%ld_samples_kb %ld\n", m_sleeps + 1, status_kb("VmRSS:"),
                  m_sleeps + 1, status_kb("VmHWM:"));
  }
  using rb::clock::sleep_for;
  long sleeps() const { return m_sleeps; }
  /// This process's CPU time per sample over the same stretch.
  double cpu_ms_per_sample() const { return m_sleeps < 2 ? 0 : (m_cpu_last - m_cpu_first) / static_cast<double>(m_sleeps - 1); }
  /// Real time per sample between the first and the last sleep.
  double ms_per_sample() const {
    if (m_sleeps < 2) return 0;
    return duration<double, std::milli>(m_last - m_first).count() / static_cast<double>(m_sleeps - 1);
  }

 private:
  long m_samples;
  steady_clock::time_point m_start = steady_clock::now();
  milliseconds m_offset{0};
  long m_sleeps = 0;
  steady_clock::time_point m_first, m_last;
  double m_cpu_first = 0, m_cpu_last = 0;
};

class yes final : public rb::run::confirmer {
 public:
  bool interactive() const override { return false; }
  bool ask(const std::string&) override { return true; }
};

condition expr(const std::string& text) {
  condition c;
  c.text = text;
  c.expr = expression::parse(text);
  return c;
}

rb::trigger::watch_def make_watch(long samples) {
  rb::trigger::watch_def w;
  w.name = "bench";
  w.every = seconds(1);
  w.lasting = seconds(samples);
  w.sample_timeout = milliseconds(500);  // at most `every`, as a runbook must have it
  const std::map<std::string, std::string> sql = {
      {"events", "select count(*) from bench_events"},
      {"success_rate", "select count(*) filter (where ok)::float8 / greatest(count(*), 1) from bench_events"},
      {"response_ms", "select coalesce(avg(ms), 0) from bench_events where at > now() - interval '5 minutes'"},
      {"blocked", "select count(*) from pg_locks where not granted"},
      {"active", "select count(*) from pg_stat_activity where state = 'active' and datname = current_database()"},
      {"constraint_missing", "select not exists (select 1 from pg_indexes where indexname = 'bench_events_pkey')"},
      {"second", "select extract(second from clock_timestamp())::int"},
      {"db_bytes", "select pg_database_size(current_database())"},
  };
  for (const auto& [name, text] : sql) w.metrics.push_back({name, text, {}, {}});
  auto add = [&w](std::string name, std::string when, rb::trigger::action a) {
    rb::trigger::trigger_def t;
    t.name = std::move(name);
    t.when = expr(when);
    t.act = std::move(a);
    w.triggers.push_back(std::move(t));
    return &w.triggers.back();
  };
  rb::trigger::action rollback;
  rb::trigger::action investigate;
  investigate.what = rb::trigger::action::kind::investigate;
  investigate.window = minutes(10);
  investigate.unless = expr("success_rate >= 0.5");
  investigate.then = std::make_shared<const rb::trigger::action>(rollback);
  add("constraint missing", "constraint_missing", rollback)->before = minutes(5);
  auto* low = add("low success", "success_rate < 0.5", investigate);
  low->after = minutes(5);
  low->before = minutes(30);
  add("slow", "response_ms > 500 and blocked > 0", investigate);
  auto* degraded = add("degraded", "success_rate < 0.9", rollback);
  degraded->after = minutes(30);
  degraded->sustained = minutes(30);
  degraded->clear_when = expr("success_rate >= 0.95");
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: rb_bench_watch DSN AUDIT_FILE SAMPLES\n";
    return 2;
  }
  std::string dsn = argv[1];
  std::filesystem::path audit_file = argv[2];
  long samples = std::stol(argv[3]);
  try {
    {
      rb::db::connection c({dsn, "bench", "runbook-bench"});
      c.script(
          "drop table if exists bench_events; "
          "create table bench_events (id serial primary key, ok boolean, ms float8, at timestamptz default now()); "
          "insert into bench_events (ok, ms) select i % 33 <> 0, 20 + i % 50 from generate_series(1, 1000) i; "
          "analyze bench_events");
    }
    auto def = std::make_shared<rb::trigger::watch_def>(make_watch(samples));

    // The SQL's own time: the same metrics, one snapshot per sample, on a connection of their own.
    long sql_samples = std::min(samples, 2000L);
    {
      rb::db::connection c({dsn, "bench", "runbook-bench"});
      nlohmann::json errors;
      for (int i = 0; i < 50; ++i) rb::trigger::read_sql_metrics(c, def->metrics, def->sample_timeout, errors);
      auto t0 = steady_clock::now();
      double cpu0 = cpu_ms();
      for (long i = 0; i < sql_samples; ++i) rb::trigger::read_sql_metrics(c, def->metrics, def->sample_timeout, errors);
      double ms = duration<double, std::milli>(steady_clock::now() - t0).count() / static_cast<double>(sql_samples);
      double cpu = (cpu_ms() - cpu0) / static_cast<double>(sql_samples);
      std::printf("sql_only_samples %ld\nsql_only_ms_per_sample %.4f\nsql_only_cpu_ms_per_sample %.4f\nsql_errors %zu\n",
                  sql_samples, ms, cpu, errors.size());
    }

    // The whole watch through the executor: sampling, the tree, the audit, the journal.
    rb::run::runbook_def book;
    book.name = "bench.watch";
    book.file = "bench.lua";
    rb::run::phase_def phase;
    phase.name = def->name;
    phase.watch = def;
    book.phases.push_back(phase);
    std::filesystem::remove(audit_file);
    rb::audit::log log(audit_file);
    std::ostringstream sink;
    rb::run::reporter out(sink, rb::run::reporter_options{false, false, true});
    bench_clock clk(samples);
    yes confirm;
    rb::run::resolved_target target;
    target.name = "bench";
    target.dsn = dsn;
    rb::run::target_session session(target);
    rb::run::executor exec(log, out, clk, confirm);
    exec.use_target(session);
    rb::run::run_options opts;
    opts.yes = true;
    auto t0 = steady_clock::now();
    auto outcome = exec.run(book, opts);
    double total_s = duration<double>(steady_clock::now() - t0).count();

    std::map<std::string, long> events;
    long records = 0, sample_records = 0;
    rb::audit::for_each_record(audit_file, [&](const nlohmann::json& r) {
      ++records;
      ++events[r.value("event", "?")];
      if (r.value("event", "") == "sample") ++sample_records;
    });
    auto bytes = static_cast<long>(std::filesystem::file_size(audit_file));
    long n = clk.sleeps() + 1;
    std::printf("run_status %s\nwatch_samples %ld\nwatch_ms_per_sample %.4f\nwatch_cpu_ms_per_sample %.4f\nwatch_total_s %.2f\n",
                outcome.status.c_str(), n, clk.ms_per_sample(), clk.cpu_ms_per_sample(), total_s);
    std::printf("audit_bytes %ld\naudit_records %ld\naudit_bytes_per_sample %.1f\n", bytes, records,
                static_cast<double>(bytes) / static_cast<double>(n));
    for (const auto& [e, count] : events) std::printf("audit_event %s %ld\n", e.c_str(), count);
    struct rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    std::printf("peak_rss_end_kb %ld\n", ru.ru_maxrss);
    return outcome.status == "succeeded" ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "rb_bench_watch: " << e.what() << "\n";
    return 1;
  }
}
