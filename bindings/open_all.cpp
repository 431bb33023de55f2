// Opens every Lua module of runbook, in order. Start reading the bindings here.
#include "bindings/open_all.hpp"

#include <unistd.h>

#include <cstdlib>

#include "bindings/alert.hpp"
#include "bindings/audit.hpp"
#include "bindings/db.hpp"
#include "bindings/dsl.hpp"
#include "bindings/escalate.hpp"
#include "bindings/secret.hpp"
#include "bindings/shell.hpp"
#include "bindings/watch.hpp"

namespace rb::lua {
namespace fs = std::filesystem;

fs::path stdlib_dir() {
  if (const char* e = std::getenv("RUNBOOK_STDLIB"); e && *e) return e;
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) {
    fs::path installed = fs::path(std::string(buf, static_cast<std::size_t>(n))).parent_path() / ".." / "share" / "runbook" / "stdlib";
    std::error_code ec;
    if (fs::is_directory(installed, ec)) return installed;
  }
  return RUNBOOK_STDLIB_DIR;
}

void open_all(sandbox& sb) {
  open_dsl(sb);     // runbook, phase, step, watch, trigger, check
  open_audit(sb);   // audit.note
  open_secret(sb);  // secret "NAME"
  open_db(sb);      // db.null, db.connect, and the ctx.db methods
  open_shell(sb);   // shell.run, shell.sh
  open_escalate(sb);  // escalate{...}
  open_alert(sb);   // alert.send, alert{...}
  open_watch(sb);   // investigate{...}
}

std::unique_ptr<sandbox> make_sandbox(const std::vector<fs::path>& extra_paths) {
  sandbox_options opts;
  opts.module_path.push_back(stdlib_dir());
  for (const auto& p : extra_paths) opts.module_path.push_back(p);
  if (const char* m = std::getenv("RUNBOOK_MEMORY_LIMIT_MB"); m && std::atoi(m) > 0)
    opts.memory_limit = static_cast<std::size_t>(std::atoi(m)) << 20;
  auto sb = std::make_unique<sandbox>(std::move(opts));
  open_all(*sb);
  return sb;
}

}  // namespace rb::lua
