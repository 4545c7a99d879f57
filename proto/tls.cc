#include "proto/tls.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <utility>

#include "base/str_cat.h"

namespace pgb::proto {
namespace {

// ALPN protocol list in wire form (length-prefixed), as PostgreSQL 17 uses.
constexpr unsigned char kAlpnPostgresql[] = {10, 'p', 'o', 's', 't', 'g', 'r', 'e', 's', 'q', 'l'};
constexpr std::string_view kAlpnName = "postgresql";

// Drains this thread's OpenSSL error queue into "reason; reason". Only the
// reason strings (ERR_error_string_n), never the attached data, so nothing a
// caller passed in (buffers, keys) can end up in a message. Sets *missing_file
// when one of the errors is fopen's ENOENT.
std::string DrainErrors(bool* missing_file = nullptr) {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    if (missing_file != nullptr && ERR_SYSTEM_ERROR(code) && ERR_GET_REASON(code) == ENOENT) {
      *missing_file = true;
    }
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    if (!text.empty()) text += "; ";
    text += buf;
  }
  return text;
}

absl::Status FileError(const char* what, const std::string& file) {
  bool missing = false;
  const std::string reasons = DrainErrors(&missing);
  std::string message = Cat("TLS ", what, " file \"", file, "\": ", reasons);
  return missing ? absl::NotFoundError(message) : absl::InvalidArgumentError(message);
}

bool IsIpLiteral(const std::string& name) {
  unsigned char addr[16];
  return inet_pton(AF_INET, name.c_str(), addr) == 1 ||
         inet_pton(AF_INET6, name.c_str(), addr) == 1;
}

// Refuses to prompt for a passphrase on the terminal: an encrypted key file
// fails at startup with a clear error instead of hanging the service.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*userdata*/) { return -1; }

// Server ALPN: pick "postgresql" if the client offers it; a client that offers
// only other protocols is refused, as PostgreSQL 17 does. Clients that send no
// ALPN at all (libpq before 17) never reach this callback.
int SelectAlpn(SSL* /*ssl*/, const unsigned char** out, unsigned char* out_len,
               const unsigned char* in, unsigned int in_len, void* /*arg*/) {
  unsigned int i = 0;
  while (i < in_len) {
    const unsigned int len = in[i];
    if (len == 0 || len > in_len - i - 1) break;  // malformed list
    if (std::string_view(reinterpret_cast<const char*>(in + i + 1), len) == kAlpnName) {
      *out = in + i + 1;
      *out_len = static_cast<unsigned char>(len);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

absl::StatusOr<SSL_CTX*> NewContext(bool server) {
  SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (ctx == nullptr) return absl::InternalError(Cat("SSL_CTX_new: ", DrainErrors()));
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
    SSL_CTX_free(ctx);
    return absl::InternalError(Cat("TLS minimum version: ", DrainErrors()));
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  // Record buffers are freed between records: an idle connection keeps none.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_default_passwd_cb(ctx, NoPassphrase);
  return ctx;
}

}  // namespace

// A source/sink BIO over the TlsStream's two std::string buffers.
//
// Why not BIO_s_mem or BIO_new_bio_pair: a bio pair has fixed-size ring
// buffers (writes stop when full, so WritePlaintext could not take everything,
// and the pending ciphertext is not contiguous); BIO_s_mem can only be
// consumed by BIO_read into a scratch buffer (one more copy of every byte sent),
// never shrinks its buffer, and its buffer cannot be handed to an in-flight
// io_uring send. This BIO appends OpenSSL's output to out_ (one contiguous run
// that TakeCiphertext hands over without copying), reads OpenSSL's input from
// in_, and frees each buffer as soon as it is empty. It is still memory only:
// no socket, no syscalls.
struct CiphertextBio {
  static int Create(BIO* bio) {
    BIO_set_init(bio, 1);
    return 1;
  }

  static int Read(BIO* bio, char* out, size_t len, size_t* read) {
    BIO_clear_retry_flags(bio);
    auto* stream = static_cast<TlsStream*>(BIO_get_data(bio));
    const size_t avail = stream->in_.size() - stream->in_offset_;
    if (avail == 0) {
      // Not EOF: the caller will push more. OpenSSL reports SSL_ERROR_WANT_READ.
      BIO_set_retry_read(bio);
      *read = 0;
      return 0;
    }
    const size_t n = std::min(len, avail);
    std::memcpy(out, stream->in_.data() + stream->in_offset_, n);
    stream->in_offset_ += n;
    if (stream->in_offset_ == stream->in_.size()) {
      std::string().swap(stream->in_);
      stream->in_offset_ = 0;
    }
    *read = n;
    return 1;
  }

  static int Write(BIO* bio, const char* in, size_t len, size_t* written) {
    BIO_clear_retry_flags(bio);
    auto* stream = static_cast<TlsStream*>(BIO_get_data(bio));
    stream->out_.append(in, len);
    *written = len;
    return 1;
  }

  static long Ctrl(BIO* bio, int cmd, long /*num*/, void* /*ptr*/) {
    auto* stream = static_cast<TlsStream*>(BIO_get_data(bio));
    switch (cmd) {
      case BIO_CTRL_FLUSH:
        return 1;  // Write already delivered everything to out_.
      case BIO_CTRL_PENDING:
        return static_cast<long>(stream->in_.size() - stream->in_offset_);
      case BIO_CTRL_WPENDING:
        return static_cast<long>(stream->out_.size() - stream->out_offset_);
      default:
        return 0;  // Unsupported (kTLS, dgram, push/pop ...).
    }
  }

  // Created once, never freed (lives as long as the process). Thread-safe
  // initialisation of a function-local static.
  static const BIO_METHOD* Method() {
    static const BIO_METHOD* method = [] {
      BIO_METHOD* m =
          BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "pgbastion ciphertext");
      if (m == nullptr) return static_cast<BIO_METHOD*>(nullptr);
      BIO_meth_set_create(m, Create);
      BIO_meth_set_read_ex(m, Read);
      BIO_meth_set_write_ex(m, Write);
      BIO_meth_set_ctrl(m, Ctrl);
      return m;
    }();
    return method;
  }
};

// ---------------------------------------------------------------- TlsContext

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

namespace {
// tls-server-end-point (RFC 5929 section 4.1), as PostgreSQL computes it in
// be_tls_get_certificate_hash: the certificate's hash with the digest of its
// signature algorithm, SHA-256 instead of MD5 or SHA-1.
std::string ServerEndPoint(X509* cert) {
  if (cert == nullptr) return "";
  int digest_nid = NID_undef;
  if (!OBJ_find_sigid_algs(X509_get_signature_nid(cert), &digest_nid, nullptr) ||
      digest_nid == NID_undef) {
    return "";
  }
  if (digest_nid == NID_md5 || digest_nid == NID_sha1) digest_nid = NID_sha256;
  const EVP_MD* md = EVP_get_digestbynid(digest_nid);
  if (md == nullptr) return "";
  unsigned char hash[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (X509_digest(cert, md, hash, &length) != 1) return "";
  return std::string(reinterpret_cast<const char*>(hash), length);
}
}  // namespace

absl::StatusOr<std::shared_ptr<const TlsContext>> TlsContext::ForServer(
    const std::string& cert_file, const std::string& key_file,
    const TlsClientCertificates& clients) {
  ERR_clear_error();
  absl::StatusOr<SSL_CTX*> made = NewContext(/*server=*/true);
  if (!made.ok()) return made.status();
  // Owned from here on, so every early return frees the SSL_CTX.
  auto* owned = new TlsContext(*made, /*is_server=*/true, TlsVerify::kNone);
  std::shared_ptr<const TlsContext> context(owned);
  SSL_CTX* ctx = *made;

  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    return FileError("certificate", cert_file);
  }
  // Also fails ("key values mismatch") when the key is of the certificate's
  // type but not its key; the check below catches a key of another type.
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return FileError("private key", key_file);
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return absl::InvalidArgumentError(Cat("TLS private key file \"", key_file,
                                          "\" does not match certificate file \"", cert_file,
                                          "\": ", DrainErrors()));
  }
  SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_alpn_select_cb(ctx, SelectAlpn, nullptr);
  if (!clients.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, clients.ca_file.c_str(), nullptr) != 1) {
      return FileError("client CA", clients.ca_file);
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(clients.ca_file.c_str());
    if (names == nullptr) return FileError("client CA", clients.ca_file);
    SSL_CTX_set_client_CA_list(ctx, names);  // takes ownership
    SSL_CTX_set_verify(
        ctx, SSL_VERIFY_PEER | (clients.required ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), nullptr);
    // Resumed sessions keep the verified client identity; OpenSSL refuses to
    // resume a verified session without a context id.
    static constexpr unsigned char kSessionContext[] = "pgbastion";
    SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof(kSessionContext) - 1);
  }
  owned->server_end_point_ = ServerEndPoint(SSL_CTX_get0_certificate(ctx));
  ERR_clear_error();
  return context;
}

absl::StatusOr<std::shared_ptr<const TlsContext>> TlsContext::ForClient(
    TlsVerify verify, const std::string& ca_file) {
  ERR_clear_error();
  if (verify != TlsVerify::kNone && ca_file.empty()) {
    return absl::InvalidArgumentError(
        "TLS verify-ca and verify-full need a CA file (root certificates)");
  }
  absl::StatusOr<SSL_CTX*> made = NewContext(/*server=*/false);
  if (!made.ok()) return made.status();
  std::shared_ptr<const TlsContext> context(new TlsContext(*made, /*is_server=*/false, verify));
  SSL_CTX* ctx = *made;

  if (!ca_file.empty() && SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
    return FileError("CA", ca_file);
  }
  SSL_CTX_set_verify(ctx, verify == TlsVerify::kNone ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, nullptr);
  return context;
}

// ----------------------------------------------------------------- TlsStream

TlsStream::~TlsStream() { SSL_free(ssl_); }  // also frees the BIO

absl::StatusOr<std::unique_ptr<TlsStream>> TlsStream::Create(const TlsContext& context,
                                                             TlsVerify verify) {
  const BIO_METHOD* method = CiphertextBio::Method();
  if (method == nullptr) return absl::InternalError("TLS: cannot create the BIO method");
  SSL* ssl = SSL_new(context.ctx());
  if (ssl == nullptr) return absl::InternalError(Cat("SSL_new: ", DrainErrors()));
  std::unique_ptr<TlsStream> stream(new TlsStream(ssl, verify));
  BIO* bio = BIO_new(method);
  if (bio == nullptr) return absl::InternalError(Cat("BIO_new: ", DrainErrors()));
  BIO_set_data(bio, stream.get());  // stream is heap-allocated: the address is stable
  // One BIO for both directions; SSL_set_bio takes the single reference.
  SSL_set_bio(ssl, bio, bio);
  return stream;
}

absl::StatusOr<std::unique_ptr<TlsStream>> TlsStream::Server(const TlsContext& context) {
  ERR_clear_error();
  if (!context.is_server()) {
    return absl::InvalidArgumentError("TLS: a client context cannot make a server stream");
  }
  absl::StatusOr<std::unique_ptr<TlsStream>> stream = Create(context, TlsVerify::kNone);
  if (!stream.ok()) return stream;
  SSL_set_accept_state((*stream)->ssl_);
  return stream;
}

absl::StatusOr<std::unique_ptr<TlsStream>> TlsStream::Client(const TlsContext& context,
                                                             const std::string& server_name) {
  ERR_clear_error();
  if (context.is_server()) {
    return absl::InvalidArgumentError("TLS: a server context cannot make a client stream");
  }
  if (context.verify() == TlsVerify::kChainAndHost && server_name.empty()) {
    return absl::InvalidArgumentError("TLS verify-full needs the server's host name");
  }
  absl::StatusOr<std::unique_ptr<TlsStream>> stream = Create(context, context.verify());
  if (!stream.ok()) return stream;
  SSL* ssl = (*stream)->ssl_;
  const bool ip = IsIpLiteral(server_name);
  if (!server_name.empty() && !ip && SSL_set_tlsext_host_name(ssl, server_name.c_str()) != 1) {
    return absl::InvalidArgumentError(
        Cat("TLS server name \"", server_name, "\": ", DrainErrors()));
  }
  if (context.verify() == TlsVerify::kChainAndHost) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, server_name.c_str())
                      : X509_VERIFY_PARAM_set1_host(param, server_name.c_str(), 0);
    if (ok != 1) {
      return absl::InvalidArgumentError(
          Cat("TLS host name \"", server_name, "\": ", DrainErrors()));
    }
  }
  // SSL_set_alpn_protos returns 0 on success.
  if (SSL_set_alpn_protos(ssl, kAlpnPostgresql, sizeof(kAlpnPostgresql)) != 0) {
    return absl::InternalError(Cat("TLS ALPN: ", DrainErrors()));
  }
  SSL_set_connect_state(ssl);
  return stream;
}

size_t TlsStream::PushCiphertext(std::string_view bytes) {
  const size_t pending = in_.size() - in_offset_;
  const size_t take = std::min(bytes.size(), kMaxPendingCiphertext - pending);
  if (take == 0) return 0;
  if (in_offset_ > 0) {
    // Drop what OpenSSL has read; what stays is at most a partial record.
    in_.erase(0, in_offset_);
    in_offset_ = 0;
  }
  if (in_.empty()) in_.reserve(take);  // exact size for the common single push
  in_.append(bytes.data(), take);
  return take;
}

absl::Status TlsStream::Fail(int ssl_result, const char* operation) {
  failed_ = true;
  const int error = SSL_get_error(ssl_, ssl_result);
  std::string reasons = DrainErrors();
  if (reasons.empty()) {
    reasons = error == SSL_ERROR_SYSCALL ? "unexpected end of stream" : Cat("SSL error ", error);
  }
  if (verify_ != TlsVerify::kNone && !handshake_done_) {
    const long result = SSL_get_verify_result(ssl_);
    if (result != X509_V_OK) {
      return absl::UnauthenticatedError(Cat("TLS ", operation, ": server certificate rejected: ",
                                            X509_verify_cert_error_string(result), " (", reasons,
                                            ")"));
    }
  }
  return absl::UnavailableError(Cat("TLS ", operation, ": ", reasons));
}

void TlsStream::ReleaseIdleBuffers() {
  // SSL_MODE_RELEASE_BUFFERS frees the read buffer only after a record of
  // application data; after handshake records (the end of the handshake, TLS
  // 1.3 session tickets) it keeps ~18 KiB. Free it when it holds nothing.
  // (SSL_has_pending() == 0 also keeps clear of CVE-2024-4741, a use after
  // free in SSL_free_buffers with unread data, on unpatched OpenSSL.)
  if (!SSL_has_pending(ssl_)) (void)SSL_free_buffers(ssl_);
}

absl::StatusOr<TlsStream::Progress> TlsStream::Handshake() {
  if (handshake_done_) return Progress::kDone;
  if (failed_) return absl::FailedPreconditionError("TLS stream failed earlier");
  ERR_clear_error();
  const int result = SSL_do_handshake(ssl_);
  if (result == 1) {
    handshake_done_ = true;
    ReleaseIdleBuffers();
    return Progress::kDone;
  }
  if (SSL_get_error(ssl_, result) == SSL_ERROR_WANT_READ) return Progress::kWantMore;
  return Fail(result, "handshake");
}

absl::StatusOr<size_t> TlsStream::ReadPlaintext(char* out, size_t cap) {
  if (failed_) return absl::FailedPreconditionError("TLS stream failed earlier");
  if (!handshake_done_) return absl::FailedPreconditionError("TLS handshake not done");
  if (eof_) return absl::CancelledError("connection closed by peer");
  ERR_clear_error();
  size_t total = 0;
  while (total < cap) {
    size_t n = 0;
    const int result = SSL_read_ex(ssl_, out + total, cap - total, &n);
    if (result == 1) {
      total += n;
      continue;
    }
    const int error = SSL_get_error(ssl_, result);
    if (error == SSL_ERROR_WANT_READ) {
      ReleaseIdleBuffers();
      break;
    }
    if (error == SSL_ERROR_ZERO_RETURN) {
      eof_ = true;
      ERR_clear_error();
      if (total > 0) break;  // hand out the data first; the next call reports EOF
      return absl::CancelledError("connection closed by peer");
    }
    // Data decrypted before the failure is dropped with the connection.
    return Fail(result, "read");
  }
  return total;
}

absl::Status TlsStream::WritePlaintext(std::string_view bytes) {
  if (failed_) return absl::FailedPreconditionError("TLS stream failed earlier");
  if (!handshake_done_) return absl::FailedPreconditionError("TLS handshake not done");
  if (shut_down_) return absl::FailedPreconditionError("TLS stream shut down");
  if (bytes.empty()) return absl::OkStatus();
  ERR_clear_error();
  size_t written = 0;
  // The BIO never blocks, so one call writes everything; a failure is fatal.
  const int result = SSL_write_ex(ssl_, bytes.data(), bytes.size(), &written);
  if (result != 1) return Fail(result, "write");
  return absl::OkStatus();
}

void TlsStream::TakeCiphertext(std::string& dst) {
  if (!HasPendingCiphertext()) return;
  if (dst.empty() && out_offset_ == 0) {
    dst.swap(out_);
    std::string().swap(out_);  // frees whatever capacity dst had
    return;
  }
  dst.append(out_, out_offset_);
  std::string().swap(out_);
  out_offset_ = 0;
}

std::string_view TlsStream::PendingCiphertext() const {
  return std::string_view(out_).substr(out_offset_);
}

void TlsStream::ConsumeCiphertext(size_t n) {
  out_offset_ += std::min(n, out_.size() - out_offset_);
  if (out_offset_ == out_.size()) {
    std::string().swap(out_);
    out_offset_ = 0;
  }
}

void TlsStream::Shutdown() {
  if (shut_down_ || failed_) return;
  shut_down_ = true;
  ERR_clear_error();
  // Returns 0 ("sent, peer's not yet seen") or -1 before the handshake is done;
  // nothing to report either way: the caller closes the socket next.
  (void)SSL_shutdown(ssl_);
  ERR_clear_error();
}

std::string TlsStream::PeerCertificateSubject() const {
  X509* cert = SSL_get0_peer_certificate(ssl_);
  if (cert == nullptr) return {};
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return {};
  std::string subject;
  if (X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio, &data);
    if (len > 0) subject.assign(data, static_cast<size_t>(len));
  }
  BIO_free(bio);
  return subject;
}

bool TlsStream::PeerCertificateVerified() const {
  return SSL_get0_peer_certificate(ssl_) != nullptr && SSL_get_verify_result(ssl_) == X509_V_OK;
}

std::vector<std::string> TlsStream::PeerCertificateSubjectField(const char* short_name) const {
  std::vector<std::string> values;
  X509* cert = SSL_get0_peer_certificate(ssl_);
  const int nid = OBJ_sn2nid(short_name);
  if (cert == nullptr || nid == NID_undef) return values;
  const X509_NAME* subject = X509_get_subject_name(cert);
  for (int i = X509_NAME_get_index_by_NID(subject, nid, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(subject, nid, i)) {
    unsigned char* utf8 = nullptr;
    const int length =
        ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
    if (length >= 0) values.emplace_back(reinterpret_cast<const char*>(utf8), length);
    OPENSSL_free(utf8);
  }
  return values;
}

int64_t TlsStream::PeerCertificateNotAfterUnix() const {
  X509* cert = SSL_get0_peer_certificate(ssl_);
  if (cert == nullptr) return 0;
  tm when{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &when) != 1) return 0;
  return static_cast<int64_t>(timegm(&when));
}

std::vector<std::string> TlsStream::PeerCertificateAltNames() const {
  std::vector<std::string> names;
  X509* cert = SSL_get0_peer_certificate(ssl_);
  if (cert == nullptr) return names;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans == nullptr) return names;
  for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans, i);
    auto text = [](const ASN1_STRING* s) {
      return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                         static_cast<size_t>(ASN1_STRING_length(s)));
    };
    switch (name->type) {
      case GEN_DNS:
        names.push_back("DNS:" + text(name->d.dNSName));
        break;
      case GEN_EMAIL:
        names.push_back("email:" + text(name->d.rfc822Name));
        break;
      case GEN_URI:
        names.push_back("URI:" + text(name->d.uniformResourceIdentifier));
        break;
      case GEN_IPADD: {
        const ASN1_OCTET_STRING* ip = name->d.iPAddress;
        char buf[INET6_ADDRSTRLEN] = {};
        const int family = ASN1_STRING_length(ip) == 4    ? AF_INET
                           : ASN1_STRING_length(ip) == 16 ? AF_INET6
                                                          : 0;
        if (family != 0 && inet_ntop(family, ASN1_STRING_get0_data(ip), buf, sizeof(buf))) {
          names.push_back(Cat("IP:", buf));
        }
        break;
      }
      default:
        break;  // otherName, x400, directoryName ...: not used for identity here
    }
  }
  GENERAL_NAMES_free(sans);
  return names;
}

bool TlsStream::NegotiatedPostgresqlAlpn() const {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_, &data, &len);
  return data != nullptr && std::string_view(reinterpret_cast<const char*>(data), len) == kAlpnName;
}

std::string_view TlsStream::ProtocolVersion() const { return SSL_get_version(ssl_); }

}  // namespace pgb::proto
