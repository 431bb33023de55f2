// The report's drawings as inline SVG (a run's timeline, a watch metric's sparkline) and the
// text helpers the HTML and Markdown renderings share.
#pragma once

#include <string>
#include <string_view>

#include "engine/report/run_report.hpp"

namespace rb::report {

/// `text` with secrets redacted, then escaped for HTML text and attribute values.
std::string html_text(std::string_view text);
/// A number as people read it: 2, 0.25, 1.5e+09.
std::string number(double v);
/// Milliseconds as "850ms", "2.4s", "3m10s".
std::string duration_text(long long ms);

/// Phases and steps as bars on a time axis (class "phase", "step", "retry", "rollback",
/// "failed"), decisions of watches marked on their phase's bar (class "decision").
std::string timeline_svg(const run_report& r);

/// One metric of a watch over the watch's time: a polyline (class "metric") through the
/// samples, the quiet samples' min-max bands (class "band"), a line per trigger threshold
/// (class "threshold") and the decisions (class "decision").
std::string sparkline_svg(const watch_report& w, const metric_series& m);

}  // namespace rb::report
