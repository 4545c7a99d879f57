// TLS over memory buffers: OpenSSL never touches a socket.
//
// The gateway terminates TLS from clients (after PostgreSQL's SSLRequest) and
// speaks TLS to PostgreSQL (libpq's sslmode require / verify-ca / verify-full).
// All socket I/O goes through io_uring, so a TlsStream only moves bytes between
// buffers: the caller pushes ciphertext that arrived from the peer and takes the
// ciphertext that OpenSSL produced, and sends it on the ring.
//
// TlsContext wraps an SSL_CTX: built once at startup, immutable, shared by all
// shards. TlsStream is one connection; it belongs to one shard and is used by
// one thread only.
//
//   // startup
//   PGB_ASSIGN_OR_RETURN(auto server_tls, TlsContext::ForServer(cert_pem, key_pem));
//   // on a shard, after replying 'S' to an SSLRequest
//   PGB_ASSIGN_OR_RETURN(auto tls, TlsStream::Server(*server_tls));
//   // on every receive completion:
//   size_t taken = tls->PushCiphertext(received);     // keep received[taken..] for later
//   if (!tls->handshake_done()) {
//     PGB_ASSIGN_OR_RETURN(auto progress, tls->Handshake());
//   }
//   if (tls->handshake_done()) {
//     for (;;) {                                       // drain: app data may follow Finished
//       PGB_ASSIGN_OR_RETURN(size_t n, tls->ReadPlaintext(buf, sizeof(buf)));
//       if (n == 0) break;
//       decoder.Feed(std::string_view(buf, n));
//     }
//   }
//   // after any call (Handshake, ReadPlaintext, WritePlaintext, Shutdown):
//   if (tls->HasPendingCiphertext()) {
//     std::string send_buffer;                         // owned by the in-flight send
//     tls->TakeCiphertext(send_buffer);                // zero-copy: moves the buffer out
//     ring.Send(fd, std::move(send_buffer));
//   }
//
// Two rules the caller keeps (both from PostgreSQL's CVE-2021-23214/23222):
//  * Server side: bytes that arrived after the 8-byte SSLRequest in the same
//    read are the start of the ClientHello: push them here, never treat them as
//    plaintext protocol messages.
//  * Client side: PostgreSQL answers an SSLRequest with the single byte 'S';
//    any byte after it in the same read was not sent by the server in reply to
//    our ClientHello (which we have not sent yet): fail the connection.
//
// Memory per idle stream (handshake done, nothing in flight), measured with
// OpenSSL 3.0, TLS 1.3, an EC P-256 certificate (bench/tls_benchmark.cc,
// BM_IdleStreamMemory): about 14 KiB for a server stream and 19 KiB for a
// client stream (it also keeps the server's certificate chain). That is
// OpenSSL's SSL object only: the ~18 KiB record buffers are freed whenever
// they hold nothing (SSL_MODE_RELEASE_BUFFERS, plus SSL_free_buffers after
// handshake records, which that mode does not cover), and the two ciphertext
// buffers here are freed as soon as they are empty. While busy a stream holds
// at most kMaxPendingCiphertext bytes of received ciphertext, one record
// buffer each way, plus whatever ciphertext the caller has not taken yet.
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pgb::proto {

// How the gateway checks PostgreSQL's certificate; names follow libpq's sslmode.
enum class TlsVerify {
  kNone,          // sslmode=require: encrypt, accept any certificate
  kChain,         // sslmode=verify-ca: the chain must lead to the configured CA
  kChainAndHost,  // sslmode=verify-full: the chain, and the certificate names the host
};

// An immutable SSL_CTX, created once at startup and shared read-only by all
// shards (SSL_new only takes a reference on it). TLS 1.2 is the minimum; no
// compression, no renegotiation; OpenSSL's default cipher suites. Session
// tickets are on for the server; its stateful session cache is off, because it
// is a lock shared by every shard and tickets need no server state.
// Both sides use ALPN "postgresql", as PostgreSQL 17 and libpq 17 do.
// Client certificates a server context asks for (mutual TLS).
struct TlsClientCertificates {
  std::string ca_file;    // PEM CAs a client certificate must chain to; empty: none asked
  bool required = false;  // refuse the handshake without one (else: checked if presented)
};

class TlsContext {
 public:
  // A server context from PEM files. cert_file may hold the chain (leaf first).
  // Fails, naming the file, when a file is missing or unreadable, does not hold
  // what it should, is encrypted (no passphrase prompt: startup must not block
  // on a terminal), or when the key does not match the certificate. With a
  // client CA, a client certificate that does not chain to it fails the
  // handshake.
  static absl::StatusOr<std::shared_ptr<const TlsContext>> ForServer(
      const std::string& cert_file, const std::string& key_file,
      const TlsClientCertificates& clients = {});

  // A client context (gateway -> PostgreSQL). ca_file (PEM, may hold several
  // certificates) is required for kChain and kChainAndHost. With kNone it is
  // optional; if given it is loaded (so a wrong path is still reported) but not
  // used: unlike libpq, a present root file does not upgrade require to verify-ca.
  static absl::StatusOr<std::shared_ptr<const TlsContext>> ForClient(TlsVerify verify,
                                                                     const std::string& ca_file);

  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* ctx() const { return ctx_; }
  bool is_server() const { return is_server_; }
  TlsVerify verify() const { return verify_; }
  // Server contexts: the tls-server-end-point channel-binding data of our
  // certificate (RFC 5929: its hash with the signature's digest, SHA-256 for
  // MD5/SHA-1), for SCRAM-SHA-256-PLUS. Empty when it cannot be determined
  // (e.g. an Ed25519 certificate); then -PLUS is not offered.
  const std::string& server_end_point() const { return server_end_point_; }

 private:
  TlsContext(SSL_CTX* ctx, bool is_server, TlsVerify verify)
      : ctx_(ctx), is_server_(is_server), verify_(verify) {}

  SSL_CTX* ctx_;
  bool is_server_;
  TlsVerify verify_;
  std::string server_end_point_;
};

// One TLS connection over memory buffers. Not thread-safe: one shard owns it.
//
// Errors: a failed peer verification is Unauthenticated and names the X.509
// reason (for example "hostname mismatch"); other TLS failures (bad records,
// alerts, garbage) are Unavailable with OpenSSL's reason text; calls in the
// wrong state are FailedPrecondition. After an error the stream is dead: every
// later call fails. Pending ciphertext (a fatal alert) may still be sent.
// Each call first clears this thread's OpenSSL error queue, so an error left
// by another connection on the same shard cannot surface here.
class TlsStream {
 public:
  // Received ciphertext held at most: one full 64 KiB socket read on top of
  // one partial record (16 KiB plaintext + 2 KiB expansion + 5 header bytes,
  // RFC 5246 section 6.2.3), so a 64 KiB read is always taken whole once the
  // previous one has been drained with ReadPlaintext.
  static constexpr size_t kMaxPendingCiphertext = 64 * 1024 + 18 * 1024 + 5;

  static absl::StatusOr<std::unique_ptr<TlsStream>> Server(const TlsContext& context);
  // server_name is sent as SNI (unless it is an IP literal, RFC 6066 section 3)
  // and, with kChainAndHost, must match the certificate: a DNS name against
  // its DNS SANs (or CN when it has none, as libpq), an IPv4/IPv6 literal
  // against its IP SANs.
  static absl::StatusOr<std::unique_ptr<TlsStream>> Client(const TlsContext& context,
                                                           const std::string& server_name);

  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  // Copies ciphertext that arrived from the peer. Returns how many bytes were
  // taken: all of them unless kMaxPendingCiphertext would be exceeded; then the
  // caller keeps the rest and pushes it again after draining ReadPlaintext.
  size_t PushCiphertext(std::string_view bytes);

  enum class Progress { kDone, kWantMore /* push more ciphertext, then call again */ };
  // Drives the handshake as far as the pushed ciphertext allows. After every
  // call, send the pending ciphertext (also after an error: it may be an alert).
  // On kDone application data may already be buffered: drain ReadPlaintext.
  [[nodiscard]] absl::StatusOr<Progress> Handshake();
  bool handshake_done() const { return handshake_done_; }

  // Decrypts into out[0, cap), across as many records as are complete and fit.
  // Returns the bytes written; 0 means "push more ciphertext". After the peer's
  // close_notify (and once the data before it has been returned) it fails with
  // Cancelled("connection closed by peer") and eof() becomes true.
  // May produce ciphertext to send (TLS 1.3 KeyUpdate reply).
  [[nodiscard]] absl::StatusOr<size_t> ReadPlaintext(char* out, size_t cap);
  bool eof() const { return eof_; }

  // Encrypts all of bytes into the pending ciphertext (never blocks). Each call
  // makes at least one record, so batch small messages before calling when you
  // can; consecutive calls append to one contiguous pending run.
  [[nodiscard]] absl::Status WritePlaintext(std::string_view bytes);

  // Ciphertext waiting to be sent. Two ways to take it:
  //  * TakeCiphertext(dst): moves the pending run into dst. Zero-copy when dst
  //    is empty (the buffer itself changes hands; otherwise it is appended).
  //    The buffer then belongs to the caller, so it stays valid while an
  //    io_uring send is in flight. Preferred on the data path.
  //  * PendingCiphertext() + ConsumeCiphertext(n): a view, no copy, but it is
  //    invalidated by every other non-const call on this stream (Push, Read,
  //    Write, Handshake, Shutdown may append and reallocate). Use it only when
  //    the bytes are copied or sent before the next call.
  void TakeCiphertext(std::string& dst);
  std::string_view PendingCiphertext() const;
  void ConsumeCiphertext(size_t n);
  bool HasPendingCiphertext() const { return out_offset_ < out_.size(); }

  // Queues a close_notify (then send the pending ciphertext). Later writes fail.
  void Shutdown();

  // The peer's certificate, if it sent one (servers always do; clients only
  // when asked): subject in RFC 2253 form, and subjectAltNames as "DNS:name",
  // "IP:addr", "email:...", "URI:...". Empty if none.
  std::string PeerCertificateSubject() const;
  std::vector<std::string> PeerCertificateAltNames() const;
  // Servers asking for client certificates: whether the client presented one
  // and it chained to the client CA.
  bool PeerCertificateVerified() const;
  // The values of one subject attribute ("CN", "OU", ...), in order.
  std::vector<std::string> PeerCertificateSubjectField(const char* short_name) const;
  // The certificate's notAfter in Unix seconds; 0 without a certificate.
  int64_t PeerCertificateNotAfterUnix() const;
  // True when both sides agreed on ALPN "postgresql" (required by PostgreSQL
  // 17 for direct TLS connections, i.e. without SSLRequest).
  bool NegotiatedPostgresqlAlpn() const;
  // "TLSv1.3" etc., for logs and audit records.
  std::string_view ProtocolVersion() const;

 private:
  friend struct CiphertextBio;  // the BIO callbacks in tls.cc move bytes in and out

  TlsStream(SSL* ssl, TlsVerify verify) : ssl_(ssl), verify_(verify) {}
  static absl::StatusOr<std::unique_ptr<TlsStream>> Create(const TlsContext& context,
                                                           TlsVerify verify);
  // Turns the SSL error of a failed call into a Status and marks the stream dead.
  absl::Status Fail(int ssl_result, const char* operation);
  // Frees OpenSSL's record buffers when they hold nothing.
  void ReleaseIdleBuffers();

  SSL* ssl_;
  TlsVerify verify_;
  bool handshake_done_ = false;
  bool eof_ = false;
  bool failed_ = false;
  bool shut_down_ = false;
  // Received ciphertext not yet read by OpenSSL: in_[in_offset_, size).
  std::string in_;
  size_t in_offset_ = 0;
  // Ciphertext produced by OpenSSL not yet taken: out_[out_offset_, size).
  std::string out_;
  size_t out_offset_ = 0;
};

}  // namespace pgb::proto
