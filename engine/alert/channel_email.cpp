// The `email` channel: an RFC 5322 plain-text message sent over SMTP by libcurl (STARTTLS or SMTPS).
#include "engine/alert/channel.hpp"

#include <curl/curl.h>

#include <cstring>
#include <ctime>

#include "engine/alert/http.hpp"
#include "engine/util/hash.hpp"
#include "engine/util/json_text.hpp"
#include "engine/util/text.hpp"

namespace rb::alert {
namespace {

/// A header value on one line: CR and LF would start a header of the sender's choosing.
std::string one_line(const std::string& s) {
  std::string out;
  for (char c : s) out += (c == '\r' || c == '\n') ? ' ' : c;
  return out;
}

/// RFC 2047 encoded-word for a header holding non-ASCII text (base64, UTF-8).
std::string encode_header(const std::string& s) {
  bool ascii = true;
  for (unsigned char c : s) ascii = ascii && c < 0x80;
  if (ascii) return s;
  static const char* b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out = "=?UTF-8?B?";
  std::size_t i = 0;
  for (; i + 2 < s.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(s[i]) << 16) | (static_cast<unsigned char>(s[i + 1]) << 8) | static_cast<unsigned char>(s[i + 2]);
    out += b64[(v >> 18) & 63];
    out += b64[(v >> 12) & 63];
    out += b64[(v >> 6) & 63];
    out += b64[v & 63];
  }
  if (i + 1 == s.size()) {
    unsigned v = static_cast<unsigned char>(s[i]) << 16;
    out += b64[(v >> 18) & 63];
    out += b64[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == s.size()) {
    unsigned v = (static_cast<unsigned char>(s[i]) << 16) | (static_cast<unsigned char>(s[i + 1]) << 8);
    out += b64[(v >> 18) & 63];
    out += b64[(v >> 12) & 63];
    out += b64[(v >> 6) & 63];
    out += '=';
  }
  return out + "?=";
}

/// The address inside "Name <addr>", or the whole text.
std::string address(const std::string& s) {
  auto lt = s.find('<');
  auto gt = s.rfind('>');
  if (lt != std::string::npos && gt != std::string::npos && gt > lt) return s.substr(lt + 1, gt - lt - 1);
  return std::string(trim(s));
}

std::string rfc5322_date() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

/// Every line end as CRLF: SMTP servers reject bare LF (sendmail >= 8.18.1), and libcurl does
/// not convert it.
std::string crlf(const std::string& text) {
  std::string out;
  out.reserve(text.size() + text.size() / 40);
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\r') {
      out += "\r\n";
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else if (c == '\n') {
      out += "\r\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string email_message(const channel_config& cfg, const notification& n, const std::string& delivery) {
  std::string what = n.action == "trigger" ? "" : n.action == "acknowledge" ? " (acknowledged)" : " (resolved)";
  std::string subject = "[runbook] " + upper(n.severity) + what + ": " + n.summary;
  std::string from_addr = address(cfg.from);
  std::string domain = from_addr.find('@') != std::string::npos ? from_addr.substr(from_addr.find('@') + 1) : "runbook";
  std::string head;
  head += "Date: " + rfc5322_date() + "\n";
  head += "From: " + one_line(cfg.from) + "\n";
  head += "To: " + one_line(join(cfg.to, ", ")) + "\n";
  head += "Subject: " + encode_header(one_line(cut_utf8(subject, 200))) + "\n";
  head += "Message-ID: <" + delivery + "." + random_hex(4) + "@" + one_line(domain) + ">\n";
  head += "MIME-Version: 1.0\n";
  head += "Content-Type: text/plain; charset=utf-8\n";
  head += "Content-Transfer-Encoding: 8bit\n";
  if (!n.run_id.empty()) head += "X-Runbook-Run: " + one_line(n.run_id) + "\n";
  std::string body = n.summary + "\n\n";
  body += "Severity: " + n.severity + "\n";
  if (n.action != "trigger") body += "State: " + n.action + "\n";
  if (!n.runbook.empty()) body += "Runbook: " + n.runbook + "\n";
  if (!n.target.empty()) body += "Target: " + n.target + "\n";
  if (!n.run_id.empty()) body += "Run: " + n.run_id + "\n";
  if (auto link = run_link(cfg.run_url, n); !link.empty()) body += "Link: " + link + "\n";
  if (!n.incident.empty()) body += "Incident: " + n.incident + " (level " + std::to_string(n.level) + ")\n";
  if (n.details.is_object() && !n.details.empty()) {
    body += "\nDetails:\n";
    for (const auto& [k, v] : n.details.items()) body += "  " + k + ": " + (v.is_string() ? v.get<std::string>() : json_text(v)) + "\n";
  } else if (!n.details.is_null() && !n.details.is_object()) {
    body += "\nDetails: " + json_text(n.details) + "\n";
  }
  body += "\n-- \nsent by runbook, delivery " + delivery + "\n";
  return crlf(head + "\n" + body);
}

namespace {

struct upload {
  const std::string* text;
  std::size_t pos = 0;
};

std::size_t read_message(char* buf, std::size_t size, std::size_t n, void* user) {
  auto* u = static_cast<upload*>(user);
  std::size_t len = std::min(size * n, u->text->size() - u->pos);
  std::memcpy(buf, u->text->data() + u->pos, len);
  u->pos += len;
  return len;
}

class email_channel final : public channel {
 public:
  using channel::channel;
  attempt_result attempt(const notification& n, const std::string& delivery, interrupt& stop) override {
    http_global_init();
    attempt_result r;
    std::string message = email_message(m_cfg, n, delivery);
    CURL* easy = curl_easy_init();
    if (!easy) {
      r.reason = "unable to start libcurl";
      return r;
    }
    curl_slist* rcpt = nullptr;
    for (const auto& to : m_cfg.to) rcpt = curl_slist_append(rcpt, ("<" + address(to) + ">").c_str());
    std::string from = "<" + address(m_cfg.from) + ">";
    upload up{&message};
    curl_easy_setopt(easy, CURLOPT_URL, m_cfg.url.c_str());
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(easy, CURLOPT_USE_SSL, static_cast<long>(m_cfg.starttls ? CURLUSESSL_ALL : CURLUSESSL_NONE));
    if (!m_cfg.user.empty()) curl_easy_setopt(easy, CURLOPT_USERNAME, m_cfg.user.c_str());
    if (!m_cfg.password.empty()) curl_easy_setopt(easy, CURLOPT_PASSWORD, m_cfg.password.c_str());
    curl_easy_setopt(easy, CURLOPT_MAIL_FROM, from.c_str());
    curl_easy_setopt(easy, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(easy, CURLOPT_READFUNCTION, read_message);
    curl_easy_setopt(easy, CURLOPT_READDATA, &up);
    curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(message.size()));
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(m_cfg.timeout.count()));
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min(m_cfg.connect_timeout, m_cfg.timeout).count()));
    std::string error;
    int rc = perform(easy, stop, error);
    long code = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(easy);
    r.status = code;
    if (rc == CURLE_OK) {
      r.outcome = attempt_result::verdict::delivered;
      r.body = "SMTP " + std::to_string(code ? code : 250);
      return r;
    }
    r.reason = (code ? "SMTP " + std::to_string(code) + ": " : std::string()) + error;
    // SMTP 4xx is "try again later", 5xx is final; no reply at all is the network: retried.
    bool permanent = (code >= 500 && code < 600) || rc == CURLE_LOGIN_DENIED || rc == CURLE_USE_SSL_FAILED ||
                     rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT;
    r.outcome = permanent ? attempt_result::verdict::failed : attempt_result::verdict::retry;
    return r;
  }
};

}  // namespace

std::unique_ptr<channel> make_email_channel(const channel_config& cfg) { return std::make_unique<email_channel>(cfg); }

}  // namespace rb::alert
