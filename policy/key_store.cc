#include "policy/key_store.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "base/file_read.h"
#include "base/log.h"
#include "base/str_cat.h"
#include "base/thread_name.h"
#include "policy/internal/json_object.h"

namespace pgb::policy {
namespace {

constexpr absl::Duration kMaxBackoff = absl::Minutes(5);
// The refresher wakes at least this often even with nothing due (a cheap
// guard against a lost wakeup or a clock step).
constexpr absl::Duration kMaxSleep = absl::Minutes(1);

// Errors: InvalidArgument (not a regular file, over kMaxJwksSize), or
// Unavailable (cannot open or read it: the refresher tries again).
absl::StatusOr<std::string> ReadKeySetFile(const std::string& path) {
  absl::StatusOr<FileContents> file = ReadRegularFile(path, kMaxJwksSize);
  if (!file.ok()) {
    std::string message(file.status().message());
    if (!message.starts_with("cannot ")) return file.status();
    return absl::UnavailableError(message);
  }
  return std::move(file->contents);
}

// Same kids with the same key material, in any order.
bool SameKeys(const KeySet& a, const KeySet& b) {
  if (a.keys.size() != b.keys.size()) return false;
  for (const PublicJwk& key : a.keys) {
    const PublicJwk* other = b.FindByKid(key.kid);
    if (other == nullptr || other->thumbprint != key.thumbprint || other->alg != key.alg) {
      return false;
    }
  }
  return true;
}

std::string DescribeKids(const KeySet& set) {
  std::string out;
  for (const PublicJwk& key : set.keys) {
    if (!out.empty()) out += ", ";
    out += key.kid.empty() ? std::string("(no kid)") : LogSafe(key.kid);
  }
  return out;
}

}  // namespace

absl::StatusOr<KeySet> LoadKeySetFile(const std::string& path) {
  absl::StatusOr<std::string> contents = ReadKeySetFile(path);
  if (!contents.ok()) return contents.status();
  absl::StatusOr<KeySet> keys = ParseJwks(*contents);
  if (!keys.ok()) {
    return absl::InvalidArgumentError(Cat("\"", path, "\": ", keys.status().message()));
  }
  return keys;
}

std::optional<absl::Duration> CacheControlMaxAge(std::string_view header) {
  std::optional<absl::Duration> max_age;
  while (!header.empty()) {
    const size_t comma = header.find(',');
    std::string directive = absl::AsciiStrToLower(
        std::string(absl::StripAsciiWhitespace(std::string(header.substr(0, comma)))));
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    if (directive == "no-store" || directive == "no-cache") return absl::ZeroDuration();
    if (directive.starts_with("max-age=")) {
      const std::string_view digits = std::string_view(directive).substr(8);
      if (digits.empty() || digits.size() > 9 ||
          !std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit)) {
        continue;  // a malformed max-age says nothing (RFC 9111 section 4.2.1)
      }
      max_age = absl::Seconds(std::stoll(std::string(digits)));
    }
  }
  return max_age;
}

IssuerKeys::IssuerKeys(IssuerConfig config, KeyStore* store)
    : config_(std::move(config)), store_(store), snapshot_(std::make_shared<const KeySnapshot>()) {}

void IssuerKeys::RequestRefresh() const {
  if (!refresh_requested_.exchange(true, std::memory_order_acq_rel)) store_->Wake();
}

KeyStore::KeyStore(const std::vector<IssuerConfig>& issuers, HttpGetFn http_get)
    : http_get_(std::move(http_get)) {
  issuers_.reserve(issuers.size());
  for (const IssuerConfig& config : issuers) {
    issuers_.push_back(std::make_unique<IssuerKeys>(config, this));
  }
}

KeyStore::~KeyStore() { StopRefresher(); }

const IssuerKeys* KeyStore::FindByIssuer(std::string_view iss) const {
  for (const auto& issuer : issuers_) {
    if (issuer->config().issuer == iss) return issuer.get();
  }
  return nullptr;
}

absl::StatusOr<HttpResponse> KeyStore::Get(const IssuerConfig& config, const std::string& url,
                                           size_t max_body) {
  if (!IsAllowedProviderUrl(url)) {
    return absl::InvalidArgumentError(Cat("refusing to fetch \"", LogSafe(url),
                                          "\": only https:// (or http:// on loopback) is allowed"));
  }
  HttpRequest request{url, config.ca_file, config.http_timeout, max_body};
  absl::StatusOr<HttpResponse> response = http_get_(request);
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return absl::UnavailableError(Cat("GET ", LogSafe(url), ": HTTP status ", response->status));
  }
  return response;
}

absl::StatusOr<std::pair<KeySet, absl::Duration>> KeyStore::Fetch(const IssuerConfig& config) {
  std::string document;
  absl::Duration lifetime = config.refresh_interval;
  std::string jwks_uri = config.jwks_uri;
  if (config.key_source == KeySource::kJwksFile) {
    absl::StatusOr<std::string> read = ReadKeySetFile(config.jwks_file);
    if (!read.ok()) return read.status();
    document = *std::move(read);
  } else {
    if (config.key_source == KeySource::kDiscovery) {
      std::string base = config.issuer;
      while (!base.empty() && base.back() == '/') base.pop_back();
      const std::string url = base + "/.well-known/openid-configuration";
      absl::StatusOr<HttpResponse> response = Get(config, url, kMaxJwksSize);
      if (!response.ok()) return response.status();
      simdjson::dom::parser parser;
      simdjson::dom::object root;
      std::string_view issuer, uri;
      if (parser.parse(response->body).get_object().get(root) != simdjson::SUCCESS) {
        return absl::InvalidArgumentError(
            Cat("discovery document at ", LogSafe(url), " is not a JSON object"));
      }
      if (!internal::GetString(root, "issuer", &issuer) || issuer != config.issuer) {
        // OpenID Connect Discovery 1.0 section 4.3: a mismatch means the
        // document is not this issuer's (a misconfiguration or an attack).
        return absl::InvalidArgumentError(Cat("discovery document at ", LogSafe(url),
                                              " names issuer \"", LogSafe(issuer),
                                              "\", not the configured \"", config.issuer, "\""));
      }
      if (!internal::GetString(root, "jwks_uri", &uri) || uri.empty()) {
        return absl::InvalidArgumentError(
            Cat("discovery document at ", LogSafe(url), " has no jwks_uri"));
      }
      jwks_uri = std::string(uri);
    }
    absl::StatusOr<HttpResponse> response = Get(config, jwks_uri, kMaxJwksSize);
    if (!response.ok()) return response.status();
    if (std::optional<absl::Duration> max_age = CacheControlMaxAge(response->cache_control)) {
      lifetime = *max_age;
    }
    document = std::move(response->body);
  }
  absl::StatusOr<KeySet> keys = ParseJwks(document);
  if (!keys.ok()) {
    const std::string source =
        config.key_source == KeySource::kJwksFile ? config.jwks_file : LogSafe(jwks_uri);
    return absl::InvalidArgumentError(Cat("key set from ", source, ": ", keys.status().message()));
  }
  lifetime = std::clamp(lifetime, config.refresh_min, config.refresh_max);
  return std::make_pair(*std::move(keys), lifetime);
}

absl::Status KeyStore::Refresh(size_t index, absl::Time now) {
  IssuerKeys& issuer = *issuers_[index];
  const IssuerConfig& config = issuer.config();
  issuer.refresh_requested_.store(false, std::memory_order_release);
  issuer.last_attempt_ = now;
  absl::StatusOr<std::pair<KeySet, absl::Duration>> fetched = Fetch(config);
  const std::shared_ptr<const KeySnapshot> current = issuer.Snapshot();
  auto next = std::make_shared<KeySnapshot>();
  if (fetched.ok()) {
    next->keys = std::move(fetched->first);
    const bool changed = current->generation == 0 || !SameKeys(current->keys, next->keys);
    next->generation = current->generation + (changed ? 1 : 0);
    next->loaded_at = now;
    issuer.next_refresh_ = now + fetched->second;
    issuer.consecutive_failures_ = 0;
    if (changed) {
      PGB_LOG(kInfo) << "issuer " << config.name
                     << ": verification keys loaded: " << next->keys.keys.size()
                     << " (kids: " << DescribeKids(next->keys) << "); next refresh in "
                     << absl::FormatDuration(fetched->second);
      for (const std::string& skipped : next->keys.skipped) {
        PGB_LOG(kDebug) << "issuer " << config.name << ": key ignored: " << skipped;
      }
    }
    issuer.snapshot_.store(std::move(next), std::memory_order_release);
    return absl::OkStatus();
  }
  *next = *current;
  next->last_error = std::string(fetched.status().message());
  ++issuer.consecutive_failures_;
  absl::Duration backoff = config.refresh_min;
  for (int i = 1; i < issuer.consecutive_failures_ && backoff < kMaxBackoff; ++i) backoff *= 2;
  backoff = std::min(backoff, std::max(config.refresh_min, kMaxBackoff));
  issuer.next_refresh_ = now + backoff;
  PGB_LOG(kWarning) << "issuer " << config.name
                    << ": cannot refresh verification keys: " << next->last_error
                    << (current->generation > 0
                            ? Cat("; keeping the ", current->keys.keys.size(), " keys loaded at ",
                                  absl::FormatTime(absl::RFC3339_sec, current->loaded_at,
                                                   absl::UTCTimeZone()))
                            : std::string("; no keys yet, so its tokens are refused"))
                    << "; retrying in " << absl::FormatDuration(backoff);
  issuer.snapshot_.store(std::move(next), std::memory_order_release);
  return fetched.status();
}

void KeyStore::Wake() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    woken_ = true;
  }
  wake_.notify_one();
}

void KeyStore::StartRefresher() {
  if (refresher_.joinable() || issuers_.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = false;
  }
  refresher_ = std::thread([this] {
    NameThisThread("pgb-keys");
    RefresherLoop();
  });
}

void KeyStore::StopRefresher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (refresher_.joinable()) refresher_.join();
}

void KeyStore::RefresherLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    woken_ = false;
    lock.unlock();
    absl::Time now = absl::Now();
    absl::Time wake_at = now + kMaxSleep;
    for (size_t i = 0; i < issuers_.size(); ++i) {
      IssuerKeys& issuer = *issuers_[i];
      const absl::Time earliest = issuer.last_attempt_ + issuer.config().refresh_min;
      const bool requested = issuer.refresh_requested_.load(std::memory_order_acquire);
      if (now >= issuer.next_refresh_ || (requested && now >= earliest)) {
        (void)Refresh(i, now);  // logged there; the last good keys stay
        now = absl::Now();
      }
      wake_at = std::min(wake_at, issuer.next_refresh_);
      if (issuer.refresh_requested_.load(std::memory_order_acquire)) {
        wake_at = std::min(wake_at, issuer.last_attempt_ + issuer.config().refresh_min);
      }
    }
    lock.lock();
    if (!stopping_ && !woken_ && wake_at > absl::Now()) {
      wake_.wait_until(lock, absl::ToChronoTime(wake_at));
    }
  }
}

}  // namespace pgb::policy
