// Reading a watch's SQL metrics in one snapshot, with a failed metric costing only itself.
#include "engine/trigger/metrics.hpp"

#include <charconv>

namespace rb::trigger {
namespace {

bool numeric_oid(unsigned oid) {
  switch (oid) {
    case 20: case 21: case 23: case 26: case 700: case 701: case 1700:  // int8 int2 int4 oid float4 float8 numeric
      return true;
    default:
      return false;
  }
}

void begin_snapshot(db::connection& c) {
  c.begin();
  c.exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");
}

void end_snapshot(db::connection& c) {
  try {
    if (c.in_transaction()) c.rollback();  // read only: nothing to commit
  } catch (const std::exception&) {
    // the connection is gone; the next sample reconnects
  }
}

}  // namespace

value to_value(const db::column& col, const db::field& f) {
  if (f.null) return {};
  if (col.oid == 16) return f.text == "t";
  if (numeric_oid(col.oid)) {
    double d = 0;
    auto [end, ec] = std::from_chars(f.text.data(), f.text.data() + f.text.size(), d);
    if (ec == std::errc() && end == f.text.data() + f.text.size()) return d;
    if (f.text == "NaN") return {};
  }
  return f.text;
}

sample read_sql_metrics(db::connection& c, const std::vector<metric_def>& metrics, std::chrono::milliseconds timeout,
                        json& errors) {
  sample out;
  bool any = false;
  for (const auto& m : metrics) any = any || !m.sql.empty();
  if (!any) return out;
  try {
    if (!c.is_open()) c.reconnect();
    c.set_statement_timeout(timeout);
    begin_snapshot(c);
  } catch (const std::exception& e) {
    end_snapshot(c);
    for (const auto& m : metrics)
      if (!m.sql.empty()) errors[m.name] = e.what();
    return out;
  }
  for (const auto& m : metrics) {
    if (m.sql.empty()) continue;
    try {
      if (!c.in_transaction()) begin_snapshot(c);
      db::result r = c.exec(m.sql);
      if (r.rows.empty() || r.columns.empty()) {
        errors[m.name] = "the query returned no rows";
        continue;
      }
      out[m.name] = to_value(r.columns[0], r.rows[0][0]);
    } catch (const std::exception& e) {
      errors[m.name] = e.what();
      end_snapshot(c);  // an error aborts the snapshot; the next metric starts a new one
    }
  }
  end_snapshot(c);
  return out;
}

}  // namespace rb::trigger
