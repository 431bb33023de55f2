// The escalator: incident transitions that tell the channels, and the climb through levels.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "engine/alert/notification.hpp"
#include "engine/incident/store.hpp"
#include "engine/util/clock.hpp"

namespace rb::incident {

/// Makes incident state changes and tells the channels: every change written to the journal is
/// followed by exactly one notification per channel it names (never one per retry: retries are
/// the notifier's business). The record comes first: a process that dies between the record
/// and the sends loses those notifications (at most once), and the next change is told as
/// usual. A channel the notifier refuses (not configured) is audited as `alert.failed`.
/// Times come from the clock's wall_now(), so a fake clock runs a 20-minute climb at once.
class escalator {
 public:
  /// `notifier` may be null (no alert dispatcher in this process): changes are still written,
  /// and each change's `undelivered` lists the channels nobody was told.
  escalator(store& incidents, alert::notifier* notifier, const clock& clk)
      : m_store(incidents), m_notifier(notifier), m_clock(clk) {}

  struct result {
    change what;
    std::vector<std::string> delivered;    ///< delivery ids the notifier returned
    std::vector<std::string> undelivered;  ///< "channel: why" for channels not told
  };

  result open_or_join(const open_request& r);
  result ack(const std::string& id, const std::string& by, const std::string& note);
  result resolve(const std::string& id, const std::string& by, const std::string& note,
                 const std::string& reason = "operator");
  /// Every open, unacknowledged incident whose next level is due climbs to it (one
  /// `incident.escalate` and one notification per channel of that level); several levels due
  /// at once are climbed one by one. Returns the changes this process made.
  std::vector<result> advance();
  /// When the next level of any incident falls due, if one will.
  std::optional<wall_time> next_due() const;

  store& incidents() { return m_store; }

 private:
  result tell(change c);

  store& m_store;
  alert::notifier* m_notifier;
  const clock& m_clock;
};

/// One line for the operator: "incident INC-7F3A2C opened at level 1 (error, x on y): told team".
std::string describe(const escalator::result& r);

}  // namespace rb::incident
