// One PostgreSQL connection (libpqxx 6.4): bound parameters, typed columns, streaming through a
// cursor, notices, cancel, timeouts, reconnect, and a record of every statement for the audit.
#include "engine/db/connection.hpp"

#include <libpq-events.h>
#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <pqxx/pqxx>
#include <thread>
#include <type_traits>  // std::invoke_result_t
#include <unordered_map>
#include <utility>

#include "engine/db/sql_text.hpp"

namespace rb::db {
namespace {

using steady = std::chrono::steady_clock;

// ---- libpq underneath libpqxx ----------------------------------------------------------

/// libpqxx 6.4's own connect policy, remembering the PGconn it makes. libpqxx exposes no handle,
/// and we need one for three things it does not offer: PQtransactionStatus (so SQL that says
/// BEGIN/COMMIT itself cannot desynchronise our tracking), a PGcancel made on the owning thread
/// (PQcancel on it is safe from any thread; PQgetCancel, which cancel_query() calls, is not), and
/// PQerrorMessage when libpqxx reports a lost connection as "Could not obtain client encoding".
class capturing_connect : public pqxx::connect_direct {
 public:
  explicit capturing_connect(const std::string& opts) : connect_direct(opts) { t_last = this; }
  handle do_startconnect(handle orig) override {
    m_handle = connect_direct::do_startconnect(orig);
    return m_handle;
  }
  handle do_dropconnect(handle orig) noexcept override {
    m_handle = connect_direct::do_dropconnect(orig);
    return m_handle;
  }
  handle do_disconnect(handle orig) noexcept override {
    m_handle = connect_direct::do_disconnect(orig);
    return m_handle;
  }
  PGconn* raw() const noexcept { return m_handle; }

  /// The policy the last connection made on this thread was built with (basic_connection_base
  /// keeps its policy private; the constructor runs on our thread just before we ask).
  static thread_local capturing_connect* t_last;

 private:
  PGconn* m_handle = nullptr;
};
thread_local capturing_connect* capturing_connect::t_last = nullptr;

using pq_connection = pqxx::basic_connection_base<capturing_connect>;

// ---- PostgreSQL's messages --------------------------------------------------------------

/// A message as libpq formats it with PQERRORS_VERBOSE ("ERROR:  23505: primary\nDETAIL:  ...").
struct pg_message {
  std::string severity, sqlstate, primary, detail, hint, context, position;
  sql_failure::object_names names;
};

std::string error_field(const PGresult* r, int code) {
  const char* v = PQresultErrorField(r, code);
  return v ? v : "";
}

/// An error result's fields as the server sent them (PQresultErrorField): unlike the formatted
/// text, they do not depend on the server's lc_messages ("FEHLER:  ..." has no "ERROR:").
pg_message message_of(const PGresult* r) {
  pg_message m;
  m.severity = error_field(r, PG_DIAG_SEVERITY_NONLOCALIZED);
  m.sqlstate = error_field(r, PG_DIAG_SQLSTATE);
  m.primary = error_field(r, PG_DIAG_MESSAGE_PRIMARY);
  m.detail = error_field(r, PG_DIAG_MESSAGE_DETAIL);
  m.hint = error_field(r, PG_DIAG_MESSAGE_HINT);
  m.context = error_field(r, PG_DIAG_CONTEXT);
  m.names = {error_field(r, PG_DIAG_SCHEMA_NAME), error_field(r, PG_DIAG_TABLE_NAME), error_field(r, PG_DIAG_COLUMN_NAME),
             error_field(r, PG_DIAG_CONSTRAINT_NAME)};
  return m;
}

std::string_view rtrim_newlines(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.remove_suffix(1);
  return s;
}

/// Lines of a libpq message joined with single spaces ("server closed ...\n\tThis probably ...").
std::string one_line(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : rtrim_newlines(s)) {
    if (c == '\n' || c == '\t' || c == '\r') {
      space = true;
      continue;
    }
    if (space && !out.empty() && out.back() != ' ') out += ' ';
    space = false;
    out += c;
  }
  return out;
}

bool is_sqlstate(std::string_view s) {
  if (s.size() != 5) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'); });
}

pg_message parse_message(std::string_view text) {
  static constexpr std::string_view severities[] = {"ERROR",  "FATAL", "PANIC", "WARNING",
                                                    "NOTICE", "INFO",  "LOG",   "DEBUG"};
  pg_message m;
  text = rtrim_newlines(text);
  std::vector<std::string_view> lines;
  for (std::size_t start = 0; start <= text.size();) {
    std::size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  if (lines.empty()) return m;
  std::string_view first = lines[0];
  for (auto sev : severities) {
    if (first.size() > sev.size() + 3 && first.substr(0, sev.size()) == sev && first.substr(sev.size(), 3) == ":  ") {
      m.severity = std::string(sev);
      first.remove_prefix(sev.size() + 3);
      if (first.size() > 7 && is_sqlstate(first.substr(0, 5)) && first.substr(5, 2) == ": ") {
        m.sqlstate = std::string(first.substr(0, 5));
        first.remove_prefix(7);
      }
      break;
    }
  }
  if (m.severity.empty()) {  // a message of libpq's own
    m.primary = one_line(text);
    return m;
  }
  struct tag {
    std::string_view prefix;
    std::string* into;  // null: dropped
  };
  const tag tags[] = {{"DETAIL:  ", &m.detail},        {"HINT:  ", &m.hint},        {"CONTEXT:  ", &m.context},
                      {"QUERY:  ", nullptr},           {"LOCATION:  ", nullptr},    {"SCHEMA NAME:  ", nullptr},
                      {"TABLE NAME:  ", nullptr},      {"COLUMN NAME:  ", nullptr}, {"DATATYPE NAME:  ", nullptr},
                      {"CONSTRAINT NAME:  ", nullptr}, {"STATEMENT:  ", nullptr}};
  std::string* current = &m.primary;
  m.primary = std::string(first);
  for (std::size_t i = 1; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    bool tagged = false;
    for (const auto& t : tags) {
      if (line.substr(0, t.prefix.size()) == t.prefix) {
        current = t.into;
        if (current) {
          if (!current->empty()) *current += '\n';
          *current += line.substr(t.prefix.size());
        }
        tagged = true;
        break;
      }
    }
    if (!tagged && line.substr(0, 5) == "LINE " && line.find(": ") != std::string_view::npos) {
      current = &m.position;
      if (!current->empty()) *current += '\n';
      *current += line;
      tagged = true;
    }
    if (!tagged && current) {
      *current += '\n';
      *current += line;
    }
  }
  return m;
}

/// A notice as the audit and take_notices() show it: the text, with its severity when it is not
/// a plain NOTICE/INFO ("WARNING: disk is filling").
std::string notice_text(const pg_message& m) {
  std::string text = m.primary;
  if (!m.detail.empty()) text += "\nDETAIL: " + m.detail;
  if (!m.hint.empty()) text += "\nHINT: " + m.hint;
  if (m.severity.empty() || m.severity == "NOTICE" || m.severity == "INFO") return text;
  return m.severity + ": " + text;
}

// ---- SQL text ------------------------------------------------------------------------------

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/// Savepoint names as quoted identifiers. PostgreSQL truncates identifiers to 63 bytes (with a
/// NOTICE), so longer names keep a prefix cut on a character boundary plus a hash of the whole,
/// which keeps distinct long names distinct.
std::string savepoint_identifier(std::string_view name) {
  std::string id(name);
  if (id.size() > 63) {
    std::size_t cut = 50;
    while (cut > 0 && (static_cast<unsigned char>(id[cut]) & 0xC0) == 0x80) --cut;
    unsigned long long h = 1469598103934665603ULL;  // FNV-1a: stable, and enough to tell names apart
    for (unsigned char c : name) h = (h ^ c) * 1099511628211ULL;
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", h);
    id = id.substr(0, cut) + "~" + std::string(hex, 12);
  }
  std::string out = "\"";
  for (char c : id) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string strip_trailing_semicolons(std::string_view sql) {
  while (!sql.empty() && (is_space(sql.back()) || sql.back() == ';')) sql.remove_suffix(1);
  return std::string(sql);
}

std::chrono::milliseconds since(steady::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0);
}

/// The session's timeouts as far as we know them; nullopt means "unknown": re-apply.
struct session_settings {
  std::optional<long long> statement_timeout, lock_timeout;
  bool extra = false;  // the session settings (set_session_settings) are in force
};

/// A transaction level: BEGIN (first) or a savepoint, with the settings it started with, which
/// ROLLBACK / ROLLBACK TO restore (a SET made inside is transactional).
struct tx_level {
  std::string name;  // empty for BEGIN
  session_settings saved;
};

/// What the watchdog or cancel() did to the statement in flight.
struct cancel_flags {
  bool by_deadline = false;
  bool by_user = false;
};

/// How a lost connection is reported for a given operation.
enum class on_loss { connection, in_doubt };

/// How one round trip is run.
struct trip {
  on_loss loss = on_loss::connection;
  /// The caller's SQL, which may itself open or end a transaction.
  bool user_sql = false;
  /// ROLLBACK, ROLLBACK TO, RELEASE, CLOSE: recovery must work after a deadline, so these are
  /// neither refused nor cancelled by it.
  bool cleanup = false;
};

constexpr std::size_t k_max_notices = 10'000;

}  // namespace

// ---- the connection ------------------------------------------------------------------------

struct connection::impl {
  connection_options opts;
  std::vector<std::string> secrets;  // dsn_secrets(): to scrub from messages

  std::unique_ptr<pq_connection> pq;
  capturing_connect* policy = nullptr;
  std::unique_ptr<pqxx::errorhandler> sink;
  std::unique_ptr<pqxx::nontransaction> work;

  // The caller's transaction, as begin()/commit()/... and PQtransactionStatus tell us.
  bool tx_open = false;
  bool tx_lost = false;    // open, but its session is gone: it was rolled back by the server
  bool tx_by_sql = false;  // begun by the caller's SQL (its own BEGIN), not by begin()
  std::optional<tx_end> ended_by_sql;  // how the caller's SQL ended a begin() transaction
  std::optional<tx_end> seen_end;      // COMMIT/ROLLBACK command tags of the SQL in flight
  std::vector<tx_level> levels;
  session_settings have;
  std::optional<long long> want_statement_timeout, want_lock_timeout;
  std::vector<std::pair<std::string, std::string>> want_settings;
  bool dirty = false;          // the caller's SQL ran since the last RESET ALL
  bool reset_pending = false;  // reset_session() asked for RESET ALL before the next statement
  std::string failure_location;  // "x.sql:3" for the script error being thrown

  std::vector<std::string> pending_notices, statement_notices;
  std::size_t dropped_notices = 0;
  std::optional<pg_message> fatal;  // why the server is closing the session, when it said so
  std::optional<pg_message> last_error;  // the first error result of the round trip (on_pq_event)

  std::function<void(const statement_record&)> on_stmt;
  unsigned long cursor_seq = 0;

  // Statements run again and again (a loop of INSERTs) become prepared statements of this
  // session after their first successful run: parsed and planned once.
  std::unordered_map<std::string, std::string> prepared;  // sql -> statement name
  std::unordered_map<std::string, int> succeeded_once;
  unsigned long prepared_seq = 0;

  // Cancel and deadline: shared with the watchdog thread and cancel() callers.
  std::mutex mu;
  std::condition_variable cv;
  PGcancel* cancel_handle = nullptr;
  bool busy = false;
  bool busy_cleanup = false;  // the statement in flight is exempt from the deadline
  bool cancel_sent = false;
  cancel_flags flags;
  std::optional<steady::time_point> deadline;
  bool stopping = false;
  std::thread watchdog;

  explicit impl(connection_options o) : opts(std::move(o)), secrets(dsn_secrets(opts.dsn)) {}
  ~impl() {
    {
      std::lock_guard lk(mu);
      stopping = true;
    }
    cv.notify_all();
    if (watchdog.joinable()) watchdog.join();
    close();
  }
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  PGconn* raw() const { return policy ? policy->raw() : nullptr; }
  bool session_ok() const { return pq && pq->is_open(); }

  // -- messages --

  std::string scrub(std::string text) const {
    for (const auto& f : secrets) {
      for (std::size_t at = text.find(f); at != std::string::npos; at = text.find(f, at + 3))
        text.replace(at, f.size(), "***");
    }
    return text;
  }

  sql_failure failure(error_kind kind, const std::string& what, const pg_message& m, std::string sqlstate,
                      std::string_view statement) const {
    std::string msg = "unable to " + what + " on " + opts.name + ": " + m.primary;
    if (!sqlstate.empty()) msg += " (SQLSTATE " + sqlstate + ")";
    if (!m.detail.empty()) msg += "\nDETAIL: " + m.detail;
    if (!m.hint.empty()) msg += "\nHINT: " + m.hint;
    if (!m.context.empty()) msg += "\nCONTEXT: " + m.context;
    if (!m.position.empty()) msg += "\n" + m.position;
    return sql_failure(kind, scrub(msg), std::move(sqlstate), scrub(m.detail), scrub(m.hint), std::string(statement))
        .with_names(m.names);
  }

  sql_failure failure(error_kind kind, const std::string& what, std::string text, std::string sqlstate,
                      std::string_view statement) const {
    pg_message m;
    m.primary = std::move(text);
    return failure(kind, what, m, std::move(sqlstate), statement);
  }

  void on_notice(const char* msg) {
    pg_message m = parse_message(msg ? msg : "");
    // The server's goodbye (pg_terminate_backend, shutdown) arrives as an "error" outside any
    // query: keep it to explain the lost connection rather than listing it as a notice.
    if (m.severity == "FATAL" || m.severity == "PANIC") {
      fatal = std::move(m);
      return;
    }
    std::string text = notice_text(m);
    if (text.empty()) return;
    if (pending_notices.size() < k_max_notices)
      pending_notices.push_back(text);
    else
      ++dropped_notices;
    if (statement_notices.size() < k_max_notices) statement_notices.push_back(std::move(text));
  }

  /// libpq calls this for every result it makes, libpqxx's included (which keeps an error's
  /// PGresult to itself): the first error of a round trip is kept, with its fields.
  static int on_pq_event(PGEventId id, void* info, void* pass) noexcept {
    if (id != PGEVT_RESULTCREATE) return 1;
    auto* created = static_cast<PGEventResultCreate*>(info);
    auto* self = static_cast<impl*>(pass);
    if (self->last_error || PQresultStatus(created->result) != PGRES_FATAL_ERROR) return 1;
    try {
      pg_message m = message_of(created->result);
      if (!m.primary.empty()) self->last_error = std::move(m);
    } catch (const std::exception&) {
      // out of memory copying the fields: the formatted text is still there
    }
    return 1;
  }

  // -- session --

  void open() {
    fatal.reset();
    std::unique_ptr<pq_connection> c;
    capturing_connect::t_last = nullptr;
    try {
      parse_dsn(opts.dsn);  // libpq's complaint, with no word of a secret in it
    } catch (const error& e) {
      throw sql_failure(error_kind::connection, "unable to connect to " + opts.name + ": " + e.what(), "08001", "",
                        "", "");
    }
    try {
      c = std::make_unique<pq_connection>(opts.application_name.empty() ? opts.dsn : dsn_with(opts.dsn, "application_name", opts.application_name));
    } catch (const std::exception& e) {
      std::string msg = "unable to connect to " + opts.name + " (" + redact_dsn(opts.dsn) + "): " + one_line(e.what());
      throw sql_failure(error_kind::connection, scrub(msg), "08001", "", "", "");
    }
    policy = capturing_connect::t_last;
    if (!policy || !policy->raw())
      throw failure(error_kind::internal, "connect", "libpqxx did not hand over its libpq connection", "", "");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    // Never reconnect behind our back: a new session would silently run the rest of a
    // transaction's statements in autocommit. reconnect() is explicit.
    c->inhibit_reactivation(true);
#pragma GCC diagnostic pop
    c->set_verbosity(pqxx::connection_base::verbose);

    struct notice_sink final : pqxx::errorhandler {
      notice_sink(pqxx::connection_base& c, impl* m) : errorhandler(c), m_impl(m) {}
      bool operator()(const char msg[]) noexcept override {
        try {
          m_impl->on_notice(msg);
        } catch (const std::exception&) {
          // out of memory while recording a notice: drop it
        }
        return false;
      }
      impl* m_impl;
    };
    if (!PQregisterEventProc(policy->raw(), &impl::on_pq_event, "runbook", this))
      throw failure(error_kind::internal, "connect", "unable to watch libpq's results (PQregisterEventProc)", "", "");
    sink = std::make_unique<notice_sink>(*c, this);
    work = std::make_unique<pqxx::nontransaction>(*c, "runbook");
    pq = std::move(c);
    std::lock_guard lk(mu);
    cancel_handle = PQgetCancel(policy->raw());
  }

  void close() noexcept {
    {
      std::lock_guard lk(mu);
      if (cancel_handle) PQfreeCancel(cancel_handle);
      cancel_handle = nullptr;
    }
    work.reset();
    sink.reset();
    pq.reset();
    policy = nullptr;
    prepared.clear();  // prepared statements live and die with their session
    succeeded_once.clear();
  }

  /// Only statements that return no rows are prepared: a prepared SELECT * would fail with
  /// "cached plan must not change result type" after an ALTER TABLE in the same session.
  static bool preparable(const std::string& sql) {
    std::size_t i = 0;
    while (i < sql.size() && std::isspace(static_cast<unsigned char>(sql[i]))) ++i;
    std::string head;
    for (; i < sql.size() && head.size() < 6 && std::isalpha(static_cast<unsigned char>(sql[i])); ++i)
      head += static_cast<char>(std::toupper(static_cast<unsigned char>(sql[i])));
    if (head != "INSERT" && head != "UPDATE" && head != "DELETE") return false;
    std::string upper;
    upper.reserve(sql.size());
    for (char c : sql) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return upper.find("RETURNING") == std::string::npos && sql.find(';') == std::string::npos;
  }

  // -- transaction tracking --

  void forget_transaction() {
    tx_open = false;
    tx_lost = false;
    tx_by_sql = false;
    levels.clear();
  }

  /// The session is gone: so is its transaction (never committed) and what we knew of it.
  void session_lost() {
    if (tx_open) tx_lost = true;
    levels.clear();
    have = {};
  }

  /// After the caller's SQL: agrees with libpq on whether a transaction is open, in case the
  /// SQL itself said BEGIN or COMMIT (a migration file with its own transaction). Returns true
  /// when the SQL ended a transaction begin() had opened (ended_by_sql says how).
  bool sync_transaction_state() {
    dirty = true;  // it may have SET anything
    PGconn* h = raw();
    if (!h || tx_lost) return false;
    switch (PQtransactionStatus(h)) {
      case PQTRANS_IDLE:
        if (tx_open) {
          bool callers = !tx_by_sql;
          forget_transaction();
          have = {};
          if (callers) {
            // A COMMIT/ROLLBACK tag tells how; without one (PREPARE TRANSACTION, exec()) nobody can.
            ended_by_sql = seen_end.value_or(tx_end::in_doubt);
            return true;
          }
        }
        break;
      case PQTRANS_INTRANS:
      case PQTRANS_INERROR:
        if (!tx_open) {  // opened by the SQL
          tx_open = true;
          tx_by_sql = true;
          levels = {tx_level{"", session_settings{}}};
        }
        break;
      default:
        break;
    }
    return false;
  }

  /// Remembers what a command tag says about the transaction ("COMMIT", "ROLLBACK": how the
  /// last COMMIT went; a COMMIT of a failed transaction answers ROLLBACK).
  void note_tag(const char* tag) {
    if (!tag) return;
    std::string_view t(tag);
    if (t == "COMMIT") seen_end = tx_end::committed;
    else if (t == "ROLLBACK") seen_end = tx_end::rolled_back;
    else if (t == "PREPARE TRANSACTION") seen_end = tx_end::in_doubt;
  }

  /// The caller's SQL ended the transaction begin() opened (something the check before it ran
  /// did not see): the statement fails, saying what became of the work.
  sql_failure ended_transaction(const std::string& what, std::string_view sql) const {
    pg_message m;
    m.primary = "the SQL ended the transaction that was open around it (a transaction = true phase, or "
                "db:transaction): ";
    switch (ended_by_sql.value_or(tx_end::in_doubt)) {
      case tx_end::committed: m.primary += "its work up to that point was COMMITTED"; break;
      case tx_end::rolled_back: m.primary += "its work was rolled back"; break;
      case tx_end::in_doubt: m.primary += "whether its work was committed is not known; check the database"; break;
    }
    m.hint = transaction_control_hint();
    return failure(error_kind::sql, what, m, "2D000", sql);
  }

  static std::string transaction_control_hint() {
    return "Leave BEGIN/COMMIT/ROLLBACK out: the surrounding transaction commits or rolls back this work. A file "
           "that must run with its own BEGIN/COMMIT belongs in a phase without transaction = true.";
  }

  /// Where a script's statement is: "x.sql:3", or "line 3 of the script" for text.
  static std::string script_location(std::string_view sql, std::string_view source, std::size_t offset) {
    int line = line_at(sql, offset);
    if (source.empty()) return "line " + std::to_string(line) + " of the script";
    return std::string(source) + ":" + std::to_string(line);
  }

  /// Refuses, before it runs, SQL that would begin, end or prepare the transaction begin()
  /// opened (a migration file's own BEGIN/COMMIT inside a transaction = true phase).
  void refuse_transaction_control(const std::string& what, std::string_view sql, bool is_script,
                                  std::string_view source) const {
    if (!tx_open || tx_by_sql || tx_lost) return;
    std::optional<control_statement> found;
    if (is_script) {
      found = find_transaction_control(sql);
    } else if (auto verb = transaction_control(sql)) {
      found = control_statement{*verb, 0};
    }
    if (!found) return;
    bool opens = found->verb == "BEGIN" || found->verb == "START TRANSACTION";
    pg_message m;
    m.primary = found->verb + (opens ? " would begin a transaction inside" : " would end") +
                " the transaction that is open around this SQL (a transaction = true phase, or db:transaction); "
                "nothing was run";
    if (is_script) m.primary = script_location(sql, source, found->offset) + ": " + m.primary;
    m.hint = transaction_control_hint();
    throw failure(error_kind::sql, what, m, "2D000", sql);
  }

  bool transaction_failed() const {
    PGconn* h = raw();
    return h && PQtransactionStatus(h) == PQTRANS_INERROR;
  }

  // -- statements --

  /// The connection can take a statement: open, and not inside a transaction that was lost.
  void ensure_usable(const std::string& what, std::string_view sql) {
    if (tx_lost)
      throw failure(error_kind::connection, what,
                    "the open transaction was lost with the connection (the server rolled it back); roll it "
                    "back here before running more SQL",
                    "08006", sql);
    if (!session_ok()) {
      std::string why = fatal ? fatal->primary : std::string("the connection is closed");
      throw failure(error_kind::connection, what, why + " (reconnect first)",
                    fatal && !fatal->sqlstate.empty() ? fatal->sqlstate : "08003", sql);
    }
  }

  /// Marks a statement in flight for cancel() and the watchdog; refuses to start one once the
  /// deadline has passed.
  class busy_scope {
   public:
    busy_scope(impl& m, const std::string& what, std::string_view sql, bool cleanup) : m_impl(m) {
      std::lock_guard lk(m.mu);
      if (!cleanup && m.deadline && steady::now() >= *m.deadline)
        throw m.failure(error_kind::timeout, what, "the deadline passed before the statement could start", "57014",
                        sql);
      m.busy = true;
      m.busy_cleanup = cleanup;
      m.cancel_sent = false;
      m.flags = {};
    }
    ~busy_scope() { finish(); }
    cancel_flags finish() {
      std::lock_guard lk(m_impl.mu);
      m_impl.busy = false;
      return m_impl.flags;
    }

   private:
    impl& m_impl;
  };

  /// One round trip. Converts libpqxx's exceptions into sql_failure with the right kind.
  template <class F>
  std::invoke_result_t<F&> round_trip(const std::string& what, std::string_view sql, trip t, F&& f) {
    const on_loss loss = t.loss;
    const bool user_sql = t.user_sql;
    busy_scope busy(*this, what, sql, t.cleanup);
    auto t0 = steady::now();
    if (user_sql) seen_end.reset();
    failure_location.clear();
    last_error.reset();
    try {
      auto r = f();
      busy.finish();
      if (user_sql && sync_transaction_state()) throw ended_transaction(what, sql);
      return r;
    } catch (const pqxx::in_doubt_error& e) {
      busy.finish();
      session_lost();
      throw lost(what, sql, on_loss::in_doubt, e.what());
    } catch (const pqxx::broken_connection& e) {
      busy.finish();
      throw lost(what, sql, loss, e.what());
    } catch (const pqxx::sql_error& e) {
      cancel_flags fl = busy.finish();
      if (!session_ok()) throw lost(what, sql, loss, e.what());
      if (user_sql) sync_transaction_state();
      throw statement_failed(what, sql, e.what(), e.sqlstate(), fl, since(t0));
    } catch (const pqxx::failure& e) {
      // Also the server's errors libpqxx 6.4 gives classes without a SQLSTATE of their own
      // (serialization_failure, deadlock_detected, statement_completion_unknown): the
      // verbose message carries it.
      cancel_flags fl = busy.finish();
      if (!session_ok()) throw lost(what, sql, loss, e.what());
      if (user_sql) sync_transaction_state();
      throw statement_failed(what, sql, e.what(), "", fl, since(t0));
    } catch (const std::logic_error& e) {  // libpqxx usage_error/internal_error: our bug
      busy.finish();
      throw failure(error_kind::internal, what, one_line(e.what()), "", sql);
    }
  }

  sql_failure lost(const std::string& what, std::string_view sql, on_loss loss, const char* pqxx_text) {
    bool had_tx = tx_open && !tx_lost;
    // Read whatever the server said last (its FATAL arrives as a "notice").
    if (PGconn* h = raw(); h && !fatal) {
      PQconsumeInput(h);
      PQisBusy(h);
    }
    pg_message m;
    if (fatal) {
      m = *fatal;
    } else if (PGconn* h = raw(); h && *PQerrorMessage(h)) {
      m = parse_message(PQerrorMessage(h));
    } else {
      m.primary = one_line(pqxx_text);
    }
    std::string sqlstate = m.sqlstate.empty() || m.sqlstate.substr(0, 2) == "XX" ? "08006" : m.sqlstate;
    if (loss == on_loss::in_doubt) {
      forget_transaction();
      have = {};
      m.primary = "the connection was lost during COMMIT (" + m.primary +
                  "): the transaction may or may not have been committed; check before retrying";
      return failure(error_kind::in_doubt, what, m, "08007", sql);
    }
    session_lost();
    m.primary = "lost the connection: " + m.primary;
    if (had_tx) m.primary += "; its open transaction was not committed";
    return failure(error_kind::connection, what, m, sqlstate, sql);
  }

  sql_failure statement_failed(const std::string& what, std::string_view sql, const char* text,
                               const std::string& reported_sqlstate, cancel_flags fl, std::chrono::milliseconds took) {
    pg_message m = parse_message(text);
    if (last_error) {  // the server's fields: the text's DETAIL/HINT are lost in another language
      std::string position = m.severity.empty() ? std::string() : m.position;
      m = *last_error;
      m.position = std::move(position);
    }
    std::string sqlstate = reported_sqlstate.empty() ? m.sqlstate : reported_sqlstate;
    if (m.primary.empty()) m.primary = one_line(text);
    if (!failure_location.empty()) m.primary = failure_location + ": " + m.primary;
    error_kind kind = kind_for_sqlstate(sqlstate);
    auto near = [&](const std::optional<long long>& limit) {
      return limit && *limit > 0 && took.count() * 10 >= *limit * 9;
    };
    if (sqlstate == "57014") {
      if (fl.by_deadline) {
        kind = error_kind::timeout;
        m.primary = "the statement was cancelled: its deadline passed while it ran";
      } else if (fl.by_user) {
        kind = error_kind::cancelled;
      } else if (m.primary.find("statement timeout") != std::string::npos || near(have.statement_timeout)) {
        kind = error_kind::timeout;
      } else {
        kind = error_kind::sql;  // someone else's pg_cancel_backend
      }
    } else if (sqlstate == "55P03") {
      bool lock_timeout = m.primary.find("lock timeout") != std::string::npos || near(have.lock_timeout);
      kind = lock_timeout ? error_kind::timeout : error_kind::sql;
    }
    return failure(kind, what, m, sqlstate, sql);
  }

  /// SET what the caller asked for, when the session does not have it already; after
  /// reset_session(), first RESET ALL (whatever the caller's SQL SET since), all in one round
  /// trip. Skipped in a failed transaction (the statement will fail anyway; ROLLBACK restores
  /// what we track).
  void apply_settings() {
    const bool reset = reset_pending && dirty;
    if (reset_pending && !dirty) reset_pending = false;  // nothing ran since: nothing to undo
    std::string q = reset ? "RESET ALL; " : "";
    if (want_statement_timeout && (reset || want_statement_timeout != have.statement_timeout))
      q += "SET statement_timeout = " + std::to_string(*want_statement_timeout) + "; ";
    if (want_lock_timeout && (reset || want_lock_timeout != have.lock_timeout))
      q += "SET lock_timeout = " + std::to_string(*want_lock_timeout) + "; ";
    const bool extra = !want_settings.empty() && (reset || !have.extra);
    if (extra) {
      for (const auto& [name, value] : want_settings)
        q += "SELECT pg_catalog.set_config(" + escaped_literal(name) + ", " + escaped_literal(value) + ", false); ";
    }
    if (q.empty() || transaction_failed()) return;
    round_trip(extra ? "apply the session settings (" + settings_names() + ")" : "apply the session settings", q,
               trip{}, [&] { return work->exec(q); });
    if (reset) have = {};
    if (want_statement_timeout) have.statement_timeout = want_statement_timeout;
    if (want_lock_timeout) have.lock_timeout = want_lock_timeout;
    have.extra = have.extra || extra;
    if (reset) {
      reset_pending = false;
      dirty = false;
    }
  }

  std::string settings_names() const {
    std::string out;
    for (const auto& [name, value] : want_settings) out += (out.empty() ? "" : ", ") + name;
    return out;
  }

  /// E'...': the same meaning whatever standard_conforming_strings says.
  static std::string escaped_literal(std::string_view v) {
    std::string out = "E'";
    for (char c : v) {
      if (c == '\\' || c == '\'') out += c;
      out += c;
    }
    return out + "'";
  }

  static bool is_utf8(PGconn* h) {
    const char* enc = PQparameterStatus(h, "client_encoding");
    return enc && std::string_view(enc) == "UTF8";
  }

  /// What a script returned: the rows (or rows affected) of its last statement.
  struct script_result {
    long long rows = 0;
  };

  /// One simple-protocol query on libpq itself (libpqxx keeps only the last result and none
  /// of an error's fields): every statement's result, its command tag, and for a failure the
  /// server's position or the statement it reached, so the message can name the line.
  script_result run_script(const std::string& sql, std::string_view source) {
    PGconn* h = raw();
    if (!PQsendQuery(h, sql.c_str())) {
      std::string msg = PQerrorMessage(h);
      if (PQstatus(h) != CONNECTION_OK) throw pqxx::broken_connection(msg);
      throw pqxx::failure(msg);
    }
    using result_ptr = std::unique_ptr<PGresult, decltype(&PQclear)>;
    result_ptr error(nullptr, PQclear);
    std::size_t completed = 0;  // statements that ran to completion
    script_result out;
    while (PGresult* next = PQgetResult(h)) {
      result_ptr res(next, PQclear);
      switch (PQresultStatus(res.get())) {
        case PGRES_COMMAND_OK:
        case PGRES_TUPLES_OK:
          ++completed;
          note_tag(PQcmdStatus(res.get()));
          out.rows = PQnfields(res.get()) > 0 ? PQntuples(res.get()) : std::atoll(PQcmdTuples(res.get()));
          break;
        case PGRES_COPY_IN:  // no data to give: fail it (a later result says so)
          PQputCopyEnd(h, "a runbook script cannot feed COPY ... FROM STDIN");
          break;
        case PGRES_COPY_OUT: {
          char* buf = nullptr;
          while (PQgetCopyData(h, &buf, 0) > 0) PQfreemem(buf);
          break;
        }
        case PGRES_FATAL_ERROR:
        case PGRES_BAD_RESPONSE:
          if (!error) error = std::move(res);
          break;
        default:
          break;
      }
    }
    if (error) {
      std::string msg = PQresultErrorMessage(error.get());
      if (PQstatus(h) != CONNECTION_OK) throw pqxx::broken_connection(msg);
      const char* sqlstate = PQresultErrorField(error.get(), PG_DIAG_SQLSTATE);
      const char* position = PQresultErrorField(error.get(), PG_DIAG_STATEMENT_POSITION);
      std::optional<std::size_t> at;
      if (position && std::atol(position) > 0) {
        at = offset_of_position(sql, std::atol(position), is_utf8(h));
      } else {
        // No position (a runtime error): the statement after the last one that completed.
        auto statements = split_statements(sql);
        if (completed < statements.size()) at = statements[completed].begin;
      }
      if (at && (!source.empty() || sql.find('\n') != std::string::npos))
        failure_location = script_location(sql, source, *at);
      throw pqxx::sql_error(msg, sql, sqlstate);
    }
    if (PQstatus(h) != CONNECTION_OK) throw pqxx::broken_connection(PQerrorMessage(h));
    return out;
  }

  pqxx::result exec_simple(const std::string& what, const std::string& sql, trip t = {}) {
    return round_trip(what, sql, t, [&] { return work->exec(sql); });
  }

  pqxx::result exec_bound(const std::string& what, const std::string& sql, const std::vector<param>& params,
                          bool user_sql) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    if (user_sql && preparable(sql)) {
      auto it = prepared.find(sql);
      if (it == prepared.end() && succeeded_once.count(sql) && prepared.size() < 256) {
        std::string name = "rb_p" + std::to_string(++prepared_seq);
        pq->prepare(name, sql);
        it = prepared.emplace(sql, name).first;
      }
      if (it != prepared.end()) {
        const std::string& name = it->second;
        return round_trip(what, sql, trip{.user_sql = user_sql},
                          [&] { return work->exec_prepared(name, pqxx::prepare::make_dynamic_params(values)); });
      }
      pqxx::result r = round_trip(what, sql, trip{.user_sql = user_sql},
                                  [&] { return work->exec_params(sql, pqxx::prepare::make_dynamic_params(values)); });
      if (succeeded_once.size() > 4096) succeeded_once.clear();
      succeeded_once.emplace(sql, 1);
      return r;
    }
    return round_trip(what, sql, trip{.user_sql = user_sql},
                      [&] { return work->exec_params(sql, pqxx::prepare::make_dynamic_params(values)); });
  }

  // -- transaction control (also used by stream for its own transaction) --

  void do_begin(const std::string& sql) {
    if (!transaction_failed()) apply_settings();  // outside the transaction: ROLLBACK keeps it
    session_settings before = have;
    exec_simple("begin a transaction", sql);
    tx_open = true;
    tx_lost = false;
    tx_by_sql = false;
    ended_by_sql.reset();
    levels = {tx_level{"", before}};
  }

  void do_commit(const std::string& sql) {
    const std::string what = "commit the transaction";
    // A session that died while idle in the transaction (terminated, server restart) has
    // already told us so, or closed the socket: then COMMIT was never sent and the outcome is
    // known — rolled back. Only a connection lost after COMMIT went out leaves it in doubt.
    if (PGconn* h = raw(); h && !fatal) {
      for (int i = 0; i < 2 && PQstatus(h) == CONNECTION_OK; ++i) {
        PQconsumeInput(h);
        PQisBusy(h);
      }
    }
    if (!session_ok() || fatal) {
      pg_message m;
      m.primary = "the connection was lost before COMMIT was sent" +
                  (fatal ? " (" + fatal->primary + ")" : std::string()) + "; the transaction was rolled back";
      forget_transaction();
      have = {};
      throw failure(error_kind::connection, what, m, fatal && !fatal->sqlstate.empty() ? fatal->sqlstate : "08006",
                    sql);
    }
    bool failed_before = transaction_failed();
    session_settings at_begin = levels.empty() ? session_settings{} : levels.front().saved;
    try {
      exec_simple(what, sql, trip{.loss = on_loss::in_doubt});
    } catch (const sql_failure& e) {
      // An error at COMMIT (a deferred constraint) ended it: rolled back. Refused before it was
      // sent (the deadline had passed), the transaction is still open for ROLLBACK.
      PGconn* h = raw();
      if (e.kind() != error_kind::in_doubt && h && PQtransactionStatus(h) == PQTRANS_IDLE) {
        forget_transaction();
        have = at_begin;
        dirty = true;
      }
      throw;
    }
    forget_transaction();
    if (failed_before) {
      have = at_begin;
      dirty = true;
      throw failure(error_kind::sql, what,
                    "the transaction had failed (an earlier statement raised an error), so PostgreSQL rolled it "
                    "back instead",
                    "25P02", sql);
    }
  }

  void do_rollback(const std::string& sql) {
    session_settings at_begin = levels.empty() ? session_settings{} : levels.front().saved;
    if (tx_lost || !session_ok()) {  // the server has rolled it back already
      forget_transaction();
      return;
    }
    try {
      exec_simple("roll back the transaction", sql, trip{.cleanup = true});
    } catch (const sql_failure& e) {
      if (e.kind() == error_kind::connection) {  // rolled back by the server all the same
        forget_transaction();
        return;
      }
      if (PGconn* h = raw(); h && PQtransactionStatus(h) == PQTRANS_IDLE) forget_transaction();
      throw;
    }
    forget_transaction();
    have = at_begin;
    dirty = true;  // a RESET ALL made inside was undone with the rest
  }

  // -- deadline --

  void watch() {
    std::unique_lock lk(mu);
    while (!stopping) {
      if (!deadline) {
        cv.wait(lk);
        continue;
      }
      auto d = *deadline;
      if (steady::now() < d) {
        cv.wait_until(lk, d);
        continue;
      }
      if (busy && !busy_cleanup && !cancel_sent) {
        flags.by_deadline = true;
        send_cancel_locked();
      }
      cv.wait(lk);  // until the deadline moves or we stop; no statement starts past it
    }
  }

  /// PQcancel on the handle made by the owning thread: safe from any thread. Holding `mu` keeps
  /// the handle alive and the statement in flight the same one.
  void send_cancel_locked() {
    cancel_sent = true;
    if (!cancel_handle) return;
    char err[256];
    PQcancel(cancel_handle, err, sizeof err);  // failure: nothing more we can do; it runs on
  }

  // -- audit --

  /// One statement's record, reported exactly once.
  class record_scope {
   public:
    record_scope(impl& m, std::string_view sql, std::size_t params) : m_impl(m), m_sql(sql), m_params(params) {
      m.statement_notices.clear();
      m_t0 = steady::now();
    }
    ~record_scope() {
      if (m_done) return;
      try {
        report(0, "", "interrupted");
      } catch (const std::exception&) {
        // unwinding already; the audit sink's own failure cannot be raised from here
      }
    }
    void ok(long long rows) {
      if (!m_done) report(rows, "", "");
    }
    /// After ok() this does nothing: the exception is then the callback's own, and the
    /// statement did succeed.
    void fail(const std::exception& e) {
      if (m_done) return;
      const auto* sf = dynamic_cast<const sql_failure*>(&e);
      report(0, sf ? sf->sqlstate() : "", m_impl.scrub(e.what()));
    }

   private:
    void report(long long rows, std::string sqlstate, std::string error) {
      m_done = true;
      if (!m_impl.on_stmt) {
        m_impl.statement_notices.clear();
        return;
      }
      statement_record r;
      r.sql = std::string(m_sql);
      r.params = m_params;
      r.rows = rows;
      r.duration = since(m_t0);
      r.sqlstate = std::move(sqlstate);
      r.error = std::move(error);
      r.notices = std::move(m_impl.statement_notices);
      m_impl.statement_notices.clear();
      m_impl.on_stmt(r);
    }
    impl& m_impl;
    std::string_view m_sql;
    std::size_t m_params;
    steady::time_point m_t0;
    bool m_done = false;
  };

  template <class F>
  void control(const std::string& sql, F&& f) {
    record_scope rec(*this, sql, 0);
    try {
      f();
    } catch (const std::exception& e) {
      rec.fail(e);
      throw;
    }
    rec.ok(0);
  }
};

namespace {

result to_result(const pqxx::result& r) {
  result out;
  const auto ncols = r.columns();
  out.columns.reserve(ncols);
  for (pqxx::row::size_type c = 0; c < ncols; ++c) out.columns.push_back(column{r.column_name(c), r.column_type(c)});
  out.rows.reserve(r.size());
  for (const auto& row : r) {
    std::vector<field> fields;
    fields.reserve(ncols);
    for (const auto& f : row) {
      if (f.is_null())
        fields.push_back(field{});
      else
        fields.push_back(field{false, std::string(f.c_str(), f.size())});
    }
    out.rows.push_back(std::move(fields));
  }
  out.affected = ncols > 0 ? static_cast<long long>(r.size()) : static_cast<long long>(r.affected_rows());
  return out;
}

}  // namespace

connection::connection(connection_options opts) : m(std::make_unique<impl>(std::move(opts))) { m->open(); }

connection::~connection() = default;

result connection::exec(std::string_view sql, const std::vector<param>& params) {
  impl::record_scope rec(*m, sql, params.size());
  try {
    const std::string what = "run SQL";
    m->ensure_usable(what, sql);
    m->refuse_transaction_control(what, sql, false, {});
    m->apply_settings();
    result out = to_result(m->exec_bound(what, std::string(sql), params, true));
    rec.ok(out.affected);
    return out;
  } catch (const std::exception& e) {
    rec.fail(e);
    throw;
  }
}

void connection::stream(std::string_view sql, const std::vector<param>& params, std::size_t batch,
                        const std::function<bool(const std::vector<column>&, const std::vector<field>&)>& fn) {
  impl::record_scope rec(*m, sql, params.size());
  const std::string what = "stream rows";
  batch = std::max<std::size_t>(batch, 1);

  // On the way out by an exception (the callback's included): close the cursor, and end the
  // transaction we opened. A destructor, so a foreign exception (a Lua error) runs it too.
  struct cleanup {
    explicit cleanup(impl& i) : m(i) {}
    cleanup(const cleanup&) = delete;
    cleanup& operator=(const cleanup&) = delete;
    impl& m;
    bool own = false, declared = false, armed = true;
    std::string cursor;
    ~cleanup() {
      if (!armed) return;
      try {
        if (own) {
          if (m.session_ok() && m.tx_open && !m.tx_lost) m.do_rollback("ROLLBACK");
          m.forget_transaction();
        } else if (declared && m.session_ok() && !m.transaction_failed()) {
          m.exec_simple("close a cursor", "CLOSE " + cursor, trip{.cleanup = true});
        }
      } catch (const std::exception&) {
        // the session is gone or the transaction failed: the cursor went with it
      }
    }
  } guard(*m);

  long long delivered = 0;
  try {
    m->ensure_usable(what, sql);
    guard.own = !m->tx_open;
    if (guard.own)
      m->do_begin("BEGIN");
    else
      m->apply_settings();
    guard.cursor = "\"rb_stream_" + std::to_string(++m->cursor_seq) + "\"";
    m->exec_bound(what, "DECLARE " + guard.cursor + " NO SCROLL CURSOR FOR " + strip_trailing_semicolons(sql), params,
                  false);
    guard.declared = true;

    const std::string fetch = "FETCH FORWARD " + std::to_string(batch) + " FROM " + guard.cursor;
    std::vector<column> columns;
    std::vector<field> row;
    for (bool more = true; more;) {
      pqxx::result r = m->exec_simple(what, fetch);
      if (columns.empty()) {
        for (pqxx::row::size_type c = 0; c < r.columns(); ++c)
          columns.push_back(column{r.column_name(c), r.column_type(c)});
      }
      for (const auto& pr : r) {
        row.resize(pr.size());
        std::size_t i = 0;
        for (const auto& f : pr) {
          field& out = row[i++];
          out.null = f.is_null();
          if (out.null)
            out.text.clear();
          else
            out.text.assign(f.c_str(), f.size());
        }
        ++delivered;
        if (!fn(columns, row)) {
          more = false;
          break;
        }
      }
      if (r.size() < batch) more = false;
    }
    m->exec_simple("close a cursor", "CLOSE " + guard.cursor);
    guard.declared = false;
    if (guard.own) {
      guard.armed = false;
      m->do_commit("COMMIT");
    }
    guard.armed = false;
    rec.ok(delivered);
  } catch (const std::exception& e) {
    rec.fail(e);
    throw;
  }
}

void connection::script(std::string_view sql, std::string_view source) {
  impl::record_scope rec(*m, sql, 0);
  try {
    const std::string what = source.empty() ? "run a script" : "run script " + std::string(source);
    m->ensure_usable(what, sql);
    m->refuse_transaction_control(what, sql, true, source);
    m->apply_settings();
    const bool had_transaction = m->tx_open;
    const std::string text(sql);
    impl::script_result r;
    try {
      r = m->round_trip(what, text, trip{.user_sql = true}, [&] { return m->run_script(text, source); });
    } catch (const sql_failure& e) {
      // The script began its own transaction and failed in it: roll it back, so the session is
      // not left refusing every statement (25P02) until someone does.
      if (had_transaction || !m->tx_open || !m->tx_by_sql || !m->session_ok()) throw;
      m->do_rollback("ROLLBACK");
      throw sql_failure(e.kind(),
                        std::string(e.what()) +
                            "\nThe transaction the script had begun (its own BEGIN) was rolled back.",
                        e.sqlstate(), e.detail(), e.hint(), e.statement())
          .with_names(e.names());
    }
    rec.ok(r.rows);
  } catch (const std::exception& e) {
    rec.fail(e);
    throw;
  }
}

void connection::begin() {
  const std::string sql = "BEGIN";
  m->control(sql, [&] {
    const std::string what = "begin a transaction";
    if (m->tx_lost)
      throw m->failure(error_kind::connection, what,
                       "the previous transaction was lost with the connection; roll it back first", "08006", sql);
    if (m->tx_open)
      throw error(error_kind::usage, "unable to begin a transaction on " + m->opts.name +
                                         ": one is already open (use a savepoint to nest)");
    m->ensure_usable(what, sql);
    m->do_begin(sql);
  });
}

void connection::commit() {
  const std::string sql = "COMMIT";
  m->control(sql, [&] {
    const std::string what = "commit the transaction";
    if (m->tx_lost) {
      m->forget_transaction();
      throw m->failure(error_kind::connection, what,
                       "the connection was lost before COMMIT; the transaction was rolled back", "08006", sql);
    }
    if (!m->tx_open) throw error(error_kind::usage, "unable to commit on " + m->opts.name + ": no transaction is open");
    m->do_commit(sql);
  });
}

void connection::rollback() {
  if (!m->tx_open && !m->tx_lost) return;  // idempotent, and safe in cleanup paths
  const std::string sql = "ROLLBACK";
  m->control(sql, [&] { m->do_rollback(sql); });
}

void connection::savepoint(std::string_view name) {
  const std::string sql = "SAVEPOINT " + savepoint_identifier(name);
  m->control(sql, [&] {
    const std::string what = "create savepoint '" + std::string(name) + "'";
    if (!m->tx_open)
      throw error(error_kind::usage, "unable to " + what + " on " + m->opts.name + ": no transaction is open");
    m->ensure_usable(what, sql);
    session_settings before = m->have;
    m->exec_simple(what, sql);
    m->levels.push_back(tx_level{std::string(name), before});
  });
}

void connection::release(std::string_view name) {
  const std::string sql = "RELEASE SAVEPOINT " + savepoint_identifier(name);
  m->control(sql, [&] {
    const std::string what = "release savepoint '" + std::string(name) + "'";
    if (!m->tx_open)
      throw error(error_kind::usage, "unable to " + what + " on " + m->opts.name + ": no transaction is open");
    m->ensure_usable(what, sql);
    m->exec_simple(what, sql, trip{.cleanup = true});
    // Released with every savepoint made after it; what they SET stays, in the level around.
    for (std::size_t i = m->levels.size(); i-- > 1;) {
      if (m->levels[i].name == name) {
        m->levels.resize(i);
        break;
      }
    }
  });
}

void connection::rollback_to(std::string_view name) {
  const std::string sql = "ROLLBACK TO SAVEPOINT " + savepoint_identifier(name);
  m->control(sql, [&] {
    const std::string what = "roll back to savepoint '" + std::string(name) + "'";
    if (!m->tx_open)
      throw error(error_kind::usage, "unable to " + what + " on " + m->opts.name + ": no transaction is open");
    m->ensure_usable(what, sql);
    m->exec_simple(what, sql, trip{.cleanup = true});
    // The savepoint stays; later ones are gone, and so is any SET made since it.
    for (std::size_t i = m->levels.size(); i-- > 1;) {
      if (m->levels[i].name == name) {
        m->have = m->levels[i].saved;
        m->dirty = true;  // a RESET ALL made since was undone with the rest
        m->levels.resize(i + 1);
        return;
      }
    }
    m->have = {};  // a savepoint we did not make: we cannot tell what it undid
    m->dirty = true;
  });
}

bool connection::in_transaction() const { return m->tx_open; }

bool connection::transaction_begun_by_sql() const { return m->tx_open && m->tx_by_sql; }

bool connection::transaction_failed() const { return m->transaction_failed(); }

std::optional<tx_end> connection::ended_by_sql() const { return m->ended_by_sql; }

void connection::reset_session() { m->reset_pending = true; }

void connection::set_session_settings(std::vector<std::pair<std::string, std::string>> settings) {
  m->want_settings = std::move(settings);
  m->have.extra = false;
}

std::string_view to_string(tx_end e) {
  switch (e) {
    case tx_end::committed: return "committed";
    case tx_end::rolled_back: return "rolled_back";
    case tx_end::in_doubt: return "in_doubt";
  }
  return "in_doubt";
}

void connection::set_statement_timeout(std::chrono::milliseconds t) {
  m->want_statement_timeout = std::max<long long>(0, t.count());
}

void connection::set_lock_timeout(std::chrono::milliseconds t) {
  m->want_lock_timeout = std::max<long long>(0, t.count());
}

void connection::cancel() {
  std::lock_guard lk(m->mu);
  if (!m->busy || m->cancel_sent) return;
  m->flags.by_user = true;
  m->send_cancel_locked();
}

void connection::set_deadline(std::optional<std::chrono::steady_clock::time_point> deadline) {
  {
    std::lock_guard lk(m->mu);
    if (m->deadline == deadline) return;
    m->deadline = deadline;
    if (deadline && !m->watchdog.joinable()) m->watchdog = std::thread([self = m.get()] { self->watch(); });
  }
  m->cv.notify_all();
}

std::vector<std::string> connection::take_notices() {
  std::vector<std::string> out = std::move(m->pending_notices);
  m->pending_notices.clear();
  if (m->dropped_notices) {
    out.push_back("(" + std::to_string(m->dropped_notices) + " more notices were dropped)");
    m->dropped_notices = 0;
  }
  return out;
}

void connection::on_statement(std::function<void(const statement_record&)> fn) { m->on_stmt = std::move(fn); }

bool connection::is_open() const { return m->session_ok(); }

void connection::reconnect() {
  if (m->tx_open) m->tx_lost = true;
  m->levels.clear();
  m->have = {};
  m->dirty = m->reset_pending = false;  // a new session starts from its defaults
  m->close();
  m->open();
}

int connection::backend_pid() const { return m->pq ? m->pq->backendpid() : 0; }

const std::string& connection::name() const { return m->opts.name; }

std::string connection::redacted_dsn() const { return redact_dsn(m->opts.dsn); }

}  // namespace rb::db
