// `runbook show --format dot|mermaid`: a runbook drawn as a graph. Phases in order with their
// steps, each step's rollback handler beside it (and the rollback path, which runs them in
// reverse), and each watch's triggers as a decision tree: trigger → action, an investigate →
// its inner action labelled with the window and `unless`. Pure functions over the model.
#pragma once

#include <string>
#include <string_view>

#include "engine/run/model.hpp"

namespace rb::report {

/// Graphviz DOT (`dot -Tsvg`). Every label is a quoted string with quotes and backslashes
/// escaped, line breaks as \n and other control characters as spaces; invalid UTF-8 is replaced.
/// Secret values known to the process are redacted.
std::string to_dot(const run::runbook_def& book);

/// A Mermaid `flowchart TD`. Labels are quoted strings with " < > & # and ` as Mermaid entity
/// codes (#quot; #lt; #gt; #amp; #35; #96;) and line breaks as <br/>. Node ids are generated
/// (p1_s2, p3_t1_a0), never taken from names. Secret values known to the process are redacted.
std::string to_mermaid(const run::runbook_def& book);

/// `text` as the inside of a DOT quoted string (without the quotes).
std::string dot_escape(std::string_view text);
/// `text` as the inside of a Mermaid quoted label (without the quotes).
std::string mermaid_escape(std::string_view text);

}  // namespace rb::report
