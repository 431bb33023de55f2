// `runbook show` of a watch: the outline's text tree and JSON, and the runbook drawn as DOT (fed
// to the real Graphviz `dot`) and as a Mermaid flowchart, labels escaped whatever they hold.
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "bindings/loader.hpp"
#include "bindings/open_all.hpp"
#include "engine/report/diagram.hpp"
#include "engine/report/outline.hpp"
#include "engine/shell/process.hpp"
#include "engine/util/secrets.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Seed 003's tree, with names and expressions holding quotes, angle brackets, backslashes and
// line breaks.
constexpr std::string_view k_tree = R"lua(runbook "ops.tree" {
  title = [[Tree "demo"]],
  phase "migrate" {
    step "add <col>" { run = function() end, rollback = function() end },
    step [[backfill "rows" \ fast]] { run = function() end, rollback = function() end },
    step "report" { run = function() end },
  },
  watch "after deploy" {
    every = "30s", lasting = "24h",
    metrics = {
      success_rate = [[
        select 0.9 -- "quoted" <ok>
        from pg_class limit 1]],
      response_ms = [[select 100]],
      blocked = [[select 0]],
      missing = [[select false]],
      errors = function(ctx) return 0 end,
    },
    trigger "constraint missing" { before = "5m", when = "missing", action = "rollback" },
    trigger "low success" { after = "5m", before = "30m", when = "success_rate < 0.5",
      action = investigate { window = "10m", unless = "success_rate >= 0.5",
        action = investigate { window = "5m", unless = "blocked == 0", action = "rollback" } } },
    trigger "slow" { when = [[response_ms >
                              500]], action = "abort" },
    trigger "degraded" { after = "30m", when = "success_rate < 0.9", sustained = "30m",
      clear_when = "success_rate >= 0.95", action = escalate { level = 2 } },
    trigger "odd" { when = [[errors > 0 and missing == "a<b>"]],
      action = alert { severity = "warning", summary = [[say "hi" <b> & #1]] } },
    trigger "fn" { when = function(m) return false end, action = function(ctx, m) end },
  },
}
)lua";

class Diagram : public ::testing::Test {
 protected:
  rb::testing::temp_dir dir{"rb-diagram"};
  std::unique_ptr<rb::lua::sandbox> sb = rb::lua::make_sandbox({});
  rb::run::runbook_def book;
  std::string file;

  void SetUp() override {
    file = dir.write("runbooks/ops/tree.lua", k_tree).string();
    book = rb::lua::load_runbook(*sb, file, "ops.tree");
  }

  /// Runs the real Graphviz on `dot_text`; returns the SVG, failing the test when dot refuses it.
  static std::string svg_of(const std::string& dot_text) {
    rb::shell::process_options o;
    o.argv = {"dot", "-Tsvg"};
    o.stdin_data = dot_text;
    o.timeout = std::chrono::seconds(60);
    auto r = rb::shell::run(o);
    EXPECT_TRUE(r.ok()) << "dot refused the graph (exit " << r.exit_code << "): " << r.err << "\n" << dot_text;
    EXPECT_EQ(r.err, "") << dot_text;  // no warnings either
    return r.out;
  }

  static std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }
};

// ---- text ------------------------------------------------------------------------------

TEST_F(Diagram, TextShowsTheWatchAsADecisionTree) {
  std::string t = rb::report::book_text(book);
  EXPECT_THAT(t, HasSubstr("  2. watch after deploy\n"
                           "     every 30.0s for 24h, sample timeout 5.0s\n"));
  // metrics: SQL's first line (with a mark that more follows), functions by file and line
  EXPECT_THAT(t, HasSubstr("       success_rate  select 0.9 -- \"quoted\" <ok> …\n"));
  EXPECT_THAT(t, HasSubstr("       blocked       select 0\n"));
  EXPECT_THAT(t, HasSubstr("       errors        function (" + file + ":17)\n"));
  EXPECT_THAT(t, HasSubstr("     ├─ 1. constraint missing  [before 5m]  (" + file + ":19)\n"
                           "     │     when missing\n"
                           "     │     └─ rollback\n"));
  EXPECT_THAT(t, HasSubstr("     ├─ 2. low success  [5m to 30m]  (" + file + ":20)\n"
                           "     │     when success_rate < 0.5\n"
                           "     │     └─ investigate for 10m\n"
                           "     │        ├─ unless success_rate >= 0.5 holds in that time: stand down\n"
                           "     │        └─ then investigate for 5m\n"
                           "     │           ├─ unless blocked == 0 holds in that time: stand down\n"
                           "     │           └─ then rollback\n"));
  EXPECT_THAT(t, HasSubstr("     │     when response_ms > 500\n"  // a condition written over two lines, on one
                           "     │     └─ abort\n"));
  EXPECT_THAT(t, HasSubstr("     ├─ 4. degraded  [after 30m]  (" + file + ":25)\n"
                           "     │     when success_rate < 0.9, sustained 30m\n"
                           "     │     clear_when success_rate >= 0.95 (re-arms only then)\n"
                           "     │     └─ escalate{level=2}\n"));
  EXPECT_THAT(t, HasSubstr("     └─ 6. fn  [any time]  (" + file + ":29)\n"
                           "           when function (" + file + ":29)\n"
                           "           └─ function\n"));
  // the steps of the other phase are listed as before
  EXPECT_THAT(t, HasSubstr("  1. migrate\n     1.  add <col>"));
}

// ---- JSON ------------------------------------------------------------------------------

TEST_F(Diagram, JsonHoldsTheWatchWithStableFieldNames) {
  auto j = rb::report::book_json(book);
  ASSERT_EQ(j["phases"].size(), 2u);
  EXPECT_EQ(j["phases"][0]["kind"], "steps");
  const auto& ph = j["phases"][1];
  EXPECT_EQ(ph["kind"], "watch");
  EXPECT_EQ(ph["name"], "after deploy");
  const auto& w = ph["watch"];
  EXPECT_EQ(w["every"], "30.0s");
  EXPECT_EQ(w["every_ms"], 30000);
  EXPECT_EQ(w["lasting_ms"], 24LL * 3600 * 1000);
  EXPECT_EQ(w["sample_timeout_ms"], 5000);
  ASSERT_EQ(w["metrics"].size(), 5u);
  EXPECT_EQ(w["metrics"][0]["name"], "blocked");
  EXPECT_EQ(w["metrics"][0]["kind"], "sql");
  EXPECT_EQ(w["metrics"][0]["sql"], "select 0");
  EXPECT_EQ(w["metrics"][1]["name"], "errors");
  EXPECT_EQ(w["metrics"][1]["kind"], "function");
  EXPECT_EQ(w["metrics"][1]["function"], "function (" + file + ":17)");
  ASSERT_EQ(w["triggers"].size(), 6u);
  const auto& low = w["triggers"][1];
  EXPECT_EQ(low["name"], "low success");
  EXPECT_EQ(low["order"], 2);
  EXPECT_EQ(low["source"], file + ":20");
  EXPECT_EQ(low["after"], "5m");
  EXPECT_EQ(low["after_ms"], 300000);
  EXPECT_EQ(low["before_ms"], 1800000);
  EXPECT_TRUE(low["sustained"].is_null());
  EXPECT_TRUE(low["clear_when"].is_null());
  EXPECT_EQ(low["when"], (nlohmann::json{{"kind", "expression"}, {"text", "success_rate < 0.5"}, {"metrics", {"success_rate"}}}));
  EXPECT_EQ(low["action"]["kind"], "investigate");
  EXPECT_EQ(low["action"]["window_ms"], 600000);
  EXPECT_EQ(low["action"]["unless"]["text"], "success_rate >= 0.5");
  EXPECT_EQ(low["action"]["then"]["kind"], "investigate");
  EXPECT_EQ(low["action"]["then"]["window"], "5m");
  EXPECT_EQ(low["action"]["then"]["then"]["kind"], "rollback");
  const auto& degraded = w["triggers"][3];
  EXPECT_EQ(degraded["sustained_ms"], 1800000);
  EXPECT_EQ(degraded["clear_when"]["text"], "success_rate >= 0.95");
  EXPECT_EQ(degraded["action"]["kind"], "escalate");
  EXPECT_EQ(degraded["action"]["args"]["level"], 2);
  const auto& fn = w["triggers"][5];
  EXPECT_EQ(fn["when"]["kind"], "function");
  EXPECT_EQ(fn["action"]["kind"], "function");
  EXPECT_EQ(fn["action"]["function"], "function (" + file + ":29)");
}

// ---- DOT -------------------------------------------------------------------------------

TEST_F(Diagram, DotIsValidForGraphvizAndDrawsTriggersActionsAndRollbackPath) {
  std::string d = rb::report::to_dot(book);
  std::string svg = svg_of(d);
  EXPECT_THAT(svg, HasSubstr("<svg"));
  // the triggers and their actions are there, as Graphviz read them
  EXPECT_THAT(svg, HasSubstr("when success_rate &lt; 0.5"));
  EXPECT_THAT(svg, HasSubstr("investigate for 10m"));
  EXPECT_THAT(svg, HasSubstr("escalate{level=2}"));
  EXPECT_THAT(svg, HasSubstr("clear_when success_rate &gt;= 0.95"));
  // the decision tree: yes to the action, no to the next trigger, the last back to sampling
  EXPECT_THAT(d, HasSubstr("  p2_w -> p2_t1 [label=\"sample\"];\n"));
  EXPECT_THAT(d, HasSubstr("  p2_t1 -> p2_t2 [label=\"no\"];\n"));
  EXPECT_THAT(d, HasSubstr("  p2_t2 -> p2_t2_a0 [label=\"yes\"];\n"));
  EXPECT_THAT(d, HasSubstr("  p2_t6 -> p2_w [label=\"no: next sample\", style=dashed, constraint=false];\n"));
  // investigate -> its inner action, labelled with the window and unless
  EXPECT_THAT(d, HasSubstr("  p2_t2_a0 -> p2_t2_a1 [label=\"not cleared in 10m\\n(unless success_rate >= 0.5)\"];\n"));
  EXPECT_THAT(d, HasSubstr("  p2_t2_a1 -> p2_t2_a2 [label=\"not cleared in 5m\\n(unless blocked == 0)\"];\n"));
  // a rollback action leads to the rollback path: the last step's undo first, then the one before
  EXPECT_THAT(d, HasSubstr("  p2_t2_a2 -> p1_s2_undo [label=\"rollback path\", style=dashed, constraint=false];\n"));
  EXPECT_THAT(d, HasSubstr("  p2_t1_a0 -> p1_s2_undo [label=\"rollback path\""));
  EXPECT_THAT(d, HasSubstr("  p1_s2_undo -> p1_s1_undo [label=\"then\""));
  EXPECT_THAT(d, HasSubstr("  p1_s1 -> p1_s1_undo [label=\"on rollback\""));
  EXPECT_THAT(d, Not(HasSubstr("p1_s3_undo")));  // "report" has no rollback handler
  // phases in order: steps chained, the last step to the watch
  EXPECT_THAT(d, HasSubstr("  p1_s1 -> p1_s2;\n"));
  EXPECT_THAT(d, HasSubstr("  p1_s3 -> p2_w;\n"));
  EXPECT_THAT(d, HasSubstr("    p2_t3_a0 [label=\"abort\\n(run fails, no rollback)\""));
}

TEST_F(Diagram, DotEscapesQuotesBackslashesAnglesAndLineBreaks) {
  std::string d = rb::report::to_dot(book);
  EXPECT_THAT(d, HasSubstr("digraph \"ops.tree\" {\n"));
  EXPECT_THAT(d, HasSubstr("label=\"ops.tree — Tree \\\"demo\\\"\""));
  EXPECT_THAT(d, HasSubstr("    p1_s2 [label=\"backfill \\\"rows\\\" \\\\ fast\""));
  EXPECT_THAT(d, HasSubstr("    p1_s1 [label=\"add <col>\""));
  EXPECT_THAT(d, HasSubstr("when errors > 0 and missing == \\\"a<b>\\\""));
  EXPECT_THAT(d, HasSubstr("summary=say \\\"hi\\\" <b> & #1"));
  EXPECT_THAT(d, HasSubstr("when response_ms > 500\\n"));  // written over two lines: one line here
  std::string svg = svg_of(d);
  EXPECT_THAT(svg, HasSubstr("backfill &quot;rows&quot; \\ fast"));
  EXPECT_THAT(svg, HasSubstr("add &lt;col&gt;"));
  EXPECT_THAT(svg, HasSubstr("missing == &quot;a&lt;b&gt;&quot;"));

  EXPECT_EQ(rb::report::dot_escape("a\"b\\c\nd<e>\tf\r"), "a\\\"b\\\\c\\nd<e> f");
  EXPECT_EQ(rb::report::dot_escape("ends with \\"), "ends with \\\\");
  EXPECT_EQ(rb::report::dot_escape("bad \xff byte"), "bad \xEF\xBF\xBD byte");
  // a label that ends in a backslash, or holds Graphviz's own escapes, is still one valid string
  rb::run::runbook_def odd;
  odd.name = "odd\\";
  rb::run::phase_def p;
  p.name = "p \\N \\G \\l";
  rb::run::step_def s;
  s.name = "line\nbreak\\";
  p.steps.push_back(s);
  odd.phases.push_back(p);
  std::string odd_svg = svg_of(rb::report::to_dot(odd));
  EXPECT_THAT(odd_svg, HasSubstr("p \\N \\G \\l"));
}

// ---- Mermaid ---------------------------------------------------------------------------

TEST_F(Diagram, MermaidIsAFlowchartOfSubgraphsNodesAndEdges) {
  std::string m = rb::report::to_mermaid(book);
  auto ls = lines(m);
  ASSERT_GE(ls.size(), 5u);
  EXPECT_EQ(ls[0], "---");
  EXPECT_EQ(ls[1], "title: \"ops.tree — Tree \\\"demo\\\"\"");
  EXPECT_EQ(ls[2], "---");
  EXPECT_EQ(ls[3], "flowchart TD");
  // Every line after the header is one of Mermaid's statements, with a quoted label free of raw
  // quotes and angle brackets (only <br/> line breaks).
  const std::string label = R"("(?:[^"<>]|<br/>)*")";
  std::regex subgraph("  subgraph p[0-9]+ \\[" + label + "\\]");
  std::regex node_re("    p[0-9]+_[a-z0-9_]+(\\(" + label + "\\)|\\[" + label + "\\](:::undo)?|\\[\\[" + label +
                     "\\]\\]|\\{" + label + "\\}|\\{\\{" + label + "\\}\\}|\\(\\[" + label + "\\]\\)(:::stop)?)");
  std::regex edge_re("  p[0-9]+_[a-z0-9_]+ (-->|-\\.->)(\\|" + label + "\\|)? p[0-9]+_[a-z0-9_]+");
  int subgraphs = 0, ends = 0, nodes = 0, edges = 0;
  for (std::size_t i = 4; i < ls.size(); ++i) {
    const std::string& l = ls[i];
    if (std::regex_match(l, subgraph)) ++subgraphs;
    else if (l == "  end") ++ends;
    else if (std::regex_match(l, node_re)) ++nodes;
    else if (std::regex_match(l, edge_re)) ++edges;
    else if (l.rfind("  classDef ", 0) == 0) continue;
    else ADD_FAILURE() << "not a flowchart statement: " << l;
  }
  EXPECT_EQ(subgraphs, 2);
  EXPECT_EQ(ends, 2);
  // 3 steps + 2 undo, the watch, 6 triggers and 8 actions (low success: investigate, investigate, rollback)
  EXPECT_EQ(nodes, 3 + 2 + 1 + 6 + 8);
  EXPECT_GT(edges, 15);
  EXPECT_THAT(m, HasSubstr("  subgraph p2 [\"watch 2: after deploy\"]\n"));
  EXPECT_THAT(m, HasSubstr("    p2_t2{\"2. low success<br/>when success_rate #lt; 0.5<br/>[5m to 30m]\"}\n"));
  EXPECT_THAT(m, HasSubstr("    p2_t2_a0{{\"investigate for 10m\"}}\n"));
  EXPECT_THAT(m, HasSubstr("  p2_t2 -->|\"yes\"| p2_t2_a0\n"));
  EXPECT_THAT(m, HasSubstr("  p2_t2_a0 -->|\"not cleared in 10m<br/>(unless success_rate #gt;= 0.5)\"| p2_t2_a1\n"));
  EXPECT_THAT(m, HasSubstr("  p2_t2_a2 -.->|\"rollback path\"| p1_s2_undo\n"));
  EXPECT_THAT(m, HasSubstr("    p1_s2(\"backfill #quot;rows#quot; \\ fast\")\n"));
  EXPECT_THAT(m, HasSubstr("summary=say #quot;hi#quot; #lt;b#gt; #amp; #35;1"));
  EXPECT_THAT(m, HasSubstr("  p1_s3 --> p2_w\n"));
  EXPECT_EQ(rb::report::mermaid_escape("a\"b<c>&#`\nd"), "a#quot;b#lt;c#gt;#amp;#35;#96;<br/>d");
}

TEST_F(Diagram, SecretValuesNeverReachTheOutput) {
  const std::string secret = "diagram-secret-7f3a2c";
  rb::secrets::add(secret);
  rb::run::runbook_def b;
  b.name = "ops.secret";
  rb::run::phase_def p;
  p.name = "uses " + secret;
  rb::run::step_def s;
  s.name = "token " + secret;
  s.has_rollback = true;
  p.steps.push_back(s);
  b.phases.push_back(p);
  for (const std::string& out : {rb::report::to_dot(b), rb::report::to_mermaid(b), rb::report::book_text(b)}) {
    EXPECT_THAT(out, Not(HasSubstr(secret)));
    EXPECT_THAT(out, HasSubstr("token ***"));
  }
}

}  // namespace
