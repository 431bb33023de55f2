// The `runbook` commands, one function each, by the file that implements them. Each takes the
// arguments after its name and returns the exit code; dispatch.cpp's table names them.
#pragma once

#include <string>
#include <vector>

namespace rb::cli {

using command_args = std::vector<std::string>;

// catalog_commands.cpp
int cmd_list(command_args args);
int cmd_show(command_args args);
int cmd_check(command_args args);
// run_commands.cpp
int cmd_run(command_args args);
int cmd_resume(command_args args);
int cmd_rollback(command_args args);
// rehearse_command.cpp
int cmd_rehearse(command_args args);
// journal_commands.cpp
int cmd_history(command_args args);
int cmd_log(command_args args);
// report_command.cpp
int cmd_report(command_args args);
// audit_commands.cpp
int cmd_audit(command_args args);
// sandbox_commands.cpp
int cmd_sandbox(command_args args);
// schedule_command.cpp
int cmd_schedule(command_args args);
// init_commands.cpp
int cmd_init(command_args args);
int cmd_new(command_args args);

}  // namespace rb::cli
