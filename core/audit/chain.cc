#include "core/audit/chain.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/file_read.h"
#include "base/json_text.h"
#include "core/audit/record.h"

namespace pgb::audit {
namespace {

constexpr size_t kMaxKeyFileBytes = 64 << 10;

std::string Errno(std::string_view what, const std::string& path) {
  return std::string(what) + " \"" + path + "\": " + std::strerror(errno);
}

// Reads a small regular file; `private_key` also refuses group/other access.
absl::StatusOr<std::string> ReadKeyFile(const std::string& path, bool private_key) {
  absl::StatusOr<FileContents> file = ReadRegularFile(path, kMaxKeyFileBytes);
  if (!file.ok()) return file.status();
  if (private_key && (file->mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(file->mode & 07777));
    return absl::PermissionDeniedError("\"" + path + "\" has mode " + mode +
                                       "; a signing key must not be readable by group or "
                                       "others: chmod 600 " +
                                       path);
  }
  return std::move(file->contents);
}

absl::StatusOr<std::string> KeyId(EVP_PKEY* key) {
  unsigned char raw[32];
  size_t length = sizeof(raw);
  if (EVP_PKEY_get_raw_public_key(key, raw, &length) != 1 || length != sizeof(raw)) {
    return absl::InternalError("cannot read the Ed25519 public key");
  }
  const HashHex hash = HashLine(std::string_view(reinterpret_cast<const char*>(raw), length));
  return std::string(hash.data(), 16);
}

struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

}  // namespace

HashHex HashLine(std::string_view line) {
  // OpenSSL 3's one-shot SHA256() fetches the algorithm and allocates a
  // context on every call; the writer hashes every line, so keep both.
  struct Sha256Context {
    EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Sha256Context() {
      EVP_MD_CTX_free(ctx);
      EVP_MD_free(md);
    }
  };
  thread_local Sha256Context sha;
  unsigned char digest[SHA256_DIGEST_LENGTH];
  unsigned int length = 0;
  if (EVP_DigestInit_ex2(sha.ctx, sha.md, nullptr) != 1 ||
      EVP_DigestUpdate(sha.ctx, line.data(), line.size()) != 1 ||
      EVP_DigestFinal_ex(sha.ctx, digest, &length) != 1) {
    SHA256(reinterpret_cast<const unsigned char*>(line.data()), line.size(), digest);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  HashHex out;
  for (size_t i = 0; i < sizeof(digest); ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0xF];
  }
  return out;
}

absl::StatusOr<AuditSigningKey> AuditSigningKey::FromPem(std::string_view pem) {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EvpKey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) return absl::InvalidArgumentError("not a PEM private key");
  if (EVP_PKEY_id(key.get()) != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError(
        "not an Ed25519 key (make one with `pgbastion audit keygen`)");
  }
  AuditSigningKey out;
  absl::StatusOr<std::string> id = KeyId(key.get());
  if (!id.ok()) return id.status();
  out.key_ = std::move(key);
  out.key_id_ = *std::move(id);
  return out;
}

absl::StatusOr<AuditSigningKey> AuditSigningKey::LoadFile(const std::string& path) {
  absl::StatusOr<std::string> pem = ReadKeyFile(path, /*private_key=*/true);
  if (!pem.ok()) return pem.status();
  absl::StatusOr<AuditSigningKey> key = FromPem(*pem);
  OPENSSL_cleanse(pem->data(), pem->size());
  if (!key.ok()) {
    return absl::InvalidArgumentError("\"" + path + "\": " + std::string(key.status().message()));
  }
  return key;
}

absl::StatusOr<std::string> AuditSigningKey::Sign(std::string_view message) const {
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  unsigned char signature[64];
  size_t length = sizeof(signature);
  if (ctx == nullptr || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), signature, &length,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1) {
    return absl::InternalError("Ed25519 signing failed");
  }
  return std::string(reinterpret_cast<const char*>(signature), length);
}

std::string AuditSigningKey::PublicKeyPem() const {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PUBKEY(bio.get(), key_.get()) != 1) return "";
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

absl::StatusOr<AuditVerifyKey> AuditVerifyKey::FromPem(std::string_view pem) {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EvpKey key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) return absl::InvalidArgumentError("not a PEM public key");
  if (EVP_PKEY_id(key.get()) != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError("not an Ed25519 public key");
  }
  AuditVerifyKey out;
  absl::StatusOr<std::string> id = KeyId(key.get());
  if (!id.ok()) return id.status();
  out.key_ = std::move(key);
  out.key_id_ = *std::move(id);
  return out;
}

absl::StatusOr<AuditVerifyKey> AuditVerifyKey::LoadFile(const std::string& path) {
  absl::StatusOr<std::string> pem = ReadKeyFile(path, /*private_key=*/false);
  if (!pem.ok()) return pem.status();
  absl::StatusOr<AuditVerifyKey> key = FromPem(*pem);
  if (!key.ok()) {
    return absl::InvalidArgumentError("\"" + path + "\": " + std::string(key.status().message()));
  }
  return key;
}

bool AuditVerifyKey::Verify(std::string_view message, std::string_view signature) const {
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  return ctx != nullptr &&
         EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) == 1 &&
         EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
}

absl::Status GenerateKeyPairFiles(const std::string& private_path, const std::string& public_path) {
  EVP_PKEY* raw = nullptr;
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(
      EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr), EVP_PKEY_CTX_free);
  if (ctx == nullptr || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
      EVP_PKEY_keygen(ctx.get(), &raw) != 1) {
    return absl::InternalError("Ed25519 key generation failed");
  }
  EvpKey key(raw);
  const auto write_pem = [&](const std::string& path, mode_t mode,
                             bool is_private) -> absl::Status {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) return absl::FailedPreconditionError(Errno("cannot create", path));
    ::fchmod(fd, mode);  // whatever the umask
    std::unique_ptr<BIO, BioDeleter> bio(BIO_new(BIO_s_mem()));
    const int ok = is_private ? PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0,
                                                         nullptr, nullptr)
                              : PEM_write_bio_PUBKEY(bio.get(), key.get());
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    bool written = ok == 1 && n > 0;
    for (long done = 0; written && done < n;) {
      const ssize_t w = ::write(fd, data + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) written = false;
      if (w > 0) done += w;
    }
    if (written && ::fsync(fd) != 0) written = false;
    if (n > 0) OPENSSL_cleanse(data, static_cast<size_t>(n));
    ::close(fd);
    if (!written) {
      ::unlink(path.c_str());
      return absl::InternalError("cannot write \"" + path + "\"");
    }
    return absl::OkStatus();
  };
  if (absl::Status status = write_pem(private_path, 0600, true); !status.ok()) return status;
  if (absl::Status status = write_pem(public_path, 0644, false); !status.ok()) {
    ::unlink(private_path.c_str());
    return status;
  }
  return absl::OkStatus();
}

std::string Base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

absl::StatusOr<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return absl::InvalidArgumentError("bad base64 length");
  std::string out(3 * (text.size() / 4) + 1, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return absl::InvalidArgumentError("bad base64");
  size_t length = static_cast<size_t>(n);
  // EVP_DecodeBlock counts padding as zero bytes.
  if (!text.empty() && text.back() == '=') --length;
  if (text.size() >= 2 && text[text.size() - 2] == '=') --length;
  out.resize(length);
  return out;
}

namespace {

constexpr std::string_view kSigMember = ",\"sig\":\"";

void AppendHead(uint64_t seq, std::string_view kind, int64_t time_us, std::string* out) {
  out->append("{\"v\":2,\"seq\":");
  out->append(std::to_string(seq));
  out->append(",\"kind\":\"");
  out->append(kind);
  out->append("\",\"start\":\"");
  AppendTimestamp(time_us, out);
  out->push_back('"');
}

}  // namespace

absl::Status AppendCheckpointJson(const AuditSigningKey& key, uint64_t seq, int64_t time_us,
                                  uint64_t records, bool final, std::string_view prev_hex,
                                  std::string* out) {
  std::string message;
  message.reserve(256);
  AppendHead(seq, "checkpoint", time_us, &message);
  message.append(",\"records\":");
  message.append(std::to_string(records));
  if (final) message.append(",\"final\":true");
  message.append(",\"key\":\"");
  message.append(key.key_id());
  message.append("\",\"prev\":\"");
  message.append(prev_hex);
  message.append("\"}");
  absl::StatusOr<std::string> signature = key.Sign(message);
  if (!signature.ok()) return signature.status();
  message.pop_back();  // '}'
  out->append(message);
  out->append(kSigMember);
  out->append(Base64Encode(*signature));
  out->append("\"}\n");
  return absl::OkStatus();
}

bool SplitCheckpointSignature(std::string_view line, std::string* message, std::string* signature) {
  const size_t at = line.rfind(kSigMember);
  if (at == std::string_view::npos || line.size() < at + kSigMember.size() + 2 ||
      line.substr(line.size() - 2) != "\"}") {
    return false;
  }
  const std::string_view b64 =
      line.substr(at + kSigMember.size(), line.size() - 2 - at - kSigMember.size());
  absl::StatusOr<std::string> raw = Base64Decode(b64);
  if (!raw.ok()) return false;
  *signature = *std::move(raw);
  message->assign(line.substr(0, at));
  message->push_back('}');
  return true;
}

void AppendDroppedJson(uint64_t seq, int64_t time_us, uint64_t count, std::string_view source,
                       std::string_view prev_hex, std::string* out) {
  AppendHead(seq, "dropped", time_us, out);
  out->append(",\"count\":");
  out->append(std::to_string(count));
  out->append(",\"source\":");
  AppendJsonString(source, out);
  out->append(",\"prev\":\"");
  out->append(prev_hex);
  out->append("\"}\n");
}

}  // namespace pgb::audit
