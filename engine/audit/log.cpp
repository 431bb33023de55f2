// The audit log: append-only JSON lines, hash-chained, fsynced, shared between processes.
#include "engine/audit/log.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "engine/error.hpp"
#include "engine/util/clock.hpp"
#include "engine/util/hash.hpp"
#include "engine/util/secrets.hpp"
#include "engine/util/text.hpp"

namespace rb::audit {
namespace {

constexpr const char* k_reserved[] = {"seq", "ts", "run", "event", "prev", "hash", "alg"};

std::string sys_error(const std::string& what, const std::filesystem::path& p) {
  return "unable to " + what + " audit log '" + p.string() + "': " + std::strerror(errno);
}

/// Holds an exclusive flock for its lifetime.
class file_lock {
 public:
  file_lock(int fd, const std::filesystem::path& p) : m_fd(fd) {
    while (::flock(m_fd, LOCK_EX) != 0) {
      if (errno != EINTR) throw error(error_kind::audit, sys_error("lock", p));
    }
  }
  ~file_lock() { ::flock(m_fd, LOCK_UN); }
  file_lock(const file_lock&) = delete;
  file_lock& operator=(const file_lock&) = delete;

 private:
  int m_fd;
};

void write_all(int fd, std::string_view data, const std::filesystem::path& p) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw error(error_kind::audit, sys_error("write", p));
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

struct tail_info {
  std::uint64_t seq = 0;
  std::string hash{k_genesis};
  std::string alg;       ///< the last record's; empty for an empty log
  off_t torn_from = -1;  ///< offset of an unterminated last line, if any
};

/// Finds the last complete record by reading backwards from the end of the file.
tail_info read_tail(int fd, const std::filesystem::path& p) {
  tail_info t;
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw error(error_kind::audit, sys_error("stat", p));
  off_t size = st.st_size;
  if (size == 0) return t;
  std::string buf;
  off_t pos = size;
  constexpr off_t chunk = 1 << 16;
  // Collect bytes from the end until we hold two newlines (or the file start).
  for (;;) {
    off_t start = pos > chunk ? pos - chunk : 0;
    std::string part(static_cast<std::size_t>(pos - start), '\0');
    ssize_t n = ::pread(fd, part.data(), part.size(), start);
    if (n < 0) throw error(error_kind::audit, sys_error("read", p));
    buf.insert(0, part.data(), static_cast<std::size_t>(n));
    pos = start;
    // Two newlines frame the last complete record (whether or not a torn line follows it).
    std::size_t newlines = 0;
    for (char c : buf) newlines += c == '\n';
    if (pos == 0 || newlines >= 2) break;
  }
  std::string_view view(buf);
  if (view.back() != '\n') {
    std::size_t nl = view.rfind('\n');
    std::size_t torn_start = nl == std::string_view::npos ? 0 : nl + 1;
    t.torn_from = pos + static_cast<off_t>(torn_start);
    view = view.substr(0, torn_start);
  }
  if (view.empty()) return t;
  view.remove_suffix(1);  // the final '\n'
  std::size_t nl = view.rfind('\n');
  std::string_view last = nl == std::string_view::npos ? view : view.substr(nl + 1);
  json rec = json::parse(last, nullptr, false);
  if (rec.is_discarded() || !rec.contains("seq") || !rec.contains("hash"))
    throw error(error_kind::audit, "the last record of audit log '" + p.string() +
                                       "' is corrupt; run 'runbook audit verify' to find where");
  t.seq = rec["seq"].get<std::uint64_t>();
  t.hash = rec["hash"].get<std::string>();
  t.alg = rec.value("alg", "sha256");
  return t;
}

std::filesystem::path head_path(const std::filesystem::path& p) {
  return std::filesystem::path(p.string() + ".head");
}

std::string redact_string(std::string s, const std::vector<std::string>& secrets) {
  for (const auto& secret : secrets) {
    if (secret.empty()) continue;
    std::size_t at = 0;
    while ((at = s.find(secret, at)) != std::string::npos) {
      s.replace(at, secret.size(), "***");
      at += 3;
    }
  }
  return secrets::redact(std::move(s));
}

std::string compute_hash(const json& rec, const std::optional<std::string>& key) {
  std::string text = canonical(rec);
  return key ? hmac_sha256_hex(*key, text) : sha256_hex(text);
}

/// The complete records of `fd` after byte `offset`; moves `offset` past the last newline read.
std::vector<json> read_records(int fd, const std::filesystem::path& p, std::uint64_t& offset) {
  std::vector<json> out;
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw error(error_kind::audit, sys_error("stat", p));
  auto size = static_cast<std::uint64_t>(st.st_size);
  if (offset > size) offset = 0;  // the file was replaced: read it again from the start
  if (offset == size) return out;
  std::string buf(static_cast<std::size_t>(size - offset), '\0');
  std::size_t got = 0;
  while (got < buf.size()) {
    ssize_t n = ::pread(fd, buf.data() + got, buf.size() - got, static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw error(error_kind::audit, sys_error("read", p));
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  buf.resize(got);
  std::size_t end = buf.rfind('\n');
  if (end == std::string::npos) return out;  // only a line still being written (or torn)
  std::string_view view(buf.data(), end + 1);
  std::size_t pos = 0;
  while (pos < view.size()) {
    std::size_t nl = view.find('\n', pos);
    std::string_view line = view.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) continue;
    json rec = json::parse(line, nullptr, false);
    if (!rec.is_discarded() && rec.is_object()) out.push_back(std::move(rec));
  }
  offset += end + 1;
  return out;
}

}  // namespace

std::string canonical(const json& record_without_hash) {
  // nlohmann's object keys are sorted; dump() without indent is compact and deterministic.
  return record_without_hash.dump(-1, ' ', false, json::error_handler_t::replace);
}

log::log(std::filesystem::path file, std::optional<std::string> key)
    : m_path(std::move(file)), m_key(std::move(key)) {
  std::error_code ec;
  if (m_path.has_parent_path()) std::filesystem::create_directories(m_path.parent_path(), ec);
  m_fd = ::open(m_path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (m_fd < 0) throw error(error_kind::audit, sys_error("open", m_path));
}

log::~log() {
  if (m_fd >= 0) ::close(m_fd);
}

void log::add_secret(std::string value) {
  if (value.size() >= 3) m_secrets.push_back(std::move(value));
}

void log::redact(json& value) const {
  if (m_secrets.empty() && !secrets::any()) return;
  // Keys too: audit.note("n", { [token] = 1 }) must not put the token in the file.
  secrets::redact_with(value, [this](std::string s) { return redact_string(std::move(s), m_secrets); });
}

void log::refuse_mixed_keying(const std::string& tail_alg) const {
  // Under a key, verify accepts only keyed records (an unkeyed one may be a forgery by someone
  // without the key), so one log is keyed from its first record to its last, or never.
  if (m_key && tail_alg != "hmac-sha256")
    throw error(error_kind::audit, "unable to append to audit log '" + m_path.string() +
                                       "': it was started without a key, and RUNBOOK_AUDIT_KEY is set; a log is keyed "
                                       "throughout or not at all (move it aside to start a keyed one, or unset the key)");
  if (!m_key && tail_alg == "hmac-sha256")
    throw error(error_kind::audit, "unable to append to audit log '" + m_path.string() +
                                       "': its records are keyed (HMAC); set RUNBOOK_AUDIT_KEY to the key file");
}

void log::prepare(json& fields) const {
  if (!fields.is_object()) throw error(error_kind::internal, "audit fields must be an object");
  for (const char* name : k_reserved)
    if (fields.contains(name)) throw error(error_kind::internal, std::string("audit field '") + name + "' is reserved");
  redact(fields);
}

json log::append(std::string_view run, std::string_view event, json fields, bool sync) {
  prepare(fields);
  file_lock lock(m_fd, m_path);
  return append_locked(run, event, std::move(fields), sync);
}

std::optional<json> log::append_if(std::uint64_t& offset, const decide_fn& decide, bool sync) {
  file_lock lock(m_fd, m_path);
  std::vector<json> since = read_records(m_fd, m_path, offset);
  std::optional<entry> e = decide(since);
  if (!e) return std::nullopt;
  prepare(e->fields);
  json rec = append_locked(e->run, e->event, std::move(e->fields), sync);
  offset = static_cast<std::uint64_t>(m_known_size);  // past our record: the caller applies it
  return rec;
}

json log::append_locked(std::string_view run, std::string_view event, json fields, bool sync) {
  tail_info tail;
  struct stat st {};
  if (m_known_size >= 0 && ::fstat(m_fd, &st) == 0 && st.st_size == m_known_size) {
    tail.seq = m_known_seq;  // nobody appended since our last record
    tail.hash = m_known_hash;
  } else {
    tail = read_tail(m_fd, m_path);
    if (tail.seq > 0) refuse_mixed_keying(tail.alg);
  }
  if (tail.torn_from >= 0) {
    // A crash tore the last line before it was fsynced; it was never acknowledged. Drop it.
    if (::ftruncate(m_fd, tail.torn_from) != 0) throw error(error_kind::audit, sys_error("repair", m_path));
  }
  json rec = std::move(fields);
  rec["seq"] = tail.seq + 1;
  rec["ts"] = rfc3339_now();
  rec["run"] = std::string(run);
  rec["event"] = std::string(event);
  rec["prev"] = tail.hash;
  rec["alg"] = m_key ? "hmac-sha256" : "sha256";
  rec["hash"] = compute_hash(rec, m_key);
  std::string line = rec.dump(-1, ' ', false, json::error_handler_t::replace);
  line += '\n';
  write_all(m_fd, line, m_path);
  m_known_seq = rec["seq"].get<std::uint64_t>();
  m_known_hash = rec["hash"].get<std::string>();
  m_known_size = ::lseek(m_fd, 0, SEEK_END);
  if (!sync) return rec;
  if (::fdatasync(m_fd) != 0) throw error(error_kind::audit, sys_error("fsync", m_path));
  // The head file lets verify notice records cut off the end. It is written after the log is
  // durable, so it can lag behind the log after a crash but never run ahead of it.
  std::string head = json{{"seq", rec["seq"]}, {"hash", rec["hash"]}}.dump() + "\n";
  std::string hp = head_path(m_path).string();
  std::string tmp = hp + ".tmp";
  int hfd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (hfd >= 0) {
    bool ok = ::write(hfd, head.data(), head.size()) == static_cast<ssize_t>(head.size());
    ::close(hfd);
    if (ok) ::rename(tmp.c_str(), hp.c_str());
  }
  return rec;
}

std::vector<json> read_since(const std::filesystem::path& file, std::uint64_t& offset) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return {};
    throw error(error_kind::audit, sys_error("open", file));
  }
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } close_it{fd};
  return read_records(fd, file, offset);
}

void for_each_record(const std::filesystem::path& file, const std::function<void(const json&)>& fn) {
  std::ifstream in(file);
  if (!in) return;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    json rec = json::parse(line, nullptr, false);
    if (rec.is_discarded() || !rec.is_object()) continue;
    fn(rec);
  }
}

namespace {

/// The `.head` file beside the log, if it holds a seq and a hash.
std::optional<anchor> read_head_file(const std::filesystem::path& file) {
  std::ifstream head(head_path(file));
  if (!head) return std::nullopt;
  std::string text((std::istreambuf_iterator<char>(head)), std::istreambuf_iterator<char>());
  json h = json::parse(text, nullptr, false);
  if (h.is_discarded() || !h.is_object() || !h.contains("seq") || !h["seq"].is_number_unsigned()) return std::nullopt;
  anchor a;
  a.seq = h["seq"].get<std::uint64_t>();
  if (h.contains("hash") && h["hash"].is_string()) a.hash = h["hash"].get<std::string>();
  return a;
}

bool is_hex_hash(std::string_view h) {
  return h.size() == 64 && std::all_of(h.begin(), h.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

}  // namespace

anchor parse_anchor(std::string_view text) {
  std::string_view t = trim(text);
  std::size_t colon = t.find(':');
  std::string_view seq = colon == std::string_view::npos ? std::string_view{} : t.substr(0, colon);
  std::string_view hash = colon == std::string_view::npos ? std::string_view{} : t.substr(colon + 1);
  bool digits = !seq.empty() && seq.size() < 20 &&
                std::all_of(seq.begin(), seq.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || !is_hex_hash(hash))
    throw error(error_kind::usage, "'" + std::string(t) + "' is not an audit log anchor: expected SEQ:HASH as printed by 'runbook audit head'");
  anchor a;
  a.seq = std::stoull(std::string(seq));
  a.hash = std::string(hash);
  std::transform(a.hash.begin(), a.hash.end(), a.hash.begin(), [](unsigned char c) { return std::tolower(c); });
  return a;
}

verify_result verify(const std::filesystem::path& file, const std::optional<std::string>& key,
                     const std::optional<anchor>& expected) {
  verify_result r;
  std::ifstream in(file);
  if (!in) throw error(error_kind::io, "unable to read audit log '" + file.string() + "'");
  std::optional<anchor> head = read_head_file(file);
  std::string line;
  std::uint64_t lineno = 0;
  std::uint64_t expect_seq = 1;
  std::string prev{k_genesis};
  auto fail = [&](std::string problem) {
    r.ok = false;
    r.bad_line = lineno;
    r.problem = std::move(problem);
    return r;
  };
  while (std::getline(in, line)) {
    ++lineno;
    if (in.eof() && !line.empty()) {
      // Last line without its newline: a torn write the next append will drop.
      return fail("record is incomplete (torn write)");
    }
    json rec = json::parse(line, nullptr, false);
    if (rec.is_discarded() || !rec.is_object()) return fail("not a JSON record");
    if (!rec.contains("seq") || !rec["seq"].is_number_unsigned() || !rec.contains("hash") ||
        !rec["hash"].is_string() || !rec.contains("prev") || !rec["prev"].is_string())
      return fail("record lacks seq, prev or hash");
    std::uint64_t seq = rec["seq"].get<std::uint64_t>();
    if (seq != expect_seq)
      return fail("seq " + std::to_string(seq) + " where " + std::to_string(expect_seq) +
                  " was expected: records were deleted, inserted or reordered");
    if (rec["prev"].get<std::string>() != prev)
      return fail("prev does not match the hash of the record before it: records were deleted, inserted or reordered");
    std::string stated = rec["hash"].get<std::string>();
    std::string alg = rec.value("alg", "sha256");
    json body = rec;
    body.erase("hash");
    if (alg == "hmac-sha256" && !key)
      return fail("record is keyed (HMAC); set RUNBOOK_AUDIT_KEY to the key file to verify it");
    if (alg != "hmac-sha256" && alg != "sha256") return fail("unknown hash algorithm '" + alg + "'");
    if (key && alg != "hmac-sha256")
      return fail("record is not keyed (alg " + alg + ") but RUNBOOK_AUDIT_KEY is set: under a key every record "
                  "must carry its HMAC; this one was written without the key or re-hashed by someone who lacks it");
    std::string actual = compute_hash(body, alg == "hmac-sha256" ? key : std::nullopt);
    if (actual != stated) return fail("hash does not match the record's content: the record was edited");
    if (expected && seq == expected->seq && stated != expected->hash)
      return fail("record " + std::to_string(seq) + " is not the one the anchor names (hash " + expected->hash +
                  "): the log was rewritten at or before this record");
    if (head && seq == head->seq && !head->hash.empty() && stated != head->hash)
      return fail("record " + std::to_string(seq) + " is not the one the head file " + head_path(file).string() +
                  " names: the log or its head file was rewritten");
    prev = stated;
    ++expect_seq;
    ++r.records;
  }
  r.last_hash = prev;
  lineno = r.records + 1;
  if (expected && expected->seq > r.records)
    return fail("the log ends at record " + std::to_string(r.records) + " but the anchor names record " +
                std::to_string(expected->seq) + ": records were removed from its end");
  if (expected && expected->seq == 0 && expected->hash != k_genesis)
    return fail("the anchor names record 0, which has no hash but the genesis");
  if (head && head->seq > r.records)
    return fail("the log ends at record " + std::to_string(r.records) + " but record " +
                std::to_string(head->seq) + " was written: records were removed from its end");
  return r;
}

std::optional<std::string> key_from_env() {
  const char* path = std::getenv("RUNBOOK_AUDIT_KEY");
  if (!path || !*path) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw error(error_kind::audit, std::string("unable to read the audit key file named by RUNBOOK_AUDIT_KEY: '") + path + "'");
  std::string key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string_view k = trim(key);
  if (k.empty()) throw error(error_kind::audit, std::string("the audit key file '") + path + "' is empty");
  return std::string(k);
}

}  // namespace rb::audit
