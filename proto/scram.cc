#include "proto/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <climits>
#include <cstring>
#include <string>
#include <utility>

#include "base/log.h"
#include "base/status_macros.h"
#include "base/str_cat.h"

namespace pgb::proto {
namespace {

using Key = std::array<unsigned char, kScramKeyLength>;

// PostgreSQL's SCRAM_RAW_NONCE_LEN: both libpq and the backend draw 18 bytes.
constexpr size_t kRawNonceLength = 18;
constexpr std::string_view kVerifierPrefix = "SCRAM-SHA-256$";

std::string_view AsView(const Key& key) {
  return {reinterpret_cast<const char*>(key.data()), key.size()};
}
const unsigned char* AsBytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

template <typename T>
void Cleanse(T& secret) {
  if (!secret.empty()) OPENSSL_cleanse(secret.data(), secret.size());
}

absl::Status Hmac(std::string_view key, std::string_view data, Key* out) {
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), AsBytes(data), data.size(),
           out->data(), &length) == nullptr ||
      length != out->size()) {
    return absl::InternalError("SCRAM: HMAC-SHA-256 failed");
  }
  return absl::OkStatus();
}

absl::Status Sha256(std::string_view data, Key* out) {
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), out->data(), &length, EVP_sha256(), nullptr) != 1 ||
      length != out->size()) {
    return absl::InternalError("SCRAM: SHA-256 failed");
  }
  return absl::OkStatus();
}

// Hi() of RFC 5802 section 2.2 is PBKDF2 with HMAC-SHA-256 and a 32-byte output.
absl::Status SaltedPassword(std::string_view password, std::string_view salt, int iterations,
                            Key* out) {
  if (password.size() > INT_MAX || salt.size() > INT_MAX) {
    return absl::InvalidArgumentError("SCRAM: password or salt too long");
  }
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), AsBytes(salt),
                        static_cast<int>(salt.size()), iterations, EVP_sha256(),
                        static_cast<int>(out->size()), out->data()) != 1) {
    return absl::InternalError("SCRAM: PBKDF2 failed");
  }
  return absl::OkStatus();
}

absl::Status RandomBytes(size_t n, std::string* out) {
  out->resize(n);
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out->data()), static_cast<int>(n)) != 1) {
    out->clear();
    return absl::InternalError("SCRAM: random source failed");
  }
  return absl::OkStatus();
}

// SASLprep (RFC 4013), as PostgreSQL applies it to passwords (pg_saslprep in
// src/common/saslprep.c). An all-ASCII string is returned unchanged: that is
// what PostgreSQL does too (even for control characters). For any non-ASCII
// password we use the raw bytes. PostgreSQL uses the raw bytes as well when
// SASLprep fails (invalid UTF-8, prohibited or unassigned code points), and
// the result is identical whenever the password is already in SASLprep form
// (for example a precomposed "pässwörd"). It differs only for passwords that
// SASLprep would rewrite (non-NFKC forms such as U+FB01 "ﬁ", non-ASCII spaces,
// soft hyphens): those would need the full NFKC tables, which we do not carry.
// Such a password, set through PostgreSQL, will not match a key computed here.
std::string_view SaslPrepPassword(std::string_view password) { return password; }

struct ClientAndServerKeys {
  Key client_key;
  Key stored_key;
  Key server_key;
  ~ClientAndServerKeys() {
    Cleanse(client_key);
    Cleanse(stored_key);
    Cleanse(server_key);
  }
};

absl::Status DeriveKeys(std::string_view password, std::string_view salt, int iterations,
                        ClientAndServerKeys* keys) {
  Key salted;
  absl::Status status = SaltedPassword(SaslPrepPassword(password), salt, iterations, &salted);
  if (status.ok()) status = Hmac(AsView(salted), "Client Key", &keys->client_key);
  if (status.ok()) status = Sha256(AsView(keys->client_key), &keys->stored_key);
  if (status.ok()) status = Hmac(AsView(salted), "Server Key", &keys->server_key);
  Cleanse(salted);
  return status;
}

// printable = %x21-2B / %x2D-7E (RFC 5802 section 7): what a nonce may hold.
bool IsScramPrintable(std::string_view s) {
  for (char c : s) {
    if (c < 0x21 || c > 0x7E || c == ',') return false;
  }
  return true;
}

absl::Status Malformed(std::string_view what) {
  return absl::InvalidArgumentError(Cat("malformed SCRAM message (", what, ")"));
}

// Checks the size cap and refuses NUL bytes (the peer's C string would end there).
absl::Status CheckMessage(std::string_view message, std::string_view name) {
  if (message.size() > kScramMaxMessageLength) {
    return Malformed(Cat(name, " longer than ", kScramMaxMessageLength, " bytes"));
  }
  if (message.find('\0') != std::string_view::npos) {
    return Malformed(Cat(name, " contains a NUL byte"));
  }
  if (message.empty()) return Malformed(Cat(name, " is empty"));
  return absl::OkStatus();
}

// Reads "<attr>=<value>" up to the next ',' (consumed) or the end, as
// read_attr_value() in PostgreSQL's auth-scram.c.
[[nodiscard]] bool ReadAttribute(std::string_view* input, char attr, std::string_view* value) {
  if (input->size() < 2 || (*input)[0] != attr || (*input)[1] != '=') return false;
  input->remove_prefix(2);
  const size_t comma = input->find(',');
  *value = input->substr(0, comma);
  input->remove_prefix(comma == std::string_view::npos ? input->size() : comma + 1);
  return true;
}

// Reads any "<letter>=<value>" (an extension); reports the attribute letter.
[[nodiscard]] bool ReadAnyAttribute(std::string_view* input, char* attr, std::string_view* value) {
  if (input->size() < 2 || (*input)[1] != '=') return false;
  const char c = (*input)[0];
  if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return false;
  *attr = c;
  return ReadAttribute(input, c, value);
}

// Positive decimal without sign, in 1..max.
[[nodiscard]] bool ParseIterations(std::string_view text, int max, int* out) {
  if (text.empty() || text.size() > 10) return false;
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  if (value < 1 || value > max) return false;
  *out = static_cast<int>(value);
  return true;
}

// The per-process secret behind mock verifiers, drawn once.
struct MockSecret {
  Key bytes{};
  bool ok = false;
};
const MockSecret& ProcessMockSecret() {
  static const MockSecret secret = [] {
    MockSecret s;
    s.ok = RAND_bytes(s.bytes.data(), static_cast<int>(s.bytes.size())) == 1;
    return s;
  }();
  return secret;
}

// PostgreSQL's mock_scram_secret(): a salt that is stable per user name (so
// two attempts show the same salt, as for a real user) and default iterations.
// The keys stay zero: doomed_ makes the proof fail whatever they are.
absl::StatusOr<ScramVerifier> MockVerifier(std::string_view user_name) {
  const MockSecret& secret = ProcessMockSecret();
  if (!secret.ok) return absl::InternalError("SCRAM: random source failed");
  Key mac;
  PGB_RETURN_IF_ERROR(
      Hmac(AsView(secret.bytes), Cat("pgbastion mock SCRAM salt:", user_name), &mac));
  ScramVerifier verifier;
  verifier.iterations = kScramDefaultIterations;
  verifier.salt.assign(AsView(mac).substr(0, kScramSaltLength));
  verifier.stored_key.assign(kScramKeyLength, '\0');
  verifier.server_key.assign(kScramKeyLength, '\0');
  return verifier;
}

bool VerifierUsable(const ScramVerifier& v) {
  return v.iterations >= 1 && !v.salt.empty() && v.stored_key.size() == kScramKeyLength &&
         v.server_key.size() == kScramKeyLength;
}

// Escapes a user name as a saslname (RFC 5802 section 5.1: ',' -> "=2C", '=' -> "=3D").
std::string SaslName(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == ',') {
      out += "=2C";
    } else if (c == '=') {
      out += "=3D";
    } else {
      out += c;
    }
  }
  return out;
}

// The server's "e=" value is not a secret, but it is untrusted text headed for
// our logs and errors: keep printable ASCII only and bound its length.
std::string SanitizeServerError(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 100)) out += (c >= 0x20 && c <= 0x7E) ? c : '?';
  return out;
}

constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

namespace internal_scram {

std::string Base64Encode(std::string_view raw) {
  std::string out;
  out.reserve((raw.size() + 2) / 3 * 4);
  const auto* p = AsBytes(raw);
  size_t i = 0;
  for (; i + 3 <= raw.size(); i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    out += kBase64Alphabet[(v >> 18) & 63];
    out += kBase64Alphabet[(v >> 12) & 63];
    out += kBase64Alphabet[(v >> 6) & 63];
    out += kBase64Alphabet[v & 63];
  }
  if (raw.size() - i == 1) {
    const uint32_t v = uint32_t{p[i]} << 16;
    out += kBase64Alphabet[(v >> 18) & 63];
    out += kBase64Alphabet[(v >> 12) & 63];
    out += "==";
  } else if (raw.size() - i == 2) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8);
    out += kBase64Alphabet[(v >> 18) & 63];
    out += kBase64Alphabet[(v >> 12) & 63];
    out += kBase64Alphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

bool Base64Decode(std::string_view text, std::string* raw) {
  raw->clear();
  if (text.size() % 4 != 0) return false;
  raw->reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int padding = 0;
    if (last && text[i + 3] == '=') padding = text[i + 2] == '=' ? 2 : 1;
    uint32_t v = 0;
    for (int j = 0; j < 4; ++j) {
      if (j >= 4 - padding) {
        v <<= 6;
        continue;
      }
      const int d = Base64Value(text[i + j]);
      if (d < 0) return false;  // includes '=' anywhere but the end
      v = (v << 6) | static_cast<uint32_t>(d);
    }
    // Bits below the last full byte must be zero, so each value has one encoding.
    if ((padding == 1 && (v & 0xFF) != 0) || (padding == 2 && (v & 0xFFFF) != 0)) {
      return false;
    }
    raw->push_back(static_cast<char>(v >> 16));
    if (padding < 2) raw->push_back(static_cast<char>(v >> 8));
    if (padding < 1) raw->push_back(static_cast<char>(v));
  }
  return true;
}

absl::StatusOr<ScramVerifier> DeriveScramVerifier(std::string_view password, std::string_view salt,
                                                  int iterations) {
  if (iterations < 1 || iterations > kScramMaxIterations) {
    return absl::InvalidArgumentError(
        Cat("SCRAM iteration count must be in 1..", kScramMaxIterations));
  }
  if (salt.empty()) return absl::InvalidArgumentError("SCRAM salt is empty");
  ClientAndServerKeys keys;
  PGB_RETURN_IF_ERROR(DeriveKeys(password, salt, iterations, &keys));
  ScramVerifier verifier;
  verifier.iterations = iterations;
  verifier.salt.assign(salt);
  verifier.stored_key.assign(AsView(keys.stored_key));
  verifier.server_key.assign(AsView(keys.server_key));
  return verifier;
}

std::string FormatScramVerifier(const ScramVerifier& verifier) {
  return Cat(kVerifierPrefix, verifier.iterations, ":", Base64Encode(verifier.salt), "$",
             Base64Encode(verifier.stored_key), ":", Base64Encode(verifier.server_key));
}

}  // namespace internal_scram

using internal_scram::Base64Decode;
using internal_scram::Base64Encode;

absl::StatusOr<ScramVerifier> ParseScramVerifier(std::string_view text) {
  if (text.size() > kScramMaxMessageLength) {
    return absl::InvalidArgumentError("SCRAM verifier is too long");
  }
  if (text.substr(0, kVerifierPrefix.size()) != kVerifierPrefix) {
    return absl::InvalidArgumentError("SCRAM verifier does not start with \"SCRAM-SHA-256$\"");
  }
  text.remove_prefix(kVerifierPrefix.size());
  const size_t dollar = text.find('$');
  if (dollar == std::string_view::npos) {
    return absl::InvalidArgumentError("SCRAM verifier has no '$' before the keys");
  }
  const std::string_view params = text.substr(0, dollar);
  const std::string_view keys = text.substr(dollar + 1);
  const size_t colon = params.find(':');
  if (colon == std::string_view::npos) {
    return absl::InvalidArgumentError("SCRAM verifier has no ':' between iterations and salt");
  }
  ScramVerifier verifier;
  // Any count PostgreSQL stores is accepted here: checking a proof costs the
  // server no PBKDF2, only the client pays for the iterations.
  if (!ParseIterations(params.substr(0, colon), INT_MAX, &verifier.iterations)) {
    return absl::InvalidArgumentError("SCRAM verifier has an invalid iteration count");
  }
  if (!Base64Decode(params.substr(colon + 1), &verifier.salt) || verifier.salt.empty()) {
    return absl::InvalidArgumentError("SCRAM verifier has an invalid salt (not base64 or empty)");
  }
  const size_t key_colon = keys.find(':');
  if (key_colon == std::string_view::npos) {
    return absl::InvalidArgumentError("SCRAM verifier has no ':' between StoredKey and ServerKey");
  }
  if (!Base64Decode(keys.substr(0, key_colon), &verifier.stored_key) ||
      verifier.stored_key.size() != kScramKeyLength) {
    Cleanse(verifier.stored_key);
    return absl::InvalidArgumentError(
        "SCRAM verifier has an invalid StoredKey (not 32 bytes of base64)");
  }
  if (!Base64Decode(keys.substr(key_colon + 1), &verifier.server_key) ||
      verifier.server_key.size() != kScramKeyLength) {
    Cleanse(verifier.stored_key);
    Cleanse(verifier.server_key);
    return absl::InvalidArgumentError(
        "SCRAM verifier has an invalid ServerKey (not 32 bytes of base64)");
  }
  return verifier;
}

absl::StatusOr<std::string> MakeScramVerifier(std::string_view password, int iterations) {
  std::string salt;
  PGB_RETURN_IF_ERROR(RandomBytes(kScramSaltLength, &salt));
  PGB_ASSIGN_OR_RETURN(ScramVerifier verifier,
                       internal_scram::DeriveScramVerifier(password, salt, iterations));
  std::string text = internal_scram::FormatScramVerifier(verifier);
  Cleanse(verifier.stored_key);
  Cleanse(verifier.server_key);
  return text;
}

// ---------------------------------------------------------------------------
// ScramServer

ScramServer::ScramServer(const ScramVerifier* verifier, std::string_view user_name) {
  if (verifier != nullptr && VerifierUsable(*verifier)) {
    verifier_ = *verifier;
    return;
  }
  if (verifier != nullptr) {
    // As PostgreSQL does for a pg_authid entry it cannot parse: say so in the
    // log, then fail the exchange like a wrong password.
    PGB_LOG(kWarning) << "SCRAM verifier for user \"" << user_name
                      << "\" is unusable; authentication will fail";
  }
  doomed_ = true;
  absl::StatusOr<ScramVerifier> mock = MockVerifier(user_name);
  if (mock.ok()) {
    verifier_ = *std::move(mock);
  } else {
    setup_status_ = mock.status();
  }
}

ScramServer::~ScramServer() {
  Cleanse(verifier_.stored_key);
  Cleanse(verifier_.server_key);
}

ScramServer ScramServer::ForTest(const ScramVerifier* verifier, std::string_view user_name,
                                 std::string_view server_nonce) {
  ScramServer server(verifier, user_name);
  server.fixed_server_nonce_.assign(server_nonce);
  return server;
}

void ScramServer::UseChannelBinding(std::string end_point, bool plus_selected) {
  cbind_offered_ = true;
  plus_selected_ = plus_selected;
  end_point_ = std::move(end_point);
}

// client-first-message = gs2-header client-first-message-bare
// gs2-header = gs2-cbind-flag "," [authzid] ","
// client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
absl::StatusOr<std::string> ScramServer::HandleClientFirst(std::string_view client_first) {
  if (state_ != State::kExpectClientFirst) {
    return absl::FailedPreconditionError("SCRAM: unexpected client-first-message");
  }
  state_ = State::kDone;  // any failure below ends the exchange
  PGB_RETURN_IF_ERROR(setup_status_);
  PGB_RETURN_IF_ERROR(CheckMessage(client_first, "client-first-message"));

  std::string_view in = client_first;
  switch (in[0]) {
    case 'n':
    case 'y':
      if (plus_selected_) {
        return absl::InvalidArgumentError(
            "SCRAM: the client selected SCRAM-SHA-256-PLUS but requested no channel binding");
      }
      // 'y': the client could bind but thinks we cannot. Where we offered
      // -PLUS, that is a downgrade by someone in the middle.
      if (in[0] == 'y' && cbind_offered_) {
        return absl::InvalidArgumentError("SCRAM channel binding negotiation error");
      }
      cbind_flag_ = in[0];
      in.remove_prefix(1);
      break;
    case 'p': {
      if (!plus_selected_) {
        return absl::InvalidArgumentError(
            cbind_offered_ ? "SCRAM: the client selected SCRAM-SHA-256 but requested channel "
                             "binding"
                           : "SCRAM: the client requires channel binding, which the server did "
                             "not offer");
      }
      constexpr std::string_view kType = "p=tls-server-end-point";
      if (in.substr(0, kType.size()) != kType) {
        return absl::InvalidArgumentError(
            "SCRAM: unsupported channel binding type (only tls-server-end-point)");
      }
      cbind_flag_ = 'p';
      in.remove_prefix(kType.size());
      break;
    }
    default:
      return Malformed("unexpected channel-binding flag");
  }
  if (in.empty() || in[0] != ',') return Malformed("comma expected after channel-binding flag");
  in.remove_prefix(1);
  if (!in.empty() && in[0] == 'a') {
    return absl::InvalidArgumentError("SCRAM: an authorization identity is not supported");
  }
  if (in.empty() || in[0] != ',') return Malformed("comma expected after authorization identity");
  in.remove_prefix(1);
  const std::string_view bare = in;
  gs2_header_.assign(client_first.substr(0, client_first.size() - bare.size()));

  if (!in.empty() && in[0] == 'm') {
    return absl::InvalidArgumentError("SCRAM: mandatory extensions are not supported");
  }
  std::string_view user_name;
  if (!ReadAttribute(&in, 'n', &user_name)) return Malformed("user name attribute expected");
  std::string_view client_nonce;
  if (!ReadAttribute(&in, 'r', &client_nonce)) return Malformed("nonce attribute expected");
  if (client_nonce.empty() || !IsScramPrintable(client_nonce)) {
    return Malformed("client nonce is empty or not printable");
  }
  while (!in.empty()) {
    char attr = 0;
    std::string_view ignored;
    if (!ReadAnyAttribute(&in, &attr, &ignored)) return Malformed("invalid extension attribute");
  }
  if (client_first.back() == ',') return Malformed("garbage at end of client-first-message");

  std::string server_nonce = fixed_server_nonce_;
  if (server_nonce.empty()) {
    std::string raw;
    PGB_RETURN_IF_ERROR(RandomBytes(kRawNonceLength, &raw));
    server_nonce = Base64Encode(raw);
  }
  client_first_bare_.assign(bare);
  nonce_ = Cat(client_nonce, server_nonce);
  server_first_ =
      Cat("r=", nonce_, ",s=", Base64Encode(verifier_.salt), ",i=", verifier_.iterations);
  state_ = State::kExpectClientFinal;
  return server_first_;
}

// client-final-message = channel-binding "," nonce ["," extensions] "," proof
absl::StatusOr<std::string> ScramServer::HandleClientFinal(std::string_view client_final) {
  if (state_ != State::kExpectClientFinal) {
    return absl::FailedPreconditionError("SCRAM: unexpected client-final-message");
  }
  state_ = State::kDone;
  PGB_RETURN_IF_ERROR(CheckMessage(client_final, "client-final-message"));

  std::string_view in = client_final;
  std::string_view channel_binding;
  if (!ReadAttribute(&in, 'c', &channel_binding)) {
    return Malformed("channel-binding attribute expected");
  }
  // c= is base64 of the gs2 header ("n,," -> "biws"), followed, with channel
  // binding, by the binding data: this proves the client saw our certificate.
  const std::string expected_cbind =
      Base64Encode(cbind_flag_ == 'p' ? Cat(gs2_header_, end_point_) : gs2_header_);
  if (channel_binding.size() != expected_cbind.size() ||
      CRYPTO_memcmp(channel_binding.data(), expected_cbind.data(), expected_cbind.size()) != 0) {
    return cbind_flag_ == 'p'
               ? absl::InvalidArgumentError(
                     "SCRAM channel binding check failed (the client saw another certificate)")
               : Malformed("unexpected channel-binding attribute in client-final-message");
  }
  std::string_view nonce;
  if (!ReadAttribute(&in, 'r', &nonce)) return Malformed("nonce attribute expected");
  if (nonce != nonce_) return Malformed("nonce does not match");

  std::string_view proof_b64;
  for (;;) {
    if (in.empty()) return Malformed("proof attribute expected");
    const size_t attr_start = static_cast<size_t>(in.data() - client_final.data());
    char attr = 0;
    std::string_view value;
    if (!ReadAnyAttribute(&in, &attr, &value)) return Malformed("invalid attribute");
    if (attr == 'p') {
      // Must be the last attribute: everything before ",p=" is signed.
      if (!in.empty() || client_final.back() == ',') {
        return Malformed("garbage at end of client-final-message");
      }
      proof_b64 = value;
      // attr_start > 0: c= and r= came first.
      client_final = client_final.substr(0, attr_start - 1);
      break;
    }
  }
  std::string proof;
  if (!Base64Decode(proof_b64, &proof) || proof.size() != kScramKeyLength) {
    return Malformed("invalid client proof");
  }

  // ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); H(ClientKey) must be StoredKey.
  // The work is done for a doomed exchange too, so it takes the same time.
  const std::string auth_message = Cat(client_first_bare_, ",", server_first_, ",", client_final);
  Key client_signature;
  PGB_RETURN_IF_ERROR(Hmac(verifier_.stored_key, auth_message, &client_signature));
  Key client_key;
  for (size_t i = 0; i < client_key.size(); ++i) {
    client_key[i] = static_cast<unsigned char>(proof[i]) ^ client_signature[i];
  }
  Key computed_stored_key;
  const absl::Status hashed = Sha256(AsView(client_key), &computed_stored_key);
  Cleanse(client_key);
  Cleanse(proof);
  PGB_RETURN_IF_ERROR(hashed);
  const bool match =
      CRYPTO_memcmp(computed_stored_key.data(), verifier_.stored_key.data(), kScramKeyLength) == 0;
  if (!match || doomed_) {
    return absl::UnauthenticatedError("password authentication failed");
  }
  Key server_signature;
  PGB_RETURN_IF_ERROR(Hmac(verifier_.server_key, auth_message, &server_signature));
  return Cat("v=", Base64Encode(AsView(server_signature)));
}

// ---------------------------------------------------------------------------
// ScramClient

ScramClientKeyCache::~ScramClientKeyCache() {
  Cleanse(client_key_);
  Cleanse(stored_key_);
  Cleanse(server_key_);
}

ScramClient::ScramClient(std::string_view password, ScramClientKeyCache* cache)
    : password_(password), cache_(cache) {}

ScramClient::~ScramClient() {
  Cleanse(password_);
  Cleanse(expected_server_signature_);
}

ScramClient ScramClient::ForTest(std::string_view password, std::string_view client_nonce,
                                 std::string_view sasl_user_name) {
  ScramClient client(password);
  client.client_nonce_.assign(client_nonce);
  client.sasl_user_name_ = SaslName(sasl_user_name);
  return client;
}

std::string ScramClient::ClientFirst() {
  if (state_ == State::kStart) {
    state_ = State::kSentClientFirst;
    if (client_nonce_.empty()) {
      std::string raw;
      nonce_status_ = RandomBytes(kRawNonceLength, &raw);
      if (!nonce_status_.ok()) {
        PGB_LOG(kError) << "SCRAM client: " << nonce_status_.message();
        return "";
      }
      client_nonce_ = Base64Encode(raw);
    }
    client_first_bare_ = Cat("n=", sasl_user_name_, ",r=", client_nonce_);
  }
  if (!nonce_status_.ok()) return "";
  return Cat("n,,", client_first_bare_);
}

// server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count ["," extensions]
absl::StatusOr<std::string> ScramClient::HandleServerFirst(std::string_view server_first) {
  if (state_ != State::kSentClientFirst) {
    return absl::FailedPreconditionError("SCRAM: unexpected server-first-message");
  }
  state_ = State::kDone;
  PGB_RETURN_IF_ERROR(nonce_status_);
  PGB_RETURN_IF_ERROR(CheckMessage(server_first, "server-first-message"));

  std::string_view in = server_first;
  if (in[0] == 'm')
    return absl::InvalidArgumentError("SCRAM: mandatory extensions are not supported");
  std::string_view nonce;
  if (!ReadAttribute(&in, 'r', &nonce)) return Malformed("nonce attribute expected");
  if (nonce.size() <= client_nonce_.size() ||
      nonce.substr(0, client_nonce_.size()) != client_nonce_ || !IsScramPrintable(nonce)) {
    return Malformed("server nonce does not extend the client nonce");
  }
  std::string_view salt_b64;
  if (!ReadAttribute(&in, 's', &salt_b64)) return Malformed("salt attribute expected");
  std::string salt;
  if (!Base64Decode(salt_b64, &salt) || salt.empty()) return Malformed("invalid salt");
  std::string_view iterations_text;
  if (!ReadAttribute(&in, 'i', &iterations_text)) {
    return Malformed("iteration count attribute expected");
  }
  int iterations = 0;
  if (!ParseIterations(iterations_text, kScramMaxIterations, &iterations)) {
    return Malformed(Cat("iteration count not in 1..", kScramMaxIterations));
  }
  // As libpq: no extensions are defined, so anything more is refused.
  if (!in.empty() || server_first.back() == ',') {
    return Malformed("garbage at end of server-first-message");
  }

  ClientAndServerKeys keys;
  if (cache_ != nullptr && cache_->valid_ && cache_->iterations_ == iterations &&
      cache_->salt_ == salt) {
    keys.client_key = cache_->client_key_;
    keys.stored_key = cache_->stored_key_;
    keys.server_key = cache_->server_key_;
  } else {
    PGB_RETURN_IF_ERROR(DeriveKeys(password_, salt, iterations, &keys));
    if (cache_ != nullptr) {
      derived_.valid_ = true;
      derived_.salt_ = salt;
      derived_.iterations_ = iterations;
      derived_.client_key_ = keys.client_key;
      derived_.stored_key_ = keys.stored_key;
      derived_.server_key_ = keys.server_key;
    }
  }
  const std::string client_final_without_proof = Cat("c=biws,r=", nonce);
  const std::string auth_message =
      Cat(client_first_bare_, ",", server_first, ",", client_final_without_proof);
  Key client_signature;
  PGB_RETURN_IF_ERROR(Hmac(AsView(keys.stored_key), auth_message, &client_signature));
  Key proof;
  for (size_t i = 0; i < proof.size(); ++i) proof[i] = keys.client_key[i] ^ client_signature[i];
  PGB_RETURN_IF_ERROR(Hmac(AsView(keys.server_key), auth_message, &expected_server_signature_));
  state_ = State::kSentClientFinal;
  return Cat(client_final_without_proof, ",p=", Base64Encode(AsView(proof)));
}

// server-final-message = (server-error / verifier) ["," extensions]
absl::Status ScramClient::HandleServerFinal(std::string_view server_final) {
  if (state_ != State::kSentClientFinal) {
    return absl::FailedPreconditionError("SCRAM: unexpected server-final-message");
  }
  state_ = State::kDone;
  PGB_RETURN_IF_ERROR(CheckMessage(server_final, "server-final-message"));

  std::string_view in = server_final;
  std::string_view value;
  if (ReadAttribute(&in, 'e', &value)) {
    return absl::UnauthenticatedError(Cat("SCRAM authentication failed: the server reported \"",
                                          SanitizeServerError(value), "\""));
  }
  if (!ReadAttribute(&in, 'v', &value)) return Malformed("verifier attribute expected");
  if (!in.empty() || server_final.back() == ',') {
    return Malformed("garbage at end of server-final-message");
  }
  std::string signature;
  if (!Base64Decode(value, &signature) || signature.size() != kScramKeyLength) {
    return Malformed("invalid server signature");
  }
  if (CRYPTO_memcmp(signature.data(), expected_server_signature_.data(), kScramKeyLength) != 0) {
    return absl::UnauthenticatedError("SCRAM: incorrect server signature");
  }
  if (cache_ != nullptr && derived_.valid_) *cache_ = std::move(derived_);
  return absl::OkStatus();
}

}  // namespace pgb::proto
