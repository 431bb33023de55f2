// `runbook show --format dot|mermaid`: the runbook as a graph, built once and written in either
// syntax.
#include "engine/report/diagram.hpp"

#include <sstream>
#include <vector>

#include "engine/report/outline.hpp"
#include "engine/trigger/watch.hpp"
#include "engine/util/duration.hpp"
#include "engine/util/secrets.hpp"
#include "engine/util/text.hpp"

namespace rb::report {
namespace {

enum class shape { step, undo, watch, trigger, investigate, action, stop };
enum class line { solid, dashed };

struct node {
  std::string id, label;
  shape kind = shape::step;
  std::string beside;  ///< drawn on the same rank as this node (a step's undo beside the step)
};

struct edge {
  std::string from, to, label;
  line style = line::solid;
  bool constraint = true;  ///< false: does not pull the layout (back edges, cross links)
};

struct cluster {
  std::string id, label;
  std::vector<node> nodes;
};

struct graph {
  std::string title;
  std::vector<cluster> clusters;
  std::vector<edge> edges;
};

std::string condition_text(const trigger::condition& c) { return one_line(c.text); }

std::string trigger_label(std::size_t k, const trigger::trigger_def& t) {
  std::string label = std::to_string(k) + ". " + t.name + "\nwhen " + condition_text(t.when);
  std::string when_note = band(t);
  if (t.sustained) when_note += ", sustained " + format_duration(*t.sustained);
  label += "\n[" + when_note + "]";
  if (t.clear_when) label += "\nclear_when " + condition_text(*t.clear_when);
  return label;
}

std::string action_label(const trigger::action& a) {
  switch (a.what) {
    case trigger::action::kind::rollback: return "rollback";
    case trigger::action::kind::abort: return "abort\n(run fails, no rollback)";
    case trigger::action::kind::investigate: return "investigate for " + format_duration(a.window);
    case trigger::action::kind::call: return a.args.value("function", "function");
    default: return a.describe();
  }
}

/// Adds a trigger's action (and an investigate's inner actions) to `c`, with their edges.
void add_action(graph& g, cluster& c, const std::string& from, const std::string& from_label,
                const trigger::action& a, const std::string& trigger_id, int depth, const std::string& rollback_to) {
  std::string id = trigger_id + "_a" + std::to_string(depth);
  bool inv = a.what == trigger::action::kind::investigate;
  bool stop = a.what == trigger::action::kind::rollback || a.what == trigger::action::kind::abort;
  c.nodes.push_back({id, action_label(a), inv ? shape::investigate : stop ? shape::stop : shape::action, ""});
  g.edges.push_back({from, id, from_label, line::solid, true});
  if (a.what == trigger::action::kind::rollback && !rollback_to.empty())
    g.edges.push_back({id, rollback_to, "rollback path", line::dashed, false});
  if (!inv) return;
  std::string label = "not cleared in " + format_duration(a.window);
  if (a.unless) label += "\n(unless " + condition_text(*a.unless) + ")";
  if (a.then) add_action(g, c, id, label, *a.then, trigger_id, depth + 1, rollback_to);
}

graph build(const run::runbook_def& book) {
  graph g;
  g.title = book.name + (book.title.empty() ? "" : " — " + book.title);
  std::string prev_exit, prev_label;  // the node the next phase follows, and that edge's label
  std::string last_undo;              // where the rollback path starts, so far
  for (std::size_t i = 0; i < book.phases.size(); ++i) {
    const run::phase_def& ph = book.phases[i];
    std::string p = "p" + std::to_string(i + 1);
    cluster c;
    c.id = p;
    std::string entry, exit, exit_label;
    if (ph.watch) {
      const trigger::watch_def& w = *ph.watch;
      c.label = "watch " + std::to_string(i + 1) + ": " + ph.name;
      std::vector<std::string> names;
      for (const auto& m : w.metrics) names.push_back(m.name);
      std::string wid = p + "_w";
      c.nodes.push_back({wid,
                         "watch " + ph.name + "\nevery " + trigger::describe_every(w) + " for " +
                             trigger::describe_lasting(w) + "\nmetrics: " + join(names, ", "),
                         shape::watch, ""});
      entry = exit = wid;
      exit_label = w.lasting_fn ? "when its time is up" : "after " + format_duration(w.lasting);
      std::string from = wid, from_label = "sample";
      for (std::size_t k = 0; k < w.triggers.size(); ++k) {
        std::string tid = p + "_t" + std::to_string(k + 1);
        c.nodes.push_back({tid, trigger_label(k + 1, w.triggers[k]), shape::trigger, ""});
        g.edges.push_back({from, tid, from_label, line::solid, true});
        add_action(g, c, tid, "yes", w.triggers[k].act, tid, 0, last_undo);
        from = tid;
        from_label = "no";
      }
      if (!w.triggers.empty()) g.edges.push_back({from, wid, "no: next sample", line::dashed, false});
    } else {
      c.label = "phase " + std::to_string(i + 1) + ": " + ph.name + (ph.transaction ? " (one transaction)" : "");
      for (std::size_t j = 0; j < ph.steps.size(); ++j) {
        const run::step_def& s = ph.steps[j];
        std::string sid = p + "_s" + std::to_string(j + 1);
        c.nodes.push_back({sid, s.name + (s.confirm ? "\n(asks to confirm)" : ""), shape::step, ""});
        if (!exit.empty()) g.edges.push_back({exit, sid, "", line::solid, true});
        if (entry.empty()) entry = sid;
        exit = sid;
        if (s.has_rollback) {
          std::string uid = sid + "_undo";
          c.nodes.push_back({uid, "undo " + s.name, shape::undo, sid});
          g.edges.push_back({sid, uid, "on rollback", line::dashed, false});
          // The rollback path undoes completed steps in reverse: this undo runs first, then the one before.
          if (!last_undo.empty()) g.edges.push_back({uid, last_undo, "then", line::dashed, false});
          last_undo = uid;
        }
      }
    }
    if (!prev_exit.empty() && !entry.empty()) g.edges.push_back({prev_exit, entry, prev_label, line::solid, true});
    if (!exit.empty()) {
      prev_exit = exit;
      prev_label = exit_label;
    }
    g.clusters.push_back(std::move(c));
  }
  return g;
}

// ---- DOT ------------------------------------------------------------------------------

std::string dot_q(std::string_view s) { return "\"" + dot_escape(s) + "\""; }

std::string dot_node_attrs(shape k) {
  switch (k) {
    case shape::step: return "shape=box, style=rounded";
    case shape::undo: return "shape=box, style=\"rounded,dashed\", color=gray40, fontcolor=gray25";
    case shape::watch: return "shape=box3d";
    case shape::trigger: return "shape=diamond";
    case shape::investigate: return "shape=hexagon";
    case shape::action: return "shape=box, style=\"rounded,filled\", fillcolor=lightyellow";
    case shape::stop: return "shape=box, style=\"rounded,filled\", fillcolor=mistyrose";
  }
  return "";
}

// ---- Mermaid --------------------------------------------------------------------------

/// The inside of a YAML double-quoted string (the front matter's title).
std::string yaml_escape(std::string_view text) {
  std::string out;
  for (char c : valid_utf8(text)) {
    if (c == '"' || c == '\\') out += '\\';
    out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? ' ' : c;
  }
  return out;
}

std::string mm_node(const node& n) {
  std::string q = "\"" + mermaid_escape(n.label) + "\"";
  switch (n.kind) {
    case shape::step: return n.id + "(" + q + ")";
    case shape::undo: return n.id + "[" + q + "]:::undo";
    case shape::watch: return n.id + "[[" + q + "]]";
    case shape::trigger: return n.id + "{" + q + "}";
    case shape::investigate: return n.id + "{{" + q + "}}";
    case shape::action: return n.id + "([" + q + "])";
    case shape::stop: return n.id + "([" + q + "]):::stop";
  }
  return n.id;
}

}  // namespace

std::string dot_escape(std::string_view text) {
  std::string out;
  for (char c : valid_utf8(text)) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      if (c != '\r') out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string mermaid_escape(std::string_view text) {
  std::string out;
  for (char c : valid_utf8(text)) {
    switch (c) {
      case '"': out += "#quot;"; break;
      case '<': out += "#lt;"; break;
      case '>': out += "#gt;"; break;
      case '&': out += "#amp;"; break;
      case '#': out += "#35;"; break;
      case '`': out += "#96;"; break;
      case '\n': out += "<br/>"; break;
      case '\r': break;
      default: out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? ' ' : c;
    }
  }
  return out;
}

std::string to_dot(const run::runbook_def& book) {
  graph g = build(book);
  std::ostringstream out;
  out << "digraph " << dot_q(book.name) << " {\n";
  out << "  graph [label=" << dot_q(g.title) << ", labelloc=t, fontname=\"Helvetica\", newrank=true];\n";
  out << "  node [fontname=\"Helvetica\", fontsize=11];\n";
  out << "  edge [fontname=\"Helvetica\", fontsize=10];\n";
  for (const auto& c : g.clusters) {
    out << "  subgraph cluster_" << c.id << " {\n    label=" << dot_q(c.label) << ";\n";
    for (const auto& n : c.nodes) out << "    " << n.id << " [label=" << dot_q(n.label) << ", " << dot_node_attrs(n.kind) << "];\n";
    for (const auto& n : c.nodes)
      if (!n.beside.empty()) out << "    { rank=same; " << n.beside << "; " << n.id << "; }\n";
    out << "  }\n";
  }
  for (const auto& e : g.edges) {
    std::vector<std::string> attrs;
    if (!e.label.empty()) attrs.push_back("label=" + dot_q(e.label));
    if (e.style == line::dashed) attrs.push_back("style=dashed");
    if (!e.constraint) attrs.push_back("constraint=false");
    out << "  " << e.from << " -> " << e.to;
    if (!attrs.empty()) out << " [" << join(attrs, ", ") << "]";
    out << ";\n";
  }
  out << "}\n";
  return secrets::redact(out.str());
}

std::string to_mermaid(const run::runbook_def& book) {
  graph g = build(book);
  std::ostringstream out;
  out << "---\ntitle: \"" << yaml_escape(one_line(g.title)) << "\"\n---\n";
  out << "flowchart TD\n";
  for (const auto& c : g.clusters) {
    out << "  subgraph " << c.id << " [\"" << mermaid_escape(c.label) << "\"]\n";
    for (const auto& n : c.nodes) out << "    " << mm_node(n) << "\n";
    out << "  end\n";
  }
  for (const auto& e : g.edges) {
    out << "  " << e.from << (e.style == line::dashed ? " -.->" : " -->");
    if (!e.label.empty()) out << "|\"" << mermaid_escape(e.label) << "\"|";
    out << " " << e.to << "\n";
  }
  out << "  classDef undo stroke-dasharray:5 5\n";
  out << "  classDef stop fill:#fde2e2\n";
  return secrets::redact(out.str());
}

}  // namespace rb::report
