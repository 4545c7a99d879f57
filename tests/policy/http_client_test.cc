// HttpGet against a real socket: a tiny HTTP/1.1 server on loopback in a
// thread, answering each request with a canned response. Also the whole key
// refresh (KeyStore + HttpGet) against a provider that is down or answers
// garbage.
#include "base/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "policy/token_verifier.h"

namespace pgb {
namespace {

using ::testing::HasSubstr;

class TinyHttpServer {
 public:
  explicit TinyHttpServer(std::string response) : response_(std::move(response)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        ::listen(fd_, 8) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      std::abort();
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~TinyHttpServer() {
    stopping_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }

  std::string Url(std::string_view path = "/") const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }
  int requests() const { return requests_; }

 private:
  void Run() {
    while (!stopping_) {
      const int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) return;
      std::string request;
      char buffer[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::read(client, buffer, sizeof(buffer));
        if (n <= 0) break;
        request.append(buffer, static_cast<size_t>(n));
      }
      ++requests_;
      size_t written = 0;
      while (written < response_.size()) {
        const ssize_t n = ::write(client, response_.data() + written, response_.size() - written);
        if (n <= 0) break;
        written += static_cast<size_t>(n);
      }
      ::close(client);
    }
  }

  std::string response_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

std::string Response(std::string_view status, std::string_view body,
                     std::string_view extra_headers = "") {
  return "HTTP/1.1 " + std::string(status) + "\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n" + std::string(extra_headers) + "\r\n" + std::string(body);
}

// A port nothing listens on: bound, then closed.
uint16_t ClosedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

HttpRequest Request(std::string url) {
  HttpRequest request;
  request.url = std::move(url);
  request.timeout = absl::Seconds(5);
  return request;
}

TEST(HttpGetTest, ReadsBodyStatusAndCacheControl) {
  TinyHttpServer server(
      Response("200 OK", R"({"keys":[]})", "Cache-Control: public, max-age=90\r\n"));
  absl::StatusOr<HttpResponse> response = HttpGet(Request(server.Url("/certs")));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, R"({"keys":[]})");
  EXPECT_EQ(policy::CacheControlMaxAge(response->cache_control), absl::Seconds(90));
}

TEST(HttpGetTest, ConnectionRefusedIsUnavailable) {
  absl::StatusOr<HttpResponse> response =
      HttpGet(Request("http://127.0.0.1:" + std::to_string(ClosedPort()) + "/"));
  EXPECT_TRUE(absl::IsUnavailable(response.status())) << response.status();
}

TEST(HttpGetTest, BodyOverTheCapIsRefused) {
  TinyHttpServer server(Response("200 OK", std::string(5000, 'x')));
  HttpRequest request = Request(server.Url());
  request.max_body = 4096;
  EXPECT_THAT(HttpGet(request).status().message(), HasSubstr("response larger than 4096 bytes"));
}

TEST(HttpGetTest, RedirectsAreNotFollowed) {
  TinyHttpServer server(Response("302 Found", "", "Location: http://127.0.0.1:1/evil\r\n"));
  absl::StatusOr<HttpResponse> response = HttpGet(Request(server.Url()));
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->status, 302);
}

TEST(HttpGetTest, PlainHttpOnlyToLoopback) {
  EXPECT_TRUE(absl::IsInvalidArgument(HttpGet(Request("http://example.com/jwks")).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(HttpGet(Request("ftp://127.0.0.1/jwks")).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(HttpGet(Request("http://127.0.0.1@example.com/")).status()));
}

TEST(HttpGetTest, TimeoutIsUnavailable) {
  // Accepts (the kernel's backlog) but never answers.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  HttpRequest request =
      Request("http://127.0.0.1:" + std::to_string(ntohs(address.sin_port)) + "/");
  request.timeout = absl::Milliseconds(300);
  const absl::Time start = absl::Now();
  EXPECT_TRUE(absl::IsUnavailable(HttpGet(request).status()));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  ::close(fd);
}

policy::IssuerConfig IssuerAt(const std::string& jwks_uri) {
  policy::IssuerConfig config;
  config.name = "local";
  config.issuer = "http://127.0.0.1/issuer";
  config.audiences = {"pgbastion"};
  config.key_source = policy::KeySource::kJwksUri;
  config.jwks_uri = jwks_uri;
  config.algorithms = {policy::JwsAlgorithm::kES256};
  config.http_timeout = absl::Seconds(2);
  return config;
}

// A token header naming a key, over a payload from a configured issuer: the
// verifier gets as far as the keys and must refuse there.
std::string TokenFor(std::string_view kid) {
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  return policy::EncodeBase64Url(R"({"alg":"ES256","kid":")" + std::string(kid) + "\"}") + "." +
         policy::EncodeBase64Url(R"({"iss":"http://127.0.0.1/issuer","aud":"pgbastion","sub":"a",)"
                                 R"("exp":)" +
                                 std::to_string(now + 60) + "}") +
         "." + policy::EncodeBase64Url(std::string(64, '\1'));
}

TEST(KeyRefreshOverHttpTest, ProviderDown) {
  auto store = std::make_shared<policy::KeyStore>(
      std::vector<policy::IssuerConfig>{
          IssuerAt("http://127.0.0.1:" + std::to_string(ClosedPort()) + "/certs")},
      &HttpGet);
  EXPECT_TRUE(absl::IsUnavailable(store->Refresh(0, absl::Now())));
  policy::TokenVerifier verifier(store);
  policy::TokenVerdict verdict = verifier.Verify(TokenFor("k1"), "a", absl::Now());
  ASSERT_FALSE(verdict.ok());
  EXPECT_EQ(verdict.refusal->check, policy::TokenCheck::kKeysUnavailable);
  EXPECT_EQ(verdict.refusal->sqlstate(), "28000");
  EXPECT_THAT(verdict.refusal->reason, HasSubstr("the keys of issuer local are not available yet"));
  EXPECT_THAT(verdict.refusal->reason, HasSubstr("retry shortly"));
}

TEST(KeyRefreshOverHttpTest, ProviderAnswersGarbage) {
  TinyHttpServer server(Response("200 OK", "\x89PNG\r\n garbage {{{"));
  auto store = std::make_shared<policy::KeyStore>(
      std::vector<policy::IssuerConfig>{IssuerAt(server.Url("/certs"))}, &HttpGet);
  absl::Status status = store->Refresh(0, absl::Now());
  EXPECT_THAT(status.message(), HasSubstr("key set is not valid JSON"));
  EXPECT_EQ(server.requests(), 1);
  policy::TokenVerifier verifier(store);
  policy::TokenVerdict verdict = verifier.Verify(TokenFor("k1"), "a", absl::Now());
  ASSERT_FALSE(verdict.ok());
  EXPECT_EQ(verdict.refusal->check, policy::TokenCheck::kKeysUnavailable);
  EXPECT_THAT(verdict.refusal->reason, HasSubstr("not valid JSON"));
}

TEST(KeyRefreshOverHttpTest, ProviderAnswersAnError) {
  TinyHttpServer server(Response("500 Internal Server Error", "oops"));
  auto store = std::make_shared<policy::KeyStore>(
      std::vector<policy::IssuerConfig>{IssuerAt(server.Url("/certs"))}, &HttpGet);
  EXPECT_THAT(store->Refresh(0, absl::Now()).message(), HasSubstr("HTTP status 500"));
}

}  // namespace
}  // namespace pgb
