#include "base/http_client.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/strings/ascii.h"
#include "base/log.h"
#include "base/str_cat.h"

namespace pgb {
namespace {

struct CurlDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};

struct Transfer {
  HttpResponse* response;
  size_t max_body;
  bool too_large = false;
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t length = size * count;
  if (transfer->response->body.size() + length > transfer->max_body) {
    transfer->too_large = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
  }
  transfer->response->body.append(data, length);
  return length;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t length = size * count;
  const std::string_view line(data, length);
  const size_t colon = line.find(':');
  if (colon != std::string_view::npos &&
      absl::AsciiStrToLower(std::string(line.substr(0, colon))) == "cache-control") {
    // A new response (after a 100 Continue) replaces; repeated headers join.
    std::string value(absl::StripAsciiWhitespace(std::string(line.substr(colon + 1))));
    std::string& out = transfer->response->cache_control;
    if (!out.empty()) out += ", ";
    out += value;
  }
  return length;
}

}  // namespace

bool IsAllowedProviderUrl(std::string_view url) {
  constexpr std::string_view kHttps = "https://";
  constexpr std::string_view kHttp = "http://";
  if (url.starts_with(kHttps)) return url.size() > kHttps.size();
  if (!url.starts_with(kHttp)) return false;
  std::string_view rest = url.substr(kHttp.size());
  const std::string_view authority = rest.substr(0, rest.find('/'));
  std::string_view host = authority;
  if (host.starts_with('[')) {
    host = host.substr(0, host.find(']') + 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  return host == "127.0.0.1" || host == "[::1]" || host == "localhost";
}

CURL* NewCurlHandle() {
  static std::once_flag global_init;
  std::call_once(global_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  return curl_easy_init();
}

absl::Status ConfigureCurl(CURL* c, const std::string& ca_file, absl::Duration timeout) {
  const long timeout_ms = static_cast<long>(absl::ToInt64Milliseconds(timeout));
  // No CURLOPT_PROXY: libcurl then takes the proxy from the standard
  // environment variables (and skips it for hosts in no_proxy).
  bool ok = curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http") == CURLE_OK &&
            curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&  // threads: no SIGALRM
            curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms) == CURLE_OK &&
            curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms) == CURLE_OK &&
            curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
            curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
            curl_easy_setopt(c, CURLOPT_USERAGENT, "pgbastion") == CURLE_OK;
  if (ok && !ca_file.empty()) ok = curl_easy_setopt(c, CURLOPT_CAINFO, ca_file.c_str()) == CURLE_OK;
  if (!ok) return absl::InternalError("cannot configure the HTTP client");
  return absl::OkStatus();
}

absl::StatusOr<HttpResponse> HttpGet(const HttpRequest& request) {
  if (!IsAllowedProviderUrl(request.url)) {
    return absl::InvalidArgumentError(Cat("refusing to fetch \"", LogSafe(request.url),
                                          "\": only https:// (or http:// on loopback) is allowed"));
  }
  std::unique_ptr<CURL, CurlDeleter> curl(NewCurlHandle());
  if (curl == nullptr) return absl::InternalError("cannot create an HTTP client handle");
  HttpResponse response;
  Transfer transfer{&response, request.max_body};
  char error[CURL_ERROR_SIZE] = {};
  CURL* c = curl.get();
  if (absl::Status status = ConfigureCurl(c, request.ca_file, request.timeout); !status.ok()) {
    return status;
  }
  const bool ok = curl_easy_setopt(c, CURLOPT_URL, request.url.c_str()) == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
                                   static_cast<curl_off_t>(request.max_body)) == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &OnBody) == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_WRITEDATA, &transfer) == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &OnHeader) == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_HEADERDATA, &transfer) == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error) == CURLE_OK;
  if (!ok) return absl::InternalError("cannot configure the HTTP client");

  const CURLcode code = curl_easy_perform(c);
  if (transfer.too_large || code == CURLE_FILESIZE_EXCEEDED) {
    return absl::InvalidArgumentError(
        Cat("GET ", LogSafe(request.url), ": response larger than ", request.max_body, " bytes"));
  }
  if (code != CURLE_OK) {
    return absl::UnavailableError(Cat("GET ", LogSafe(request.url), ": ",
                                      error[0] != '\0' ? error : curl_easy_strerror(code)));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

}  // namespace pgb
