#include "core/audit/http_sink.h"

#include <curl/curl.h>

#include <charconv>
#include <cstring>

#include "base/file_read.h"
#include "base/http_client.h"

namespace pgb::audit {
namespace {

uint64_t LineSeq(std::string_view line) {
  constexpr std::string_view kKey = "\"seq\":";
  const size_t at = line.find(kKey);
  if (at == std::string_view::npos) return 0;
  uint64_t seq = 0;
  std::from_chars(line.data() + at + kKey.size(), line.data() + line.size(), seq);
  return seq;
}

// The first 64 hex digits after "prev": the hash of the line before `line`.
std::string_view LinePrev(std::string_view line) {
  constexpr std::string_view kKey = "\"prev\":\"";
  const size_t at = line.rfind(kKey);
  if (at == std::string_view::npos) return "";
  return line.substr(at + kKey.size(), 64);
}

size_t DiscardBody(char*, size_t size, size_t count, void*) { return size * count; }

}  // namespace

absl::StatusOr<std::unique_ptr<HttpSink>> HttpSink::Create(std::string name,
                                                           HttpSinkConfig config) {
  std::unique_ptr<HttpSink> sink(new HttpSink(std::move(name), std::move(config)));
  if (!sink->config_.bearer_token_file.empty()) {
    absl::StatusOr<std::string> token = ReadSecretFile(sink->config_.bearer_token_file);
    if (!token.ok()) return token.status();
    sink->authorization_ = "Authorization: Bearer " + *token;
  }
  sink->curl_ = NewCurlHandle();
  if (sink->curl_ == nullptr) return absl::InternalError("curl_easy_init failed");
  return sink;
}

HttpSink::~HttpSink() {
  if (curl_ != nullptr) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

absl::Status HttpSink::Post(const std::string& body, const std::string& idempotency_key) {
  CURL* curl = static_cast<CURL*>(curl_);
  curl_easy_reset(curl);
  if (absl::Status status = ConfigureCurl(curl, config_.tls_ca, config_.timeout); !status.ok()) {
    return status;
  }
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  headers = curl_slist_append(headers, ("Idempotency-Key: " + idempotency_key).c_str());
  if (!authorization_.empty()) headers = curl_slist_append(headers, authorization_.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, config_.url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, DiscardBody);
  const CURLcode code = curl_easy_perform(curl);
  long http_status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http_status);
  curl_slist_free_all(headers);
  if (code != CURLE_OK) {
    return absl::UnavailableError(std::string("POST ") + config_.url + ": " +
                                  curl_easy_strerror(code));
  }
  if (http_status < 200 || http_status > 299) {
    return absl::UnavailableError("POST " + config_.url + ": HTTP " + std::to_string(http_status));
  }
  return absl::OkStatus();
}

absl::Status HttpSink::Deliver(std::string_view lines) {
  std::string body;
  size_t count = 0;
  uint64_t first_seq = 0, last_seq = 0;
  std::string_view first_prev;
  const auto flush = [&]() -> absl::Status {
    if (count == 0) return absl::OkStatus();
    body.push_back(']');
    const std::string key = std::to_string(first_seq) + "-" + std::to_string(last_seq) + "-" +
                            std::string(first_prev.substr(0, 16));
    if (absl::Status status = Post(body, key); !status.ok()) {
      unanswered_ = {first_seq, last_seq};
      return status;
    }
    unanswered_ = {0, 0};
    delivered_seq_ = std::max(delivered_seq_, last_seq);
    body.clear();
    count = 0;
    return absl::OkStatus();
  };
  while (!lines.empty()) {
    const size_t end = lines.find('\n');
    const std::string_view line = lines.substr(0, end);
    lines.remove_prefix(end == std::string_view::npos ? lines.size() : end + 1);
    const uint64_t seq = LineSeq(line);
    if (seq != 0 && seq <= delivered_seq_) continue;  // taken by an earlier attempt
    if (count == 0) {
      first_seq = seq;
      first_prev = LinePrev(line);
    }
    body.push_back(count == 0 ? '[' : ',');
    body.append(line);
    last_seq = seq;
    // A retry of a request that got no answer carries the same records, so
    // that its Idempotency-Key means the same batch.
    const bool retry_complete = first_seq == unanswered_.first && seq == unanswered_.second;
    if (++count >= config_.max_batch || retry_complete) {
      if (absl::Status status = flush(); !status.ok()) return status;
    }
  }
  return flush();
}

}  // namespace pgb::audit
