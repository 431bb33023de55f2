// The audit log: append-only JSON lines, each record chained to the previous by SHA-256.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include <nlohmann/json.hpp>

namespace rb::audit {

using json = nlohmann::json;

/// Hash of the record before the first one.
inline constexpr std::string_view k_genesis =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// One append-only, hash-chained audit log file. Several processes may append to the same
/// file at once: each append takes an exclusive flock, reads the last record's hash, writes
/// one line and fsyncs it before returning. Every record carries `seq`, `ts`, `run`, `event`,
/// `prev` (the previous record's hash), `alg` and `hash` (SHA-256, or HMAC-SHA256 under a
/// key, over the record's canonical JSON without `hash`).
class log {
 public:
  /// Opens (creating it and its directory if needed) the log at `file`. With a key, records
  /// are keyed with HMAC-SHA256.
  explicit log(std::filesystem::path file, std::optional<std::string> key = std::nullopt);
  ~log();
  log(const log&) = delete;
  log& operator=(const log&) = delete;

  /// Appends one record and returns it as written. Fields in `fields` may not use the names
  /// the log sets itself. Secret values registered with add_secret are replaced by "***".
  ///
  /// With `sync` (state changes: the journal), the record is fsynced before append returns.
  /// Without it (statement and log records), it is written at once but made durable with the
  /// next synced record: a process crash loses nothing, a power loss at most those records.
  json append(std::string_view run, std::string_view event, json fields = json::object(), bool sync = true);

  /// A record to append: its run, event and fields.
  struct entry {
    std::string run, event;
    json fields = json::object();
  };
  /// Decides whether to append, under the journal's exclusive lock. `offset` is the caller's
  /// read position in the file (a byte offset, 0 at first): under the lock, every complete
  /// record after it (appended by any process) is handed to `decide`, which returns the record
  /// to append, or nullopt to append nothing. On return `offset` is past everything read, and
  /// past the appended record, which is returned (the caller applies `since`, then it). So
  /// "open an incident unless one is open for this key" and "escalate to level N if it is still
  /// at N-1" hold across processes. `decide` must not append to this log.
  using decide_fn = std::function<std::optional<entry>(const std::vector<json>& since)>;
  std::optional<json> append_if(std::uint64_t& offset, const decide_fn& decide, bool sync = true);

  /// Registers a value that must never appear in the log (a password, a token).
  void add_secret(std::string value);
  /// Replaces every secret (registered here or with rb::secrets) in the strings of `value`
  /// and in its object keys.
  void redact(json& value) const;

  const std::filesystem::path& path() const { return m_path; }

 private:
  /// Checks the fields a caller may set and redacts them.
  void prepare(json& fields) const;
  /// Appends with the lock already held.
  json append_locked(std::string_view run, std::string_view event, json fields, bool sync);
  /// Throws when this log's keying (a key or none) differs from the file's last record.
  void refuse_mixed_keying(const std::string& tail_alg) const;

  std::filesystem::path m_path;
  std::optional<std::string> m_key;
  std::vector<std::string> m_secrets;
  int m_fd = -1;
  // The tail as this process last wrote it: valid while the file has not grown since.
  off_t m_known_size = -1;
  std::uint64_t m_known_seq = 0;
  std::string m_known_hash;
};

/// The outcome of checking a log file's chain.
struct verify_result {
  bool ok = true;
  std::uint64_t records = 0;        ///< records read that passed
  std::uint64_t bad_line = 0;       ///< 1-based line of the first broken record, 0 if none
  std::string problem;              ///< what is wrong there, in words
  std::string last_hash{k_genesis};  ///< hash of the last record that passed
};

/// A record's place in the chain, kept outside the log (`runbook audit head`) so that a log
/// cut short or rewritten together with its `.head` file can still be caught.
struct anchor {
  std::uint64_t seq = 0;
  std::string hash;
};

/// Reads "SEQ:HASH" (as `runbook audit head` prints it). Throws rb::error(usage) otherwise.
anchor parse_anchor(std::string_view text);

/// Checks every record: it parses, `seq` follows on, `prev` is the previous record's hash, and
/// its own hash is right. With a key, every record must be keyed (`hmac-sha256`) and its HMAC
/// right: an unkeyed record is rejected, since anyone can compute a plain SHA-256. Also checks
/// the `.head` file written beside the log (the log holds the record it names, with its hash),
/// and, when given, an `expected` anchor (the log holds that record, with that hash).
verify_result verify(const std::filesystem::path& file, const std::optional<std::string>& key,
                     const std::optional<anchor>& expected = std::nullopt);

/// The complete records after byte `offset` of `file` (a torn last line is left for later);
/// moves `offset` past them. Lines that do not parse are skipped.
std::vector<json> read_since(const std::filesystem::path& file, std::uint64_t& offset);

/// Calls fn for every record, in order. Lines that do not parse are skipped.
void for_each_record(const std::filesystem::path& file, const std::function<void(const json&)>& fn);

/// The HMAC key named by RUNBOOK_AUDIT_KEY (a file's path), if set. Throws rb::error(audit)
/// when it is set but cannot be read or is empty.
std::optional<std::string> key_from_env();

/// The canonical text a record's hash is computed over (the record without `hash`).
std::string canonical(const json& record_without_hash);

}  // namespace rb::audit
