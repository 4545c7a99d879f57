#include "proto/md5_password.h"

#include <string>

#include "gtest/gtest.h"

namespace pgb::proto {
namespace {

// Expected values from PostgreSQL 15.20 (a throwaway initdb), where role bob
// was created with password_encryption = 'md5' and PASSWORD 'secret':
//   SELECT rolpassword FROM pg_authid WHERE rolname = 'bob';
//     -> md521f3163f8f86fa10bdefbfbd502a8f06   (md5('secret' || 'bob'))
//   SELECT 'md5' || md5(substr(rolpassword, 4) || 'abcd') FROM pg_authid WHERE rolname = 'bob';
//     -> md595b9eb35c215f6feb0a53d6ecdb802fb
//   SELECT 'md5' || md5(convert_to(substr(rolpassword, 4), 'UTF8') || '\x00ff7f80'::bytea) ...;
//     -> md5e1aabe7a63bfba495d7aaafca6f49231
TEST(Md5PasswordTest, MatchesPostgres) {
  EXPECT_EQ(Md5PasswordResponse("bob", "secret", "abcd"), "md595b9eb35c215f6feb0a53d6ecdb802fb");
}

TEST(Md5PasswordTest, SaltIsRawBytes) {
  const std::string salt("\x00\xff\x7f\x80", 4);
  EXPECT_EQ(Md5PasswordResponse("bob", "secret", salt), "md5e1aabe7a63bfba495d7aaafca6f49231");
}

TEST(Md5PasswordTest, DependsOnEveryInput) {
  const std::string base = Md5PasswordResponse("bob", "secret", "abcd");
  EXPECT_EQ(base.size(), 35u);
  EXPECT_NE(Md5PasswordResponse("bob2", "secret", "abcd"), base);
  EXPECT_NE(Md5PasswordResponse("bob", "secreu", "abcd"), base);
  EXPECT_NE(Md5PasswordResponse("bob", "secret", "abce"), base);
  // Password first, then user, as PostgreSQL concatenates them.
  EXPECT_NE(Md5PasswordResponse("secret", "bob", "abcd"), base);
}

}  // namespace
}  // namespace pgb::proto
