// The audit trail's tamper evidence: a SHA-256 hash chain over the JSON lines
// and Ed25519-signed checkpoints over the chain head.
//
// Every line carries "prev": the SHA-256 (hex) of the previous line's bytes
// without its newline; the first line of a new trail has 64 zeros. A
// checkpoint line is signed: the signature covers the line as it would read
// without its trailing ,"sig":"..." member, so it covers the chain head (its
// "prev"), its sequence number and time, and through the chain every record
// before it. Verification: core/audit/verify.h, `pgbastion audit verify`.
//
//   PGB_ASSIGN_OR_RETURN(AuditSigningKey key,
//   AuditSigningKey::LoadFile("/etc/pgbastion/audit.key")); std::string line;
//   PGB_RETURN_IF_ERROR(AppendCheckpointJson(key, seq, AuditClockMicros(), false, prev, &line));
//
// Key files are PEM (PKCS#8 private, SubjectPublicKeyInfo public), made by
// `pgbastion audit keygen`. No key material ever appears in an error.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pgb::audit {

inline constexpr size_t kHashHexLength = 64;
// "prev" of the first line of a trail.
inline constexpr std::string_view kGenesisPrev =
    "0000000000000000000000000000000000000000000000000000000000000000";

using HashHex = std::array<char, kHashHexLength>;
// SHA-256 of `line` (without its '\n'), as 64 lowercase hex digits.
HashHex HashLine(std::string_view line);
inline std::string_view View(const HashHex& hash) { return {hash.data(), hash.size()}; }

struct EvpKeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using EvpKey = std::unique_ptr<EVP_PKEY, EvpKeyDeleter>;

// The gateway's Ed25519 private key.
class AuditSigningKey {
 public:
  // The file must be a regular file not readable by group or others.
  static absl::StatusOr<AuditSigningKey> LoadFile(const std::string& path);
  static absl::StatusOr<AuditSigningKey> FromPem(std::string_view pem);

  // Raw 64-byte Ed25519 signature of `message`.
  absl::StatusOr<std::string> Sign(std::string_view message) const;
  // First 16 hex digits of the SHA-256 of the raw public key: names the key
  // in checkpoints, so a verifier can tell "wrong key" from "bad signature".
  const std::string& key_id() const { return key_id_; }
  std::string PublicKeyPem() const;

 private:
  EvpKey key_;
  std::string key_id_;
};

// The public half, for verification.
class AuditVerifyKey {
 public:
  static absl::StatusOr<AuditVerifyKey> LoadFile(const std::string& path);
  static absl::StatusOr<AuditVerifyKey> FromPem(std::string_view pem);
  bool Verify(std::string_view message, std::string_view signature) const;
  const std::string& key_id() const { return key_id_; }

 private:
  EvpKey key_;
  std::string key_id_;
};

// Writes a new key pair: `private_path` (PEM, created with mode 0600, never
// overwritten) and `public_path` (PEM, 0644).
absl::Status GenerateKeyPairFiles(const std::string& private_path, const std::string& public_path);

// Appends a signed checkpoint line (with '\n'):
// {"v":2,"seq":S,"kind":"checkpoint","start":T,"records":N[,"final":true],"key":K,"prev":P,"sig":B64}
// `records` is the number of lines since the previous checkpoint.
absl::Status AppendCheckpointJson(const AuditSigningKey& key, uint64_t seq, int64_t time_us,
                                  uint64_t records, bool final, std::string_view prev_hex,
                                  std::string* out);

// Splits a checkpoint line into the signed message and the raw signature.
// False if the line does not end in ,"sig":"<base64>"}.
bool SplitCheckpointSignature(std::string_view line, std::string* message, std::string* signature);

// Appends the line that reports records lost in fail-open mode:
// {"v":2,"seq":S,"kind":"dropped","start":T,"count":N,"source":"ring"|"sink:<name>","prev":P}
void AppendDroppedJson(uint64_t seq, int64_t time_us, uint64_t count, std::string_view source,
                       std::string_view prev_hex, std::string* out);

std::string Base64Encode(std::string_view bytes);
absl::StatusOr<std::string> Base64Decode(std::string_view text);

}  // namespace pgb::audit
