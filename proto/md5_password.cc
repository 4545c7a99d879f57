#include "proto/md5_password.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>

namespace pgb::proto {
namespace {

constexpr size_t kMd5Length = 16;

// Appends hex(md5(a + b)) to *out; false if MD5 is unavailable.
bool AppendMd5Hex(std::string_view a, std::string_view b, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string input;
  input.reserve(a.size() + b.size());
  input.append(a).append(b);
  std::array<unsigned char, kMd5Length> digest{};
  unsigned int length = 0;
  const bool ok =
      EVP_Digest(input.data(), input.size(), digest.data(), &length, EVP_md5(), nullptr) == 1 &&
      length == digest.size();
  OPENSSL_cleanse(input.data(), input.size());  // holds the password the first time
  if (!ok) return false;
  for (unsigned char byte : digest) {
    out->push_back(kHex[byte >> 4]);
    out->push_back(kHex[byte & 0xF]);
  }
  return true;
}

}  // namespace

std::string Md5PasswordResponse(std::string_view user, std::string_view password,
                                std::string_view salt4) {
  // The inner hash is what pg_authid stores (after "md5"): the real secret.
  std::string inner;
  inner.reserve(2 * kMd5Length);
  std::string response = "md5";
  const bool ok = AppendMd5Hex(password, user, &inner) && AppendMd5Hex(inner, salt4, &response);
  OPENSSL_cleanse(inner.data(), inner.size());
  if (!ok) return "";
  return response;
}

}  // namespace pgb::proto
