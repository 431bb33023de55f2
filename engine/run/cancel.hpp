// Cancellation by the operator: SIGINT/SIGTERM stop the current step; a second one stops at once.
#pragma once

namespace rb::run::cancel {

/// Installs SIGINT and SIGTERM handlers. The first signal requests a cancel (the running step
/// is stopped: its SQL cancelled, its shell commands killed, its Lua interrupted) so the
/// executor can record it and roll back; a second signal ends the process at once with exit
/// code 130 (the journal is intact: every record is one write).
void install_handlers();
/// True when a cancel was requested and not yet taken up by the executor.
bool requested();
/// The executor has taken the cancel up: stop interrupting code (the rollback path must run).
void acknowledge();
/// The signal that asked for it (SIGINT, SIGTERM), or 0.
int signal_number();
/// Requests a cancel as a signal would (tests).
void request(int signo);
/// Forgets any request (tests).
void reset();

}  // namespace rb::run::cancel
