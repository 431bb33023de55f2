// Secret values known to this process, and redaction of them from any text, JSON or stream.
#pragma once

#include <functional>
#include <streambuf>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace rb::secrets {

/// Registers a value that must never be shown (a password, a token). Values shorter than
/// four characters are not registered: redacting them would garble ordinary text.
void add(const std::string& value);
/// `text` with every registered secret replaced by "***".
std::string redact(std::string text);
/// True when at least one secret is registered.
bool any();

/// Replaces every registered secret in `value`: in its strings and in its object keys, at any
/// depth. A key that becomes equal to another one gets " (2)", " (3)", ... appended.
void redact(nlohmann::json& value);
/// As redact(json&), with `redact_text` applied to each string and key instead.
void redact_with(nlohmann::json& value, const std::function<std::string(std::string)>& redact_text);

/// The last `n` bytes of `text`, redacted before it is cut, so that a secret straddling the cut
/// is replaced whole rather than left with its end readable. When the result does not begin
/// where the output began (it was cut here, or `truncated` says `text` is itself the tail of
/// a longer output), a leading fragment that could be the end of a secret is masked too.
std::string redact_tail(const std::string& text, std::size_t n, bool truncated = false);

/// A stream buffer that writes what it is given to `sink` with every registered secret
/// replaced, also a secret split across several writes: it holds back the end of its text
/// while that end could be the beginning of a secret, until more text (or close) decides.
/// The CLI puts one in front of stdout and stderr, the reporter one in front of its stream.
class redacting_buf final : public std::streambuf {
 public:
  explicit redacting_buf(std::streambuf* sink) : m_sink(sink) {}
  ~redacting_buf() override { close(); }
  redacting_buf(const redacting_buf&) = delete;
  redacting_buf& operator=(const redacting_buf&) = delete;
  /// Writes what is held back (redacted) and flushes the sink.
  void close();

 protected:
  int_type overflow(int_type ch) override;
  std::streamsize xsputn(const char* s, std::streamsize n) override;
  int sync() override;

 private:
  void drain(bool all);
  std::streambuf* m_sink;
  std::string m_held;
};

}  // namespace rb::secrets
