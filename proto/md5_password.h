// The reply to AuthenticationMD5Password, for the gateway logging in to a
// PostgreSQL server that still stores md5 passwords (pg_md5_encrypt() in
// PostgreSQL's src/common/md5_common.c, used twice by libpq's pg_password_sendauth).
// Spec: https://www.postgresql.org/docs/15/protocol-flow.html#id-1.10.6.7.3
//
//   // salt4: the 4 bytes after the Int32 5 in AuthenticationMD5Password.
//   std::string reply = Md5PasswordResponse("alice", password, salt4);
//   if (reply.empty()) return absl::InternalError("MD5 unavailable");
//   ... send PasswordMessage(reply) ...
#pragma once

#include <string>
#include <string_view>

namespace pgb::proto {

// "md5" + hex(md5(hex(md5(password + user)) + salt4)), 35 characters.
// Returns "" if MD5 is unavailable (an OpenSSL configured for FIPS only).
std::string Md5PasswordResponse(std::string_view user, std::string_view password,
                                std::string_view salt4);

}  // namespace pgb::proto
