// A throwaway PostgreSQL cluster (--sandbox, rehearse, db.sandbox(), the test suite): initdb, start, stop, remove.
#include "engine/db/cluster.hpp"

#include <pwd.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <random>
#include <system_error>
#include <thread>
#include <utility>

#include "engine/db/sweeper.hpp"
#include "engine/error.hpp"

namespace rb::db {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* k_role = "postgres";         // the superuser initdb creates
constexpr const char* k_server_user = "postgres";  // the system user the server runs as under root
constexpr const char* k_default_bin = "/usr/lib/postgresql/15/bin";
constexpr const char* k_default_path = "/usr/local/bin:/usr/bin:/bin";
constexpr std::size_t k_log_tail_bytes = 4000;
constexpr std::size_t k_output_limit = 64 * 1024;

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

bool is_executable(const fs::path& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

/// A value in a libpq keyword/value connection string.
std::string conninfo_value(std::string_view value) {
  if (!value.empty() && value.find_first_of(" \t\n\r'\\") == std::string_view::npos)
    return std::string(value);
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

/// A word for a POSIX shell, single-quoted unless it is plainly safe.
std::string shell_quote(std::string_view word) {
  if (!word.empty() && word.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                              "0123456789_-+./:=@%,") == std::string_view::npos)
    return std::string(word);
  std::string out = "'";
  for (char c : word) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

/// An SQL identifier, always quoted.
std::string sql_ident(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

/// A postgresql.conf string value: single quotes doubled, backslashes escaped.
std::string conf_value(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') out += '\'';
    if (c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

std::string trim(std::string text) {
  auto end = text.find_last_not_of(" \t\r\n");
  text.erase(end == std::string::npos ? 0 : end + 1);
  auto begin = text.find_first_not_of(" \t\r\n");
  return begin == std::string::npos ? std::string() : text.substr(begin);
}

/// "exited with status 1: <stderr>" for a command that did not succeed.
std::string describe(const shell::process_result& r) {
  std::string how = r.timed_out     ? "timed out"
                    : r.term_signal ? "was killed by signal " + std::to_string(r.term_signal)
                                    : "exited with status " + std::to_string(r.exit_code);
  std::string said = trim(r.err.empty() ? r.out : r.err);
  return said.empty() ? how : how + ": " + said;
}

/// A clean, predictable environment for PostgreSQL's tools: no PG* variables from the caller
/// (PGOPTIONS, PGSERVICE, ... would leak into the sandbox), C messages.
std::map<std::string, std::string> tool_env() {
  std::map<std::string, std::string> env;
  const char* path = std::getenv("PATH");
  env["PATH"] = path != nullptr && *path != '\0' ? path : k_default_path;
  env["LC_ALL"] = "C";
  if (const char* tz = std::getenv("TZ"); tz != nullptr) env["TZ"] = tz;
  return env;
}

int random_port() {
  // The socket lives in a private directory, so the port only names it; any number will do.
  std::random_device seed;
  return std::uniform_int_distribution<int>(20000, 59999)(seed);
}

struct user_ids {
  uid_t uid;
  gid_t gid;
};

user_ids lookup_user(const std::string& name) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  int rc;
  while ((rc = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found)) == ERANGE)
    buf.resize(buf.size() * 2);
  if (found == nullptr)
    throw error(error_kind::io, "unable to create a sandbox PostgreSQL cluster as root: no system user '" +
                                    name + "' to run the server as" +
                                    (rc != 0 ? " (" + errno_text(rc) + ")" : std::string()));
  return {pw.pw_uid, pw.pw_gid};
}

void chown_to(const fs::path& path, user_ids ids) {
  if (::chown(path.c_str(), ids.uid, ids.gid) != 0)
    throw error(error_kind::io, "unable to hand '" + path.string() + "' to the server user: " + errno_text(errno));
}

}  // namespace

fs::path pg_bin(std::string_view tool) {
  std::string name(tool);
  if (const char* dir = std::getenv("RUNBOOK_PG_BIN"); dir != nullptr && *dir != '\0') {
    fs::path candidate = fs::path(dir) / name;
    if (is_executable(candidate)) return candidate;
    throw error(error_kind::shell, "unable to find PostgreSQL program '" + name +
                                       "': not in $RUNBOOK_PG_BIN (" + dir + ")");
  }
  if (fs::path candidate = fs::path(k_default_bin) / name; is_executable(candidate)) return candidate;
  const char* path_env = std::getenv("PATH");
  std::string path = path_env != nullptr ? path_env : k_default_path;
  std::size_t pos = 0;
  for (;;) {
    auto colon = path.find(':', pos);
    std::string dir = path.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos);
    if (!dir.empty() && is_executable(fs::path(dir) / name)) return fs::path(dir) / name;
    if (colon == std::string::npos) break;
    pos = colon + 1;
  }
  throw error(error_kind::shell, "unable to find PostgreSQL program '" + name + "': not in " +
                                     k_default_bin + " nor PATH (set RUNBOOK_PG_BIN)");
}

cluster::cluster(cluster_options options) {
  // The destructor does not run when a constructor throws: undo a half-built cluster here.
  struct undo_on_throw {
    cluster* self;
    bool armed = true;
    ~undo_on_throw() {
      if (armed) self->teardown();
    }
  } undo{this};
  init(options);
  undo.armed = false;
}

std::unique_ptr<cluster> cluster::attach(const fs::path& base_dir, std::string database) {
  std::unique_ptr<cluster> c(new cluster(attach_tag{}));
  c->m_owner_pid = ::getpid();
  c->m_base_dir = fs::absolute(base_dir);
  c->m_data_dir = c->m_base_dir / "data";
  c->m_log_file = c->m_base_dir / "server.log";
  c->m_database = std::move(database);
  if (::geteuid() == 0) c->m_server_user = k_server_user;
  // postmaster.pid: pid, data directory, start time, port, socket directory, ...
  std::ifstream in(c->m_data_dir / "postmaster.pid");
  std::string pid, data, started, port, socket;
  if (!std::getline(in, pid) || !std::getline(in, data) || !std::getline(in, started) || !std::getline(in, port) ||
      !std::getline(in, socket) || port.empty() || socket.empty() || port.find_first_not_of("0123456789") != std::string::npos)
    throw error(error_kind::io, "unable to attach to the PostgreSQL cluster in '" + c->m_base_dir.string() +
                                    "': no running server (data/postmaster.pid is missing or incomplete)");
  c->m_port = std::stoi(port);
  c->m_socket_dir = socket;
  c->m_running = true;  // m_created stays false: teardown() leaves it alone
  return c;
}

void cluster::keep() noexcept {
  m_keep = true;
  if (!m_owner_file) return;
  try {
    write_owner_file(m_base_dir, true);  // a kept cluster is never swept
  } catch (const std::exception& e) {
    spdlog::warn("{}", e.what());
  }
}

cluster::~cluster() {
  if (::getpid() != m_owner_pid) return;  // a forked child (death test, fork without exec)
  if (m_keep) {
    spdlog::info("keeping the sandbox PostgreSQL cluster in '{}'{}; connect with: {}", m_base_dir.string(),
                 m_running ? " running" : "", connect_hint());
    return;
  }
  teardown();
}

void cluster::init(const cluster_options& options) {
  auto began = std::chrono::steady_clock::now();
  m_owner_pid = ::getpid();
  m_database = options.database;
  m_start_timeout = options.start_timeout;
  m_tools = options.tools;
  m_keep = options.keep;
  std::optional<user_ids> server_ids;
  if (::geteuid() == 0) {
    m_server_user = k_server_user;
    server_ids = lookup_user(k_server_user);
  }

  std::error_code ec;
  if (options.base_dir.empty()) {
    // Clusters whose owner died (SIGKILL, a crash) are stopped and removed before we add one.
    fs::path tmp = sandbox_tmp_dir();
    sweep_stale_sandboxes(tmp);
    std::string templ = (tmp / (std::string(k_sandbox_prefix) + "XXXXXX")).string();
    if (::mkdtemp(templ.data()) == nullptr)
      throw error(error_kind::io, "unable to create a directory for the sandbox PostgreSQL cluster from '" +
                                      templ + "': " + errno_text(errno));
    m_base_dir = templ;
    m_owns_base = true;
    m_created = true;  // teardown() removes the directory if the owner file cannot be written
    write_owner_file(m_base_dir, m_keep);
    m_owner_file = true;
  } else {
    m_base_dir = fs::absolute(options.base_dir);
    if (!fs::exists(m_base_dir, ec)) {
      if (!fs::create_directories(m_base_dir, ec) && ec)
        throw error(error_kind::io, "unable to create the sandbox PostgreSQL cluster directory '" +
                                        m_base_dir.string() + "': " + ec.message());
      fs::permissions(m_base_dir, fs::perms::owner_all, ec);
      m_owns_base = true;
    }
  }
  m_data_dir = m_base_dir / "data";
  m_socket_dir = m_base_dir / "socket";
  m_log_file = m_base_dir / "server.log";
  if (!m_owns_base && fs::exists(m_data_dir, ec))
    throw error(error_kind::io, "unable to create a sandbox PostgreSQL cluster in '" + m_base_dir.string() +
                                    "': '" + m_data_dir.string() + "' already exists");
  m_created = true;  // from here on, teardown() has something to remove

  // The server refuses socket paths longer than sockaddr_un can hold.
  if ((m_socket_dir / ".s.PGSQL.65535").string().size() >= sizeof(sockaddr_un{}.sun_path))
    throw error(error_kind::io, "unable to create a sandbox PostgreSQL cluster in '" + m_base_dir.string() +
                                    "': the socket path would be too long (set TMPDIR to a shorter directory)");
  if (!fs::create_directory(m_socket_dir, ec) && ec)
    throw error(error_kind::io, "unable to create '" + m_socket_dir.string() + "': " + ec.message());
  fs::permissions(m_socket_dir, fs::perms::owner_all, ec);
  if (server_ids) {
    if (m_owns_base) chown_to(m_base_dir, *server_ids);
    chown_to(m_socket_dir, *server_ids);
  }
  m_port = random_port();

  if (options.recover) {
    copy_base_backup(*options.recover);
    if (server_ids) {
      chown_to(m_data_dir, *server_ids);
      for (const auto& entry : fs::recursive_directory_iterator(m_data_dir)) chown_to(entry.path(), *server_ids);
    }
    auto settings = options.settings;
    // Replay from the archive up to the target, then promote; never archive into it.
    // (the server runs restore_command in its data directory: the archive's path made absolute)
    settings.emplace("restore_command", "cp '" + fs::absolute(options.recover->wal_archive).string() + "/%f' '%p'");
    settings.emplace("recovery_target_time", options.recover->target_time);
    settings.emplace("recovery_target_action", "promote");
    settings.emplace("archive_mode", "off");
    // No connections until it is promoted: postmaster.pid then says "standby" while it replays
    // (a hot standby would say "ready" as it does after promotion), and the server need not
    // match the settings (max_connections, ...) of the one that wrote the WAL.
    settings.emplace("hot_standby", "off");
    write_config(settings);
    std::ofstream signal(m_data_dir / "recovery.signal");
    signal.close();
    if (!signal)
      throw error(error_kind::io, "unable to start a recovery PostgreSQL cluster: cannot write '" +
                                      (m_data_dir / "recovery.signal").string() + "'");
    if (server_ids) chown_to(m_data_dir / "recovery.signal", *server_ids);
    start_server(false);  // the replay may take long: wait_for_promotion waits, and can be interrupted
    wait_for_promotion(options.check_interrupt);
  } else {
    auto r = pg_tool("initdb",
                     {"--pgdata=" + m_data_dir.string(), "--auth=trust", "--username=" + std::string(k_role),
                      "--encoding=UTF8", "--no-locale", "--no-sync", "--no-instructions"},
                     m_start_timeout);
    if (!r.ok())
      throw error(error_kind::shell, "unable to create a sandbox PostgreSQL cluster in '" + m_base_dir.string() +
                                         "': initdb " + describe(r) +
                                         (m_server_user ? " (the directory must be usable by user '" +
                                                              *m_server_user + "')"
                                                        : std::string()));
    write_config(options.settings);
    start_server();
    if (!m_database.empty() && m_database != "postgres") create_database(m_database);
  }
  spdlog::debug("sandbox PostgreSQL cluster ready in {} ms: {}",
                std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - began)
                    .count(),
                dsn());
}

void cluster::write_config(const std::map<std::string, std::string>& settings) const {
  // Throwaway: no durability, little memory, no TCP.
  std::map<std::string, std::string> conf{
      {"listen_addresses", ""},
      {"port", std::to_string(m_port)},
      {"unix_socket_directories", m_socket_dir.string()},
      {"unix_socket_permissions", "0700"},
      {"fsync", "off"},
      {"full_page_writes", "off"},
      {"synchronous_commit", "off"},
      {"shared_buffers", "32MB"},
      {"max_connections", "50"},
      {"huge_pages", "off"},
      {"logging_collector", "off"},
      {"log_line_prefix", "%m [%p] %q%u@%d "},
  };
  for (const auto& [name, value] : settings) conf[name] = value;

  fs::path file = m_data_dir / "postgresql.conf";
  std::ofstream out(file, std::ios::app);
  out << "\n# Added by runbook for a throwaway sandbox cluster.\n";
  for (const auto& [name, value] : conf) out << name << " = " << conf_value(value) << "\n";
  out.close();
  if (!out)
    throw error(error_kind::io, "unable to configure the sandbox PostgreSQL cluster: cannot write '" +
                                    file.string() + "'");
}

void cluster::start_server(bool wait) {
  std::vector<std::string> args{"start", "--pgdata=" + m_data_dir.string(), "--log=" + m_log_file.string(), "--silent"};
  if (wait) {
    args.push_back("--wait");
    args.push_back("--timeout=" + std::to_string(m_start_timeout.count()));
  } else {
    args.push_back("--no-wait");
  }
  auto r = pg_tool("pg_ctl", std::move(args), m_start_timeout + 15s);
  if (!r.ok())
    throw error(error_kind::shell, "unable to start the sandbox PostgreSQL cluster in '" + m_base_dir.string() +
                                       "': pg_ctl " + describe(r) + "\nserver log (tail):\n" + log_tail());
  m_running = true;  // from here on teardown() stops it, whatever happens
}

void cluster::copy_base_backup(const recovery_source& from) const {
  std::error_code ec;
  if (!fs::exists(from.base_backup / "PG_VERSION", ec))
    throw error(error_kind::usage, "unable to start a recovery PostgreSQL cluster: '" + from.base_backup.string() +
                                       "' is not a plain-format base backup (no PG_VERSION in it)");
  if (!fs::is_directory(from.wal_archive, ec))
    throw error(error_kind::usage, "unable to start a recovery PostgreSQL cluster: the WAL archive '" +
                                       from.wal_archive.string() + "' is not a directory");
  if (from.wal_archive.string().find('\'') != std::string::npos)
    throw error(error_kind::usage, "unable to start a recovery PostgreSQL cluster: the WAL archive's path '" +
                                       from.wal_archive.string() + "' has a quote in it");
  if (from.target_time.empty())
    throw error(error_kind::usage, "unable to start a recovery PostgreSQL cluster: no recovery target time");
  fs::copy(from.base_backup, m_data_dir, fs::copy_options::recursive, ec);
  if (ec)
    throw error(error_kind::io, "unable to copy the base backup '" + from.base_backup.string() + "' to '" +
                                    m_data_dir.string() + "': " + ec.message());
  fs::permissions(m_data_dir, fs::perms::owner_all, ec);
  // A backup taken with -R would start a standby; a stale pid file would refuse to start.
  for (const char* stale : {"standby.signal", "recovery.signal", "postmaster.pid"}) fs::remove(m_data_dir / stale, ec);
}

void cluster::wait_for_promotion(const std::function<void()>& check_interrupt) const {
  // postmaster.pid's 8th line is the server's state: "standby" while it replays (hot_standby is
  // off), "ready" once promoted. A server that cannot reach the target stops (FATAL).
  auto deadline = std::chrono::steady_clock::now() + m_start_timeout;
  for (;;) {
    std::ifstream in(m_data_dir / "postmaster.pid");
    std::string line, status;
    pid_t pid = 0;
    for (int n = 1; std::getline(in, line); ++n) {
      if (n == 1) pid = static_cast<pid_t>(std::atoi(line.c_str()));
      if (n == 8) status = trim(line);
    }
    // No pid file: not written yet (pg_ctl did not wait), or removed by a server that stopped;
    // its log says which.
    bool gone = pid > 0 ? ::kill(pid, 0) != 0 : log_tail().find("FATAL:") != std::string::npos;
    if (gone)
      throw error(error_kind::shell, "unable to recover the PostgreSQL cluster in '" + m_base_dir.string() +
                                         "': the server stopped during recovery\nserver log (tail):\n" + log_tail());
    if (status == "ready") return;
    if (check_interrupt && pid > 0) check_interrupt();  // once teardown() can find the server to stop
    if (std::chrono::steady_clock::now() > deadline)
      throw error(error_kind::timeout, "unable to recover the PostgreSQL cluster in '" + m_base_dir.string() +
                                           "': not promoted within " + std::to_string(m_start_timeout.count()) +
                                           " s\nserver log (tail):\n" + log_tail());
    std::this_thread::sleep_for(100ms);  // replay runs in the server; we only watch its state
  }
}

void cluster::start() {
  if (!m_running) start_server();
}

void cluster::stop() {
  if (!m_running) return;
  auto r = pg_tool("pg_ctl",
                   {"stop", "--pgdata=" + m_data_dir.string(), "--mode=fast", "--wait", "--timeout=60", "--silent"},
                   75s);
  if (!r.ok())
    throw error(error_kind::shell, "unable to stop the sandbox PostgreSQL cluster in '" + m_base_dir.string() +
                                       "': pg_ctl " + describe(r));
  m_running = false;
}

void cluster::restart() {
  stop();
  start();
}

void cluster::teardown() noexcept {
  m_tools = nullptr;  // whoever showed the start may be gone; stopping is quick and silent
  if (!m_created) return;
  std::error_code ec;
  fs::path pid_file = m_data_dir / "postmaster.pid";
  if (fs::exists(pid_file, ec)) {
    // Immediate: nothing here needs to survive, and it takes milliseconds.
    bool stopped = false;
    try {
      auto r = pg_tool("pg_ctl",
                       {"stop", "--pgdata=" + m_data_dir.string(), "--mode=immediate", "--wait", "--timeout=30",
                        "--silent"},
                       40s);
      stopped = r.ok();
      if (!stopped) spdlog::warn("unable to stop the sandbox PostgreSQL cluster in '{}': pg_ctl {}",
                                 m_base_dir.string(), describe(r));
    } catch (const std::exception& e) {
      spdlog::warn("unable to stop the sandbox PostgreSQL cluster in '{}': {}", m_base_dir.string(), e.what());
    }
    if (!stopped) {
      // Last resort: the postmaster's pid is the first line of postmaster.pid.
      std::ifstream in(pid_file);
      pid_t pid = 0;
      if (in >> pid && pid > 0) ::kill(pid, SIGKILL);
    }
  }
  m_running = false;

  auto remove = [](const fs::path& path) {
    std::error_code rm_ec;
    fs::remove_all(path, rm_ec);
    if (rm_ec) spdlog::warn("unable to remove '{}' of a sandbox PostgreSQL cluster: {}", path.string(), rm_ec.message());
  };
  if (m_owns_base) {
    remove(m_base_dir);
  } else {
    remove(m_data_dir);
    remove(m_socket_dir);
    remove(m_log_file);
  }
  m_created = false;
}

shell::process_result cluster::pg_tool(std::string_view tool, std::vector<std::string> args,
                                       std::chrono::milliseconds timeout) const {
  shell::process_options opts;
  opts.argv.reserve(args.size() + 1);
  opts.argv.push_back(pg_bin(tool).string());
  for (auto& arg : args) opts.argv.push_back(std::move(arg));
  opts.cwd = m_base_dir;  // the server user may not be able to enter ours
  opts.clear_env = true;
  opts.env = tool_env();
  opts.timeout = timeout;
  opts.output_limit = k_output_limit;
  opts.run_as_user = m_server_user;
  return m_tools ? m_tools(opts) : shell::run(opts);
}

void cluster::psql(std::vector<std::string> args, std::string_view dbname, const std::string& what,
                   const tool_runner& runner) {
  // psql runs as us, connecting as role postgres over the socket (trust).
  shell::process_options opts;
  opts.argv = {pg_bin("psql").string(), "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--dbname=" + dsn(dbname)};
  for (auto& arg : args) opts.argv.push_back(std::move(arg));
  opts.clear_env = true;
  opts.env = tool_env();
  opts.output_limit = k_output_limit;
  auto r = runner(opts);
  if (r.ok()) return;
  // psql's exit status: 3 a statement failed (ON_ERROR_STOP), 2 the connection failed or was
  // lost, 1 psql's own failure (and, with -c, a failed statement too).
  std::string said = trim(r.err);
  bool sql_failed = r.exit_code == 3 || (r.exit_code == 1 && said.find("ERROR:") != std::string::npos);
  error_kind kind = sql_failed ? error_kind::sql : r.exit_code == 2 ? error_kind::connection : error_kind::shell;
  throw error(kind, "unable to " + what + ": " + (said.empty() ? "psql " + describe(r) : said));
}

void cluster::run_sql(std::string_view sql, std::string_view dbname) {
  psql({"--command=" + std::string(sql)}, dbname, "run SQL on database '" + std::string(dbname) + "'");
}

void cluster::run_sql_file(const fs::path& file, std::string_view dbname, const tool_runner& runner) {
  fs::path path = fs::absolute(file);
  std::ifstream probe(path);
  if (!probe)
    throw error(error_kind::io, "unable to run SQL file '" + file.string() + "': cannot read it: " + errno_text(errno));
  psql({"--file=" + path.string()}, dbname,
       "run SQL file '" + file.string() + "' on database '" + std::string(dbname) + "'", runner);
}

void cluster::create_database(std::string_view name, std::string_view template_db) {
  psql({"--command=CREATE DATABASE " + sql_ident(name) + " TEMPLATE " + sql_ident(template_db)}, "postgres",
       "create database '" + std::string(name) + "'");
}

void cluster::drop_database(std::string_view name) {
  psql({"--command=DROP DATABASE " + sql_ident(name) + " WITH (FORCE)"}, "postgres",
       "drop database '" + std::string(name) + "'");
}

std::string cluster::dsn() const { return dsn(m_database.empty() ? "postgres" : m_database); }

std::string cluster::dsn(std::string_view dbname) const {
  return "host=" + conninfo_value(m_socket_dir.string()) + " port=" + std::to_string(m_port) +
         " dbname=" + conninfo_value(dbname) + " user=" + k_role;
}

std::string cluster::user() const { return k_role; }

std::string cluster::connect_hint() const {
  std::string psql_path = "psql";
  try {
    psql_path = pg_bin("psql").string();
  } catch (const rb::error&) {
    // no psql where we look: the bare name is the best hint
  }
  return shell_quote(psql_path) + " " + shell_quote(dsn());
}

std::string cluster::log_tail() const {
  std::ifstream in(m_log_file, std::ios::binary);
  if (!in) return "(no server log at '" + m_log_file.string() + "')";
  in.seekg(0, std::ios::end);
  auto size = static_cast<std::size_t>(std::max<std::streamoff>(in.tellg(), 0));
  std::size_t from = size > k_log_tail_bytes ? size - k_log_tail_bytes : 0;
  in.seekg(static_cast<std::streamoff>(from));
  std::string text(size - from, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (from > 0) {
    if (auto nl = text.find('\n'); nl != std::string::npos) text.erase(0, nl + 1);
  }
  text = trim(std::move(text));
  return text.empty() ? "(the server log is empty)" : text;
}

}  // namespace rb::db
