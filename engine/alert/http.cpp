// The libcurl wrapper of the alert channels (see http.hpp).
#include "engine/alert/http.hpp"

#include <curl/curl.h>

#include <cctype>
#include <ctime>
#include <mutex>

#include "engine/util/text.hpp"

namespace rb::alert {
namespace {

constexpr std::size_t k_max_body = 64 * 1024;

std::size_t collect_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* out = static_cast<std::string*>(user);
  std::size_t len = size * n;
  if (out->size() < k_max_body) out->append(data, std::min(len, k_max_body - out->size()));
  return len;
}

struct header_state {
  std::optional<milliseconds> retry_after;
};

std::size_t collect_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto* st = static_cast<header_state*>(user);
  std::size_t len = size * n;
  std::string line(data, len);
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name == "retry-after") st->retry_after = parse_retry_after(std::string(trim(line.substr(colon + 1))));
  }
  return len;
}

}  // namespace

void interrupt::trigger() {
  std::lock_guard lock(m_mutex);
  m_set = true;
  if (m_multi) curl_multi_wakeup(static_cast<CURLM*>(m_multi));
  m_cv.notify_all();
}

bool interrupt::wait_until(const clock& clk, std::chrono::steady_clock::time_point until) {
  std::unique_lock lock(m_mutex);
  // The wait ends when the injected clock reaches `until` (a fake clock moved on by a test), or
  // when as much real time has passed (a fake clock nobody moves), or at trigger().
  auto real_until = std::chrono::steady_clock::now() + (until - clk.now());
  while (!m_set) {
    auto now = clk.now();
    auto real_now = std::chrono::steady_clock::now();
    if (now >= until || real_now >= real_until) return true;
    m_cv.wait_for(lock, std::min<std::chrono::steady_clock::duration>(
                            std::min(until - now, real_until - real_now), std::chrono::milliseconds(100)));
  }
  return false;
}

bool interrupt::attach(void* multi) {
  std::lock_guard lock(m_mutex);
  if (m_set) return false;
  m_multi = multi;
  return true;
}

void interrupt::detach() {
  std::lock_guard lock(m_mutex);
  m_multi = nullptr;
}

void http_global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

int perform(void* easy_handle, interrupt& stop, std::string& error) {
  http_global_init();
  CURL* easy = static_cast<CURL*>(easy_handle);
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  CURLM* multi = curl_multi_init();
  curl_multi_add_handle(multi, easy);
  CURLcode result = CURLE_OK;
  bool done = false;
  if (!stop.attach(multi)) {
    result = CURLE_ABORTED_BY_CALLBACK;
    done = true;
  }
  while (!done) {
    int running = 0;
    if (curl_multi_perform(multi, &running) != CURLM_OK) {
      result = CURLE_FAILED_INIT;
      break;
    }
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
      if (msg->msg == CURLMSG_DONE) {
        result = msg->data.result;
        done = true;
      }
    }
    if (done || running == 0) break;
    if (stop.triggered()) {
      result = CURLE_ABORTED_BY_CALLBACK;
      break;
    }
    curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
    if (stop.triggered()) {
      result = CURLE_ABORTED_BY_CALLBACK;
      break;
    }
  }
  stop.detach();
  curl_multi_remove_handle(multi, easy);
  curl_multi_cleanup(multi);
  if (result == CURLE_ABORTED_BY_CALLBACK) error = "abandoned: the wait for deliveries ended";
  else if (result != CURLE_OK) error = errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(result));
  return static_cast<int>(result);
}

http_response http_post(const http_request& req, interrupt& stop) {
  http_global_init();
  http_response out;
  CURL* easy = curl_easy_init();
  if (!easy) {
    out.error = "unable to start libcurl";
    return out;
  }
  curl_slist* headers = nullptr;
  bool has_type = false;
  for (const auto& h : req.headers) {
    headers = curl_slist_append(headers, h.c_str());
    if (h.size() > 13 && (h.compare(0, 13, "Content-Type:") == 0 || h.compare(0, 13, "content-type:") == 0)) has_type = true;
  }
  if (!has_type) headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
  header_state hs;
  curl_easy_setopt(easy, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(easy, CURLOPT_POST, 1L);
  curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req.body.data());
  curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(easy, CURLOPT_USERAGENT, "runbook/" RUNBOOK_VERSION);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout.count()));
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(req.connect_timeout.count()));
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, collect_body);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &out.body);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, collect_header);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &hs);
  std::string error;
  if (perform(easy, stop, error) == CURLE_OK) {
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &out.status);
    out.retry_after = hs.retry_after;
  } else {
    out.error = error;
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(easy);
  return out;
}

std::optional<std::string> check_url(const std::string& url, const std::vector<std::string>& schemes) {
  CURLU* u = curl_url();
  CURLUcode rc = curl_url_set(u, CURLUPART_URL, url.c_str(), 0);
  std::optional<std::string> why;
  if (rc != CURLUE_OK) {
    why = std::string("not a URL (") + curl_url_strerror(rc) + ")";
  } else {
    char* scheme = nullptr;
    char* host = nullptr;
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    bool ok = false;
    for (const auto& s : schemes) ok = ok || (scheme && s == scheme);
    if (!ok) why = "the scheme must be " + join(schemes, " or ") + ", not '" + (scheme ? scheme : "") + "'";
    else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host) why = "the URL has no host";
    curl_free(scheme);
    curl_free(host);
  }
  curl_url_cleanup(u);
  return why;
}

std::optional<milliseconds> parse_retry_after(const std::string& value) {
  if (value.empty()) return std::nullopt;
  bool digits = true;
  for (char c : value) digits = digits && std::isdigit(static_cast<unsigned char>(c));
  if (digits) {
    if (value.size() > 9) return milliseconds(999'999'000);
    return milliseconds(std::stoll(value) * 1000);
  }
  time_t when = curl_getdate(value.c_str(), nullptr);
  if (when < 0) return std::nullopt;
  time_t now = std::time(nullptr);
  return milliseconds(when > now ? static_cast<long long>(when - now) * 1000 : 0);
}

}  // namespace rb::alert
