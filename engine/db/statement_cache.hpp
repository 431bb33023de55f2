// Prepared statements of one session: a statement run again and again (a loop of INSERTs)
// becomes a prepared statement after its first successful run, parsed and planned once.
#pragma once

#include <optional>
#include <string>
#include <unordered_map>

namespace rb::db::detail {

/// Which of a session's statements are prepared, and under which names. Prepared statements
/// live and die with their session: clear() when it closes.
class statement_cache {
 public:
  /// Only statements that return no rows are prepared: a prepared SELECT * would fail with
  /// "cached plan must not change result type" after an ALTER TABLE in the same session.
  static bool preparable(const std::string& sql);

  /// The name `sql` is prepared under, or null.
  const std::string* find(const std::string& sql) const;
  /// A new name to prepare `sql` under, when it succeeded once and there is room.
  std::optional<std::string> due(const std::string& sql);
  /// `sql` is prepared under `name` now.
  const std::string& add(const std::string& sql, std::string name);
  /// `sql` ran successfully unprepared: the next run prepares it.
  void succeeded(const std::string& sql);
  void clear();

 private:
  std::unordered_map<std::string, std::string> m_prepared;  // sql -> statement name
  std::unordered_map<std::string, int> m_succeeded_once;
  unsigned long m_seq = 0;
};

}  // namespace rb::db::detail
