// TLS over memory buffers (proto/tls.h): record throughput, full handshakes,
// and the memory an idle connected stream keeps.
//
//   build-release/bench/tls_benchmark --benchmark_filter=Throughput
#include <malloc.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "base/str_cat.h"
#include "benchmark/benchmark.h"
#include "proto/tls.h"

namespace pgb::proto {
namespace {

// Test certificates, made once per process in a temporary directory: a CA and
// a "localhost" server certificate it signed, with an EC P-256 or RSA-2048 key.
struct Certificates {
  std::string dir, ca, cert[2], key[2];  // [0] EC P-256, [1] RSA-2048
};

void AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

X509* MakeCert(const char* cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key, long serial) {
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
  X509_set_pubkey(cert, key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert;
  X509_set_issuer_name(cert, X509_get_subject_name(signer));
  AddExtension(cert, signer, NID_basic_constraints,
               issuer == nullptr ? "critical,CA:TRUE" : "critical,CA:FALSE");
  if (issuer != nullptr) AddExtension(cert, signer, NID_subject_alt_name, "DNS:localhost");
  X509_sign(cert, issuer_key, EVP_sha256());
  return cert;
}

void Write(const std::string& path, X509* cert, EVP_PKEY* key) {
  FILE* f = fopen(path.c_str(), "w");
  if (f == nullptr) abort();
  if (cert != nullptr) PEM_write_X509(f, cert);
  if (key != nullptr) PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  fclose(f);
}

const Certificates& Certs() {
  static const Certificates* certs = [] {
    auto* c = new Certificates;
    char tmpl[] = "/tmp/pgb_tls_bench_XXXXXX";
    if (mkdtemp(tmpl) == nullptr) abort();
    c->dir = tmpl;
    EVP_PKEY* ca_key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    X509* ca = MakeCert("bench CA", ca_key, nullptr, ca_key, 1);
    c->ca = c->dir + "/ca.pem";
    Write(c->ca, ca, nullptr);
    EVP_PKEY* keys[2] = {EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"),
                         EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048})};
    for (int i = 0; i < 2; ++i) {
      X509* leaf = MakeCert("localhost", keys[i], ca, ca_key, 2 + i);
      c->cert[i] = Cat(c->dir, "/server", i, ".pem");
      c->key[i] = Cat(c->dir, "/server", i, ".key");
      Write(c->cert[i], leaf, nullptr);
      Write(c->key[i], nullptr, keys[i]);
      X509_free(leaf);
      EVP_PKEY_free(keys[i]);
    }
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    std::atexit([] { std::filesystem::remove_all(Certs().dir); });
    return c;
  }();
  return *certs;
}

std::shared_ptr<const TlsContext> Server(int key_type) {
  auto ctx = TlsContext::ForServer(Certs().cert[key_type], Certs().key[key_type]);
  if (!ctx.ok()) abort();
  return *ctx;
}
std::shared_ptr<const TlsContext> Client() {
  auto ctx = TlsContext::ForClient(TlsVerify::kChainAndHost, Certs().ca);
  if (!ctx.ok()) abort();
  return *ctx;
}

// Moves everything `from` has pending into `to` (whole buffer handed over,
// as the gateway does with a send), and reads what `to` can decrypt.
size_t Transfer(TlsStream& from, TlsStream& to, std::string& wire, char* buf, size_t cap) {
  wire.clear();
  from.TakeCiphertext(wire);
  std::string_view rest = wire;
  size_t plaintext = 0;
  while (!rest.empty()) {
    rest.remove_prefix(to.PushCiphertext(rest));
    for (;;) {
      auto n = to.ReadPlaintext(buf, cap);
      if (!n.ok()) abort();
      if (*n == 0) break;
      plaintext += *n;
    }
  }
  return plaintext;
}

bool Handshake(TlsStream& client, TlsStream& server) {
  std::string wire;
  for (int i = 0; i < 10; ++i) {
    if (!client.handshake_done() && !client.Handshake().ok()) return false;
    if (!server.handshake_done() && !server.Handshake().ok()) return false;
    wire.clear();
    client.TakeCiphertext(wire);
    server.PushCiphertext(wire);
    wire.clear();
    server.TakeCiphertext(wire);
    client.PushCiphertext(wire);
    if (client.handshake_done() && server.handshake_done()) return true;
  }
  return false;
}

struct Connected {
  std::unique_ptr<TlsStream> client, server;
};
Connected Connect(const TlsContext& client_ctx, const TlsContext& server_ctx) {
  Connected c{*TlsStream::Client(client_ctx, "localhost"), *TlsStream::Server(server_ctx)};
  if (!Handshake(*c.client, *c.server)) abort();
  // Let the client take the session tickets the server sent after Finished.
  std::string wire;
  char buf[256];
  Transfer(*c.server, *c.client, wire, buf, sizeof(buf));
  return c;
}

// Client writes range(0) bytes, the server decrypts them: one direction of a
// relayed stream. Bytes/s is the per-core plaintext rate through encrypt +
// decrypt (both ends run on this core).
void BM_Throughput(benchmark::State& state) {
  auto server_ctx = Server(0);
  auto client_ctx = Client();
  Connected c = Connect(*client_ctx, *server_ctx);
  const std::string payload(static_cast<size_t>(state.range(0)), 'x');
  std::string wire;
  std::vector<char> buf(64 * 1024);
  for (auto _ : state) {
    if (!c.client->WritePlaintext(payload).ok()) abort();
    const size_t got = Transfer(*c.client, *c.server, wire, buf.data(), buf.size());
    benchmark::DoNotOptimize(got);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
  state.SetLabel(std::string(c.client->ProtocolVersion()));
}
BENCHMARK(BM_Throughput)->Arg(100)->Arg(1024)->Arg(16 * 1024)->Arg(64 * 1024);

// A full handshake (no resumption), client verify-full, both ends on this
// core. range(0): 0 = EC P-256 server key, 1 = RSA-2048.
void BM_Handshake(benchmark::State& state) {
  const int key_type = static_cast<int>(state.range(0));
  auto server_ctx = Server(key_type);
  auto client_ctx = Client();
  for (auto _ : state) {
    auto client = TlsStream::Client(*client_ctx, "localhost");
    auto server = TlsStream::Server(*server_ctx);
    if (!client.ok() || !server.ok() || !Handshake(**client, **server)) abort();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetLabel(key_type == 0 ? "EC P-256" : "RSA-2048");
}
BENCHMARK(BM_Handshake)->Arg(0)->Arg(1);

// Heap bytes per idle stream: connected, tickets read, nothing in flight.
// Counted as the heap freed when 500 server streams, then 500 client streams,
// are destroyed (glibc mallinfo2; meaningless under ASan).
void BM_IdleStreamMemory(benchmark::State& state) {
  auto server_ctx = Server(0);
  auto client_ctx = Client();
  constexpr int kPairs = 500;
  double server_bytes = 0, client_bytes = 0;
  for (auto _ : state) {
    std::vector<std::unique_ptr<TlsStream>> clients, servers;
    for (int i = 0; i < kPairs; ++i) {
      Connected c = Connect(*client_ctx, *server_ctx);
      clients.push_back(std::move(c.client));
      servers.push_back(std::move(c.server));
    }
    const size_t all = mallinfo2().uordblks;
    servers.clear();
    const size_t without_servers = mallinfo2().uordblks;
    clients.clear();
    const size_t none = mallinfo2().uordblks;
    server_bytes = static_cast<double>(all - without_servers) / kPairs;
    client_bytes = static_cast<double>(without_servers - none) / kPairs;
  }
  state.counters["server_stream_bytes"] = server_bytes;
  state.counters["client_stream_bytes"] = client_bytes;
}
BENCHMARK(BM_IdleStreamMemory)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace pgb::proto
