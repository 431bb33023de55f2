// Cancellation by the operator: SIGINT/SIGTERM are forwarded to the stop token of the run(s) running.
#pragma once

#include "engine/run/stop.hpp"

namespace rb::run::cancel {

/// Installs SIGINT and SIGTERM handlers (once per process). The first signal is forwarded, by a
/// thread of its own (a signal handler may do almost nothing), to the stop_source of every run
/// registered with `forward` (its running step is stopped: its SQL cancelled, its shell
/// commands killed, its Lua interrupted) so its executor can record it and roll back; a second
/// signal ends the process at once with exit code 130 (the journal is intact: every record is
/// one write).
void install_handlers();

/// While it lives, the signals install_handlers() catches request `stop` (a signal that came
/// before it was made counts too).
class forward {
 public:
  explicit forward(stop_source& stop);
  ~forward();
  forward(const forward&) = delete;
  forward& operator=(const forward&) = delete;

 private:
  stop_source& m_stop;
};

}  // namespace rb::run::cancel
