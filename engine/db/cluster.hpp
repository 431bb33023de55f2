// A throwaway PostgreSQL cluster (--sandbox, rehearse, db.sandbox(), the test suite): initdb, start, stop, remove.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/shell/process.hpp"

namespace rb::db {

/// Point-in-time recovery: a cluster made from a base backup and a WAL archive instead of initdb.
struct recovery_source {
  /// A plain-format base backup (pg_basebackup -Fp -D DIR); copied, never changed.
  std::filesystem::path base_backup;
  /// The directory archive_command copied WAL segments into; restore_command reads it.
  std::filesystem::path wal_archive;
  /// recovery_target_time, e.g. "2026-12-03 10:15:00+00": replay stops before the first commit
  /// after it, and the server is promoted.
  std::string target_time;
};

/// How a cluster runs a client tool (psql): shell::run, or a caller's wrapper that audits it.
using tool_runner = std::function<shell::process_result(shell::process_options&)>;

/// How to create a throwaway cluster. The defaults suit tests.
struct cluster_options {
  /// Where the cluster lives (data/, socket/, server.log inside it). Empty: a fresh
  /// mkdtemp("$TMPDIR/runbook-pg-XXXXXX"), or /tmp when TMPDIR is unset, holding owner.json
  /// (see db/sweeper); stale ones left there by dead processes are swept first.
  std::filesystem::path base_dir{};
  /// Created after the server starts; its DSN is dsn(). "postgres" or empty creates nothing.
  std::string database = "runbook";
  /// Leave the server running and the files on disk at destruction.
  bool keep = false;
  /// How long initdb, and then the server's start-up, may each take.
  std::chrono::seconds start_timeout{60};
  /// Extra postgresql.conf settings (name -> value, quoted as needed), applied last.
  std::map<std::string, std::string> settings{};
  /// Recover a copy of a base backup to a point in time instead of running initdb; `database`
  /// is then only the one dsn() names (it must exist in the backup), and start_timeout also
  /// bounds the replay up to the promotion.
  std::optional<recovery_source> recover{};
  /// Called while a recovery replays, between looks at the server; it may throw (a run's
  /// cancel or deadline) to give up: the half-made cluster is then stopped and removed.
  std::function<void()> check_interrupt{};
  /// Runs initdb and pg_ctl while the cluster is made and started (shell::run when unset): a
  /// caller's wrapper that shows their progress. Not used to stop the cluster.
  tool_runner tools{};
};

/// A private PostgreSQL server: Unix socket only (in its own directory), trust authentication,
/// no durability (fsync, full_page_writes and synchronous_commit off), small memory. When the
/// process runs as root, the server runs as the `postgres` system user and owns the directory;
/// clients (we) still connect as role postgres over the socket.
///
/// Nothing here talks to a mock: this is the database the tests and the sandbox mode use.
class cluster {
 public:
  /// initdb (-A trust, -U postgres, UTF8, --no-sync), configure, pg_ctl start -w, then create
  /// `database`. Throws rb::error naming the step, with the tool's stderr or the server log tail;
  /// whatever was created is removed before it throws.
  explicit cluster(cluster_options options = {});
  /// Unless kept: pg_ctl stop -m immediate, then remove what was created. Never throws; failures
  /// are logged. Does nothing in a forked child of the creating process.
  ~cluster();
  cluster(const cluster&) = delete;
  cluster& operator=(const cluster&) = delete;

  /// A handle on a server that another process created in `base_dir` and still runs (the test
  /// suite's shared cluster, a kept sandbox): its port and socket directory are read from
  /// data/postmaster.pid, `database` is what dsn() names. Destroying the handle stops and
  /// removes nothing. Throws rb::error (kind io) when no server runs there.
  static std::unique_ptr<cluster> attach(const std::filesystem::path& base_dir, std::string database = "runbook");

  /// libpq keyword DSN for the default database:
  /// "host=<socket dir> port=<port> dbname=<database> user=postgres".
  std::string dsn() const;
  /// The same for another database of this cluster.
  std::string dsn(std::string_view dbname) const;

  int port() const noexcept { return m_port; }
  const std::filesystem::path& socket_dir() const noexcept { return m_socket_dir; }
  const std::filesystem::path& data_dir() const noexcept { return m_data_dir; }
  /// The directory holding data/, socket/ and server.log.
  const std::filesystem::path& base_dir() const noexcept { return m_base_dir; }
  /// The server's log file.
  const std::filesystem::path& log_file() const noexcept { return m_log_file; }
  /// The role to connect as: "postgres".
  std::string user() const;
  /// Whether the server was started and not stopped since.
  bool running() const noexcept { return m_running; }

  /// CREATE DATABASE name TEMPLATE template_db. Throws rb::error (kind sql) if it exists.
  void create_database(std::string_view name, std::string_view template_db = "template0");
  /// DROP DATABASE name WITH (FORCE): connected sessions are terminated. Throws rb::error
  /// (kind sql) if it does not exist.
  void drop_database(std::string_view name);

  /// psql -X -v ON_ERROR_STOP=1 -q -f file. Throws rb::error carrying psql's stderr: kind sql
  /// when a statement failed, connection when the server could not be reached, io when the file
  /// cannot be read.
  /// `runner` runs psql (shell::run by default; run::run_command to audit it for a run).
  void run_sql_file(const std::filesystem::path& file, std::string_view dbname, const tool_runner& runner = shell::run);
  /// The same with -c: one or more statements in one string.
  void run_sql(std::string_view sql, std::string_view dbname);

  /// pg_ctl stop -m fast (clients are disconnected, committed data is kept). No-op if stopped.
  void stop();
  /// pg_ctl start -w. No-op if running. Throws rb::error with the server log tail.
  void start();
  /// stop() then start(): existing connections are lost, data stays.
  void restart();
  /// Do not stop or remove anything at destruction (for --keep-sandbox); nor will a later
  /// sweep of stale sandboxes (the owner file says so).
  void keep() noexcept;
  /// A ready-to-paste psql command line for the default database.
  std::string connect_hint() const;

 private:
  struct attach_tag {};
  explicit cluster(attach_tag) {}
  void init(const cluster_options& options);
  void copy_base_backup(const recovery_source& from) const;
  void wait_for_promotion(const std::function<void()>& check_interrupt) const;
  void write_config(const std::map<std::string, std::string>& settings) const;
  /// pg_ctl start; with `wait`, until the server accepts connections (else it only launches it).
  void start_server(bool wait = true);
  void teardown() noexcept;
  shell::process_result pg_tool(std::string_view tool, std::vector<std::string> args,
                                std::chrono::milliseconds timeout) const;
  void psql(std::vector<std::string> args, std::string_view dbname, const std::string& what,
            const tool_runner& runner = shell::run);
  std::string log_tail() const;

  std::filesystem::path m_base_dir, m_data_dir, m_socket_dir, m_log_file;
  std::string m_database;
  std::chrono::seconds m_start_timeout{60};
  tool_runner m_tools;  // cluster_options::tools, until teardown
  int m_port = 0;
  bool m_owns_base = false;  // we created base_dir: remove it whole
  bool m_created = false;    // initdb ran: there is something to remove
  bool m_running = false;
  bool m_keep = false;
  bool m_owner_file = false;  // base_dir/owner.json names this process (see db/sweeper)
  pid_t m_owner_pid = 0;
  std::optional<std::string> m_server_user;  // "postgres" when we are root
};

/// Finds a PostgreSQL program (initdb, pg_ctl, psql, pg_dump, ...): in $RUNBOOK_PG_BIN when set
/// (and only there), else /usr/lib/postgresql/15/bin, else PATH. Throws rb::error (kind shell)
/// when it is not found.
std::filesystem::path pg_bin(std::string_view tool);

}  // namespace rb::db
