#include "proto/tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pgb::proto {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// ------------------------------------------------------------ certificates

struct KeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertDeleter {
  void operator()(X509* c) const { X509_free(c); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyDeleter>;
using Cert = std::unique_ptr<X509, CertDeleter>;

Key NewKey() { return Key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")); }

void AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  ASSERT_NE(ext, nullptr) << value;
  ASSERT_EQ(X509_add_ext(cert, ext, -1), 1);
  X509_EXTENSION_free(ext);
}

// issuer == nullptr: self-signed CA.
Cert NewCert(const char* common_name, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key,
             const char* san, long serial, const char* extended_key_usage = "serverAuth") {
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("pgbastion test"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name), -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  if (issuer == nullptr) {
    AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    AddExtension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    AddExtension(cert.get(), signer, NID_ext_key_usage, extended_key_usage);
    AddExtension(cert.get(), signer, NID_subject_alt_name, san);
  }
  AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash");
  EXPECT_GT(X509_sign(cert.get(), issuer_key, EVP_sha256()), 0);
  return cert;
}

void WritePem(const std::string& path, X509* cert) {
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  PEM_write_X509(f, cert);
  fclose(f);
}
void WritePem(const std::string& path, EVP_PKEY* key) {
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  fclose(f);
}

// Files made once for the whole binary:
//   ca.pem                  test CA
//   server.pem/server.key   CN=localhost, SAN DNS:localhost, IP:127.0.0.1, signed by ca
//   other_ca.pem            an unrelated CA
//   other.pem/other.key     a certificate signed by other_ca (for "any cert" with kNone)
//   rsa.key                 an RSA key (another key type than the server's)
class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/pgb_tls_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = new std::string(tmpl);
    Key ca_key = NewKey(), server_key = NewKey(), other_ca_key = NewKey(), other_key = NewKey();
    Cert ca = NewCert("pgbastion test CA", ca_key.get(), nullptr, ca_key.get(), nullptr, 1);
    Cert server = NewCert("localhost", server_key.get(), ca.get(), ca_key.get(),
                          "DNS:localhost,IP:127.0.0.1", 2);
    Cert other_ca =
        NewCert("unrelated CA", other_ca_key.get(), nullptr, other_ca_key.get(), nullptr, 3);
    Cert other = NewCert("db.example.com", other_key.get(), other_ca.get(), other_ca_key.get(),
                         "DNS:db.example.com", 4);
    WritePem(Path("ca.pem"), ca.get());
    WritePem(Path("server.pem"), server.get());
    WritePem(Path("server.key"), server_key.get());
    WritePem(Path("other_ca.pem"), other_ca.get());
    WritePem(Path("other.pem"), other.get());
    WritePem(Path("other.key"), other_key.get());
    Key agent_key = NewKey(), stranger_key = NewKey();
    Cert agent = NewCert("agent-7", agent_key.get(), ca.get(), ca_key.get(),
                         "URI:spiffe://example.org/agent", 5, "clientAuth");
    Cert stranger = NewCert("agent-7", stranger_key.get(), other_ca.get(), other_ca_key.get(),
                            "URI:spiffe://example.org/agent", 6, "clientAuth");
    WritePem(Path("agent.pem"), agent.get());
    WritePem(Path("agent.key"), agent_key.get());
    WritePem(Path("stranger.pem"), stranger.get());
    WritePem(Path("stranger.key"), stranger_key.get());
    Key rsa(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
    WritePem(Path("rsa.key"), rsa.get());
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }
  static std::string Path(const char* name) { return *dir_ + "/" + name; }

  static std::shared_ptr<const TlsContext> ServerContext(const char* cert = "server.pem",
                                                         const char* key = "server.key") {
    auto ctx = TlsContext::ForServer(Path(cert), Path(key));
    EXPECT_TRUE(ctx.ok()) << ctx.status();
    return ctx.ok() ? *ctx : nullptr;
  }
  static std::shared_ptr<const TlsContext> ClientContext(TlsVerify verify,
                                                         const char* ca = "ca.pem") {
    auto ctx = TlsContext::ForClient(verify, ca[0] ? Path(ca) : "");
    EXPECT_TRUE(ctx.ok()) << ctx.status();
    return ctx.ok() ? *ctx : nullptr;
  }

  static std::string* dir_;
};
std::string* TlsTest::dir_ = nullptr;

// ------------------------------------------------------------------ pumping

// Moves pending ciphertext from one stream to the other, at most `chunk`
// bytes per push. Returns false if nothing moved.
bool Move(TlsStream& from, TlsStream& to, size_t chunk) {
  bool moved = false;
  while (from.HasPendingCiphertext()) {
    std::string_view pending = from.PendingCiphertext();
    const size_t taken = to.PushCiphertext(pending.substr(0, chunk));
    if (taken == 0) break;  // peer's input is full: the caller must read first
    from.ConsumeCiphertext(taken);
    moved = true;
  }
  return moved;
}

// Runs both handshakes to completion (or the first error), moving `chunk`
// bytes at a time and calling Handshake after every push.
absl::Status Handshake(TlsStream& client, TlsStream& server, size_t chunk) {
  for (int round = 0; round < 100000; ++round) {
    if (!client.handshake_done()) {
      auto p = client.Handshake();
      if (!p.ok()) return p.status();
    }
    if (!server.handshake_done()) {
      auto p = server.Handshake();
      if (!p.ok()) return p.status();
    }
    if (client.handshake_done() && server.handshake_done()) return absl::OkStatus();
    // Push one chunk each way, so every byte boundary gets a Handshake call.
    bool moved = false;
    for (auto [from, to] : {std::pair{&client, &server}, std::pair{&server, &client}}) {
      if (!from->HasPendingCiphertext()) continue;
      std::string_view pending = from->PendingCiphertext();
      const size_t taken = to->PushCiphertext(pending.substr(0, chunk));
      from->ConsumeCiphertext(taken);
      moved |= taken > 0;
    }
    if (!moved) return absl::InternalError("handshake stalled");
  }
  return absl::InternalError("handshake did not finish");
}

// Reads everything `to` can decrypt into out.
absl::Status Drain(TlsStream& to, std::string& out) {
  char buf[64 * 1024];
  for (;;) {
    auto n = to.ReadPlaintext(buf, sizeof(buf));
    if (!n.ok()) return n.status();
    if (*n == 0) return absl::OkStatus();
    out.append(buf, *n);
  }
}

// Moves all pending ciphertext from `from` to `to`, reading as it goes.
absl::Status Deliver(TlsStream& from, TlsStream& to, std::string& received) {
  std::string wire;
  from.TakeCiphertext(wire);
  std::string_view rest = wire;
  while (!rest.empty()) {
    rest.remove_prefix(to.PushCiphertext(rest));
    if (absl::Status s = Drain(to, received); !s.ok()) return s;
  }
  return Drain(to, received);
}

struct Pair {
  std::unique_ptr<TlsStream> client, server;
};

Pair Connect(const TlsContext& client_ctx, const TlsContext& server_ctx,
             const std::string& name = "localhost") {
  Pair p;
  auto c = TlsStream::Client(client_ctx, name);
  auto s = TlsStream::Server(server_ctx);
  EXPECT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(s.ok()) << s.status();
  if (c.ok()) p.client = std::move(*c);
  if (s.ok()) p.server = std::move(*s);
  return p;
}

std::string RandomBytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& ch : s) ch = static_cast<char>(rng());
  return s;
}

// -------------------------------------------------------------------- tests

TEST_F(TlsTest, HandshakeInLargeChunks) {
  auto server_ctx = ServerContext();
  auto client_ctx = ClientContext(TlsVerify::kChainAndHost);
  Pair p = Connect(*client_ctx, *server_ctx);
  ASSERT_TRUE(Handshake(*p.client, *p.server, 64 * 1024).ok());
  EXPECT_EQ(p.client->ProtocolVersion(), "TLSv1.3");
  EXPECT_TRUE(p.client->NegotiatedPostgresqlAlpn());
  EXPECT_TRUE(p.server->NegotiatedPostgresqlAlpn());
  EXPECT_EQ(p.client->PeerCertificateSubject(), "CN=localhost,O=pgbastion test");
  EXPECT_THAT(p.client->PeerCertificateAltNames(), ElementsAre("DNS:localhost", "IP:127.0.0.1"));
  EXPECT_EQ(p.server->PeerCertificateSubject(), "");  // no client certificate asked for
  // Handshake is idempotent once done.
  auto again = p.client->Handshake();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, TlsStream::Progress::kDone);
}

TEST_F(TlsTest, HandshakeOneByteAtATime) {
  auto server_ctx = ServerContext();
  auto client_ctx = ClientContext(TlsVerify::kChainAndHost);
  Pair p = Connect(*client_ctx, *server_ctx);
  ASSERT_TRUE(Handshake(*p.client, *p.server, 1).ok());
  std::string got;
  ASSERT_TRUE(p.client->WritePlaintext("hello").ok());
  ASSERT_TRUE(Deliver(*p.client, *p.server, got).ok());
  EXPECT_EQ(got, "hello");
}

TEST_F(TlsTest, HandshakeAtEverySplitOfTheServerFlight) {
  auto server_ctx = ServerContext();
  auto client_ctx = ClientContext(TlsVerify::kChainAndHost);
  // Learn the size of the server's first flight, then split it at every offset.
  Pair probe = Connect(*client_ctx, *server_ctx);
  ASSERT_TRUE(probe.client->Handshake().ok());
  ASSERT_TRUE(Move(*probe.client, *probe.server, SIZE_MAX));
  ASSERT_TRUE(probe.server->Handshake().ok());
  const size_t flight = probe.server->PendingCiphertext().size();
  ASSERT_GT(flight, 100u);
  for (size_t split = 1; split < flight; split += 7) {
    Pair p = Connect(*client_ctx, *server_ctx);
    ASSERT_TRUE(p.client->Handshake().ok());
    ASSERT_TRUE(Move(*p.client, *p.server, SIZE_MAX));
    ASSERT_TRUE(p.server->Handshake().ok());
    std::string wire;
    p.server->TakeCiphertext(wire);
    ASSERT_EQ(p.client->PushCiphertext(std::string_view(wire).substr(0, split)), split);
    auto first = p.client->Handshake();
    ASSERT_TRUE(first.ok()) << first.status() << " split " << split;
    EXPECT_EQ(*first, TlsStream::Progress::kWantMore) << split;
    ASSERT_EQ(p.client->PushCiphertext(std::string_view(wire).substr(split)), wire.size() - split);
    auto second = p.client->Handshake();
    ASSERT_TRUE(second.ok()) << second.status() << " split " << split;
    EXPECT_EQ(*second, TlsStream::Progress::kDone) << split;
  }
}

TEST_F(TlsTest, DataBothWaysIncludingOneMebibyte) {
  auto server_ctx = ServerContext();
  auto client_ctx = ClientContext(TlsVerify::kChainAndHost);
  Pair p = Connect(*client_ctx, *server_ctx);
  ASSERT_TRUE(Handshake(*p.client, *p.server, 64 * 1024).ok());

  const std::string big = RandomBytes(1 << 20, 1);
  std::string at_server, at_client;
  // Client -> server, in writes of 10000 bytes (not a multiple of a record).
  for (size_t off = 0; off < big.size(); off += 10000) {
    ASSERT_TRUE(p.client->WritePlaintext(std::string_view(big).substr(off, 10000)).ok());
  }
  ASSERT_TRUE(Deliver(*p.client, *p.server, at_server).ok());
  EXPECT_TRUE(at_server == big);
  // Server -> client, one 1 MiB write.
  ASSERT_TRUE(p.server->WritePlaintext(big).ok());
  ASSERT_TRUE(Deliver(*p.server, *p.client, at_client).ok());
  EXPECT_TRUE(at_client == big);
  EXPECT_FALSE(p.client->HasPendingCiphertext());
  EXPECT_FALSE(p.server->HasPendingCiphertext());
}

TEST_F(TlsTest, SmallWritesCoalesceIntoOneContiguousRun) {
  auto server_ctx = ServerContext();
  auto client_ctx = ClientContext(TlsVerify::kNone, "");
  Pair p = Connect(*client_ctx, *server_ctx);
  ASSERT_TRUE(Handshake(*p.client, *p.server, 64 * 1024).ok());
  std::string expected;
  for (int i = 0; i < 100; ++i) {
    const std::string msg = "message " + std::to_string(i) + ";";
    expected += msg;
    ASSERT_TRUE(p.client->WritePlaintext(msg).ok());
  }
  // One contiguous run: a single push delivers every record.
  std::string_view run = p.client->PendingCiphertext();
  ASSERT_EQ(p.server->PushCiphertext(run), run.size());
  p.client->ConsumeCiphertext(run.size());
  EXPECT_FALSE(p.client->HasPendingCiphertext());
  std::string got;
  ASSERT_TRUE(Drain(*p.server, got).ok());
  EXPECT_EQ(got, expected);
}

TEST_F(TlsTest, ApplicationDataRightAfterFinishedIsReadable) {
  // A PostgreSQL client sends its StartupMessage right behind its Finished;
  // both arrive in one read and the server must not lose the data.
  auto server_ctx = ServerContext();
  auto client_ctx = ClientContext(TlsVerify::kChainAndHost);
  Pair p = Connect(*client_ctx, *server_ctx);
  ASSERT_TRUE(p.client->Handshake().ok());
  ASSERT_TRUE(Move(*p.client, *p.server, SIZE_MAX));
  ASSERT_TRUE(p.server->Handshake().ok());
  ASSERT_TRUE(Move(*p.server, *p.client, SIZE_MAX));
  auto done = p.client->Handshake();
  ASSERT_TRUE(done.ok());
  ASSERT_EQ(*done, TlsStream::Progress::kDone);
  ASSERT_TRUE(p.client->WritePlaintext("startup message").ok());
  ASSERT_TRUE(Move(*p.client, *p.server, SIZE_MAX));  // Finished + data in one push
  auto server_done = p.server->Handshake();
  ASSERT_TRUE(server_done.ok()) << server_done.status();
  ASSERT_EQ(*server_done, TlsStream::Progress::kDone);
  std::string got;
  ASSERT_TRUE(Drain(*p.server, got).ok());
  EXPECT_EQ(got, "startup message");
}

TEST_F(TlsTest, PushStopsAtTheCapAndResumesAfterReading) {
  auto server_ctx = ServerContext();
  auto client_ctx = ClientContext(TlsVerify::kNone, "");
  Pair p = Connect(*client_ctx, *server_ctx);
  ASSERT_TRUE(Handshake(*p.client, *p.server, 64 * 1024).ok());
  const std::string data = RandomBytes(300 * 1024, 2);
  ASSERT_TRUE(p.client->WritePlaintext(data).ok());
  std::string wire;
  p.client->TakeCiphertext(wire);
  ASSERT_GT(wire.size(), TlsStream::kMaxPendingCiphertext);
  std::string_view rest = wire;
  const size_t first = p.server->PushCiphertext(rest);
  EXPECT_EQ(first, TlsStream::kMaxPendingCiphertext);
  rest.remove_prefix(first);
  EXPECT_EQ(p.server->PushCiphertext(rest), 0u);  // full until read
  std::string got;
  ASSERT_TRUE(Drain(*p.server, got).ok());
  // After draining, a whole 64 KiB read always fits.
  EXPECT_EQ(p.server->PushCiphertext(rest.substr(0, 64 * 1024)), 64u * 1024);
  rest.remove_prefix(64 * 1024);
  ASSERT_TRUE(Drain(*p.server, got).ok());
  while (!rest.empty()) {
    rest.remove_prefix(p.server->PushCiphertext(rest));
    ASSERT_TRUE(Drain(*p.server, got).ok());
  }
  EXPECT_TRUE(got == data);
}

TEST_F(TlsTest, ReadPlaintextWithASmallBufferReturnsEverythingInPieces) {
  auto server_ctx = ServerContext();
  auto client_ctx = ClientContext(TlsVerify::kNone, "");
  Pair p = Connect(*client_ctx, *server_ctx);
  ASSERT_TRUE(Handshake(*p.client, *p.server, 64 * 1024).ok());
  const std::string data = RandomBytes(40000, 3);
  ASSERT_TRUE(p.server->WritePlaintext(data).ok());
  ASSERT_TRUE(Move(*p.server, *p.client, SIZE_MAX));
  std::string got;
  char buf[1000];
  for (;;) {
    auto n = p.client->ReadPlaintext(buf, sizeof(buf));
    ASSERT_TRUE(n.ok()) << n.status();
    if (*n == 0) break;
    EXPECT_LE(*n, sizeof(buf));
    got.append(buf, *n);
  }
  EXPECT_TRUE(got == data);
}

TEST_F(TlsTest, VerifyFullAcceptsHostNameAndIpAddress) {
  auto server_ctx = ServerContext();
  auto client_ctx = ClientContext(TlsVerify::kChainAndHost);
  for (const char* name : {"localhost", "LOCALHOST", "127.0.0.1"}) {
    Pair p = Connect(*client_ctx, *server_ctx, name);
    absl::Status s = Handshake(*p.client, *p.server, 64 * 1024);
    EXPECT_TRUE(s.ok()) << name << ": " << s;
  }
}

TEST_F(TlsTest, VerifyFullRejectsWrongHostName) {
  auto server_ctx = ServerContext();
  auto client_ctx = ClientContext(TlsVerify::kChainAndHost);
  struct Case {
    const char* name;
    const char* reason;
  };
  for (Case c : {Case{"db.example.com", "hostname mismatch"},
                 Case{"localhost.evil.com", "hostname mismatch"},
                 Case{"127.0.0.2", "IP address mismatch"}, Case{"::1", "IP address mismatch"}}) {
    Pair p = Connect(*client_ctx, *server_ctx, c.name);
    absl::Status s = Handshake(*p.client, *p.server, 64 * 1024);
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << c.name << ": " << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.reason)) << c.name;
    EXPECT_THAT(std::string(s.message()), HasSubstr("certificate verify failed")) << c.name;
    // The client queued an alert for the server: it fails too, not hangs.
    ASSERT_TRUE(p.client->HasPendingCiphertext());
    Move(*p.client, *p.server, SIZE_MAX);
    EXPECT_FALSE(p.server->Handshake().ok());
    // The dead stream refuses further work.
    EXPECT_EQ(p.client->Handshake().status().code(), absl::StatusCode::kFailedPrecondition);
  }
}

TEST_F(TlsTest, VerifyCaChecksChainButNotHostName) {
  auto server_ctx = ServerContext();
  auto client_ctx = ClientContext(TlsVerify::kChain);
  Pair p = Connect(*client_ctx, *server_ctx, "db.example.com");
  EXPECT_TRUE(Handshake(*p.client, *p.server, 64 * 1024).ok());
}

TEST_F(TlsTest, VerifyCaRejectsCertificateFromAnotherCa) {
  auto server_ctx = ServerContext();
  for (TlsVerify verify : {TlsVerify::kChain, TlsVerify::kChainAndHost}) {
    auto client_ctx = ClientContext(verify, "other_ca.pem");
    Pair p = Connect(*client_ctx, *server_ctx, "localhost");
    absl::Status s = Handshake(*p.client, *p.server, 64 * 1024);
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("unable to get local issuer certificate"));
  }
}

TEST_F(TlsTest, RequireAcceptsAnyCertificate) {
  // A certificate from an unrelated CA, for another host name.
  auto server_ctx = ServerContext("other.pem", "other.key");
  auto client_ctx = ClientContext(TlsVerify::kNone, "");
  for (const char* name : {"localhost", "127.0.0.1", ""}) {
    Pair p = Connect(*client_ctx, *server_ctx, name);
    EXPECT_TRUE(Handshake(*p.client, *p.server, 64 * 1024).ok()) << name;
    EXPECT_EQ(p.client->PeerCertificateSubject(), "CN=db.example.com,O=pgbastion test");
  }
}

// Mutual TLS: a client context that presents `cert` (ForClient has no
// option for it: the gateway never presents one to PostgreSQL).
std::shared_ptr<const TlsContext> ClientWithCertificate(const std::string& ca,
                                                        const std::string& cert,
                                                        const std::string& key) {
  auto ctx = TlsContext::ForClient(TlsVerify::kChain, ca);
  EXPECT_TRUE(ctx.ok()) << ctx.status();
  if (!ctx.ok()) return nullptr;
  if (!cert.empty()) {
    EXPECT_EQ(SSL_CTX_use_certificate_file((*ctx)->ctx(), cert.c_str(), SSL_FILETYPE_PEM), 1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey_file((*ctx)->ctx(), key.c_str(), SSL_FILETYPE_PEM), 1);
  }
  return *ctx;
}

TEST_F(TlsTest, ClientCertificateIsVerifiedAndRead) {
  auto server_ctx = TlsContext::ForServer(Path("server.pem"), Path("server.key"),
                                          {.ca_file = Path("ca.pem"), .required = false});
  ASSERT_TRUE(server_ctx.ok()) << server_ctx.status();
  auto client_ctx = ClientWithCertificate(Path("ca.pem"), Path("agent.pem"), Path("agent.key"));
  Pair p = Connect(*client_ctx, **server_ctx);
  ASSERT_TRUE(Handshake(*p.client, *p.server, 64 * 1024).ok());
  EXPECT_TRUE(p.server->PeerCertificateVerified());
  EXPECT_THAT(p.server->PeerCertificateSubjectField("CN"), ElementsAre("agent-7"));
  EXPECT_THAT(p.server->PeerCertificateSubjectField("O"), ElementsAre("pgbastion test"));
  EXPECT_THAT(p.server->PeerCertificateSubjectField("OU"), ElementsAre());
  EXPECT_THAT(p.server->PeerCertificateAltNames(), ElementsAre("URI:spiffe://example.org/agent"));
  const int64_t in_a_day = static_cast<int64_t>(time(nullptr)) + 86400;
  EXPECT_NEAR(static_cast<double>(p.server->PeerCertificateNotAfterUnix()),
              static_cast<double>(in_a_day), 600.0);
}

TEST_F(TlsTest, ClientCertificateOptionalOrRequired) {
  for (bool required : {false, true}) {
    auto server_ctx = TlsContext::ForServer(Path("server.pem"), Path("server.key"),
                                            {.ca_file = Path("ca.pem"), .required = required});
    ASSERT_TRUE(server_ctx.ok()) << server_ctx.status();
    auto client_ctx = ClientWithCertificate(Path("ca.pem"), "", "");
    Pair p = Connect(*client_ctx, **server_ctx);
    absl::Status s = Handshake(*p.client, *p.server, 64 * 1024);
    if (required) {
      EXPECT_FALSE(s.ok());
    } else {
      ASSERT_TRUE(s.ok()) << s;
      EXPECT_FALSE(p.server->PeerCertificateVerified());
      EXPECT_EQ(p.server->PeerCertificateNotAfterUnix(), 0);
      EXPECT_THAT(p.server->PeerCertificateSubjectField("CN"), ElementsAre());
    }
  }
}

TEST_F(TlsTest, ClientCertificateFromAnotherCaFailsTheHandshake) {
  auto server_ctx = TlsContext::ForServer(Path("server.pem"), Path("server.key"),
                                          {.ca_file = Path("ca.pem"), .required = false});
  ASSERT_TRUE(server_ctx.ok()) << server_ctx.status();
  auto client_ctx =
      ClientWithCertificate(Path("ca.pem"), Path("stranger.pem"), Path("stranger.key"));
  Pair p = Connect(*client_ctx, **server_ctx);
  absl::Status s = Handshake(*p.client, *p.server, 64 * 1024);
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(p.server->PeerCertificateVerified());
}

TEST_F(TlsTest, MissingClientCaIsNamed) {
  auto server_ctx = TlsContext::ForServer(Path("server.pem"), Path("server.key"),
                                          {.ca_file = Path("no-such-ca.pem")});
  ASSERT_FALSE(server_ctx.ok());
  EXPECT_THAT(std::string(server_ctx.status().message()), HasSubstr("no-such-ca.pem"));
}

TEST_F(TlsTest, ServerWithMismatchedKeyFailsNamingTheKeyFile) {
  for (const char* key : {"other.key", "rsa.key"}) {  // same key type, other key type
    auto ctx = TlsContext::ForServer(Path("server.pem"), Path(key));
    ASSERT_FALSE(ctx.ok()) << key;
    EXPECT_EQ(ctx.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(ctx.status().message()), HasSubstr(Path(key)));
    EXPECT_THAT(std::string(ctx.status().message()),
                ::testing::AnyOf(HasSubstr("key values mismatch"), HasSubstr("does not match")));
    EXPECT_EQ(ERR_peek_error(), 0u) << "error queue left dirty";
  }
}

TEST_F(TlsTest, MissingAndUnreadableFilesAreNamed) {
  const std::string missing = Path("nope.pem");
  auto cert = TlsContext::ForServer(missing, Path("server.key"));
  EXPECT_EQ(cert.status().code(), absl::StatusCode::kNotFound) << cert.status();
  EXPECT_THAT(std::string(cert.status().message()), HasSubstr(missing));

  auto key = TlsContext::ForServer(Path("server.pem"), missing);
  EXPECT_EQ(key.status().code(), absl::StatusCode::kNotFound) << key.status();
  EXPECT_THAT(std::string(key.status().message()), HasSubstr(missing));

  auto ca = TlsContext::ForClient(TlsVerify::kChain, missing);
  EXPECT_EQ(ca.status().code(), absl::StatusCode::kNotFound) << ca.status();
  EXPECT_THAT(std::string(ca.status().message()), HasSubstr(missing));

  // A key where the certificate should be.
  auto swapped = TlsContext::ForServer(Path("server.key"), Path("server.key"));
  EXPECT_EQ(swapped.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(swapped.status().message()), HasSubstr("certificate file"));

  auto no_ca = TlsContext::ForClient(TlsVerify::kChainAndHost, "");
  EXPECT_EQ(no_ca.status().code(), absl::StatusCode::kInvalidArgument);
  auto require_bad_ca = TlsContext::ForClient(TlsVerify::kNone, missing);
  EXPECT_EQ(require_bad_ca.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(TlsTest, EncryptedKeyFailsInsteadOfPrompting) {
  Key key = NewKey();
  const std::string path = Path("encrypted.key");
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(PEM_write_PrivateKey(f, key.get(), EVP_aes_128_cbc(), nullptr, 0, nullptr,
                                 const_cast<char*>("secret")),
            1);
  fclose(f);
  auto ctx = TlsContext::ForServer(Path("server.pem"), path);
  ASSERT_FALSE(ctx.ok());
  EXPECT_THAT(std::string(ctx.status().message()), HasSubstr(path));
  EXPECT_THAT(std::string(ctx.status().message()), ::testing::Not(HasSubstr("secret")));
}

TEST_F(TlsTest, ContextsAreChecked) {
  auto server_ctx = ServerContext();
  auto client_ctx = ClientContext(TlsVerify::kChainAndHost);
  EXPECT_EQ(TlsStream::Server(*client_ctx).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TlsStream::Client(*server_ctx, "localhost").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TlsStream::Client(*client_ctx, "").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TlsTest, GarbageBeforeHandshakeIsAnError) {
  auto server_ctx = ServerContext();
  auto server = TlsStream::Server(*server_ctx);
  ASSERT_TRUE(server.ok());
  // Plaintext protocol bytes where a ClientHello should be (a client that
  // ignored the 'N' or 'S' reply).
  const std::string garbage("\0\0\0\x08\x04\xd2\x16\x2fGET / HTTP/1.1\r\n\r\n", 26);
  ASSERT_EQ((*server)->PushCiphertext(garbage), garbage.size());
  auto p = (*server)->Handshake();
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("SSL routines"));
  char buf[16];
  EXPECT_FALSE((*server)->ReadPlaintext(buf, sizeof(buf)).ok());
  EXPECT_FALSE((*server)->WritePlaintext("x").ok());
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST_F(TlsTest, GarbageAtEveryByteOfTheClientHelloNeverCrashes) {
  auto server_ctx = ServerContext();
  auto client_ctx = ClientContext(TlsVerify::kChainAndHost);
  Pair probe = Connect(*client_ctx, *server_ctx);
  ASSERT_TRUE(probe.client->Handshake().ok());
  const std::string hello(probe.client->PendingCiphertext());
  std::mt19937 rng(4);
  int failures = 0;
  for (size_t i = 0; i < hello.size(); ++i) {
    std::string bad = hello;
    bad[i] = static_cast<char>(bad[i] ^ (1 + rng() % 255));
    auto server = TlsStream::Server(*server_ctx);
    ASSERT_TRUE(server.ok());
    (*server)->PushCiphertext(bad);
    auto p = (*server)->Handshake();
    if (!p.ok()) ++failures;
  }
  EXPECT_GT(failures, 0);
}

TEST_F(TlsTest, GarbageAfterHandshakeIsAnError) {
  auto server_ctx = ServerContext();
  auto client_ctx = ClientContext(TlsVerify::kChainAndHost);
  for (std::string garbage :
       {std::string("\x17\x03\x03\x00\x20", 5) + RandomBytes(32, 5),  // forged record
        std::string("\x17\x03\x03\xff\xff", 5),                       // oversized record
        std::string("Q\0\0\0\x0dselect 1\0", 14)}) {                  // plaintext Query
    Pair p = Connect(*client_ctx, *server_ctx);
    ASSERT_TRUE(Handshake(*p.client, *p.server, 64 * 1024).ok());
    std::string ignored;
    ASSERT_TRUE(Deliver(*p.server, *p.client, ignored).ok());  // session tickets
    p.server->PushCiphertext(garbage);
    char buf[256];
    auto n = p.server->ReadPlaintext(buf, sizeof(buf));
    ASSERT_FALSE(n.ok());
    EXPECT_EQ(n.status().code(), absl::StatusCode::kUnavailable) << n.status();
    EXPECT_FALSE(p.server->eof());
    EXPECT_EQ(ERR_peek_error(), 0u);
  }
}

TEST_F(TlsTest, CloseNotifyIsEof) {
  auto server_ctx = ServerContext();
  auto client_ctx = ClientContext(TlsVerify::kChainAndHost);
  Pair p = Connect(*client_ctx, *server_ctx);
  ASSERT_TRUE(Handshake(*p.client, *p.server, 64 * 1024).ok());
  ASSERT_TRUE(p.client->WritePlaintext("Terminate").ok());
  p.client->Shutdown();
  EXPECT_FALSE(p.client->WritePlaintext("late").ok());
  ASSERT_TRUE(Move(*p.client, *p.server, SIZE_MAX));  // data and close_notify together
  char buf[256];
  auto n = p.server->ReadPlaintext(buf, sizeof(buf));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(std::string(buf, *n), "Terminate");  // data before the close comes first
  auto closed = p.server->ReadPlaintext(buf, sizeof(buf));
  EXPECT_EQ(closed.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(closed.status().message(), "connection closed by peer");
  EXPECT_TRUE(p.server->eof());
  EXPECT_FALSE(p.client->eof());
  // The server answers with its own close_notify.
  p.server->Shutdown();
  ASSERT_TRUE(Move(*p.server, *p.client, SIZE_MAX));
  std::string rest;
  absl::Status s = Drain(*p.client, rest);
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(p.client->eof());
}

TEST_F(TlsTest, StaleErrorsFromOtherConnectionsDoNotLeakIn) {
  auto server_ctx = ServerContext();
  auto client_ctx = ClientContext(TlsVerify::kChainAndHost);
  Pair p = Connect(*client_ctx, *server_ctx);
  // Another connection on this thread left an error behind.
  ERR_raise(ERR_LIB_SSL, SSL_R_BAD_LENGTH);
  ASSERT_TRUE(Handshake(*p.client, *p.server, 64 * 1024).ok());
  ERR_raise(ERR_LIB_SSL, SSL_R_BAD_LENGTH);
  ASSERT_TRUE(p.client->WritePlaintext("x").ok());
  ASSERT_TRUE(Move(*p.client, *p.server, SIZE_MAX));
  ERR_raise(ERR_LIB_SSL, SSL_R_BAD_LENGTH);
  char buf[8];
  auto n = p.server->ReadPlaintext(buf, sizeof(buf));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 1u);
}

TEST_F(TlsTest, CallsBeforeHandshakeAreRefused) {
  auto server_ctx = ServerContext();
  auto client_ctx = ClientContext(TlsVerify::kChainAndHost);
  Pair p = Connect(*client_ctx, *server_ctx);
  char buf[8];
  EXPECT_EQ(p.client->ReadPlaintext(buf, sizeof(buf)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(p.client->WritePlaintext("x").code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(TlsTest, TakeCiphertextMovesTheBufferOrAppends) {
  auto server_ctx = ServerContext();
  auto client_ctx = ClientContext(TlsVerify::kNone, "");
  Pair p = Connect(*client_ctx, *server_ctx);
  ASSERT_TRUE(Handshake(*p.client, *p.server, 64 * 1024).ok());
  ASSERT_TRUE(p.client->WritePlaintext(RandomBytes(5000, 6)).ok());
  const char* pending = p.client->PendingCiphertext().data();
  const size_t size = p.client->PendingCiphertext().size();
  std::string taken;
  p.client->TakeCiphertext(taken);
  EXPECT_EQ(taken.data(), pending);  // the same buffer: no copy
  EXPECT_EQ(taken.size(), size);
  EXPECT_FALSE(p.client->HasPendingCiphertext());

  ASSERT_TRUE(p.client->WritePlaintext("more").ok());
  p.client->ConsumeCiphertext(3);  // partly sent the other way
  const std::string rest(p.client->PendingCiphertext());
  p.client->TakeCiphertext(taken);  // non-empty destination: appended
  EXPECT_EQ(taken.size(), size + rest.size());
  EXPECT_EQ(taken.substr(size), rest);
}

}  // namespace
}  // namespace pgb::proto
