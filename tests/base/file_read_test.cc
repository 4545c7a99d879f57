#include "base/file_read.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pgb {
namespace {

using ::testing::HasSubstr;

class FileReadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/pgb_file_read_XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& contents, mode_t mode) {
    const std::string path = dir_ + "/" + name;
    FILE* f = std::fopen(path.c_str(), "wb");
    EXPECT_EQ(std::fwrite(contents.data(), 1, contents.size(), f), contents.size());
    std::fclose(f);
    EXPECT_EQ(chmod(path.c_str(), mode), 0);
    return path;
  }

  std::string dir_;
};

TEST_F(FileReadTest, ReadsARegularFileWithItsMode) {
  absl::StatusOr<FileContents> file = ReadRegularFile(Write("a", "hello\n", 0640), 100);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->contents, "hello\n");
  EXPECT_EQ(file->mode & 0777, 0640u);
}

TEST_F(FileReadTest, RefusesMissingLargeAndNonRegularFiles) {
  EXPECT_EQ(ReadRegularFile(dir_ + "/none", 100).status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<FileContents> large =
      ReadRegularFile(Write("big", std::string(101, 'x'), 0600), 100);
  EXPECT_EQ(large.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(large.status().message()), HasSubstr("is larger than 100 bytes"));
  EXPECT_THAT(std::string(ReadRegularFile(dir_, 100).status().message()),
              HasSubstr("is not a regular file"));
}

TEST_F(FileReadTest, SecretIsTheFirstLineOfAPrivateFile) {
  absl::StatusOr<std::string> secret = ReadSecretFile(Write("token", "s3cret\r\nrest\n", 0600));
  ASSERT_TRUE(secret.ok()) << secret.status();
  EXPECT_EQ(*secret, "s3cret");
}

TEST_F(FileReadTest, SecretFileMustBePrivateAndNotEmpty) {
  absl::StatusOr<std::string> shared = ReadSecretFile(Write("shared", "s3cret\n", 0644));
  EXPECT_EQ(shared.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(shared.status().message()), HasSubstr("mode 600"));
  EXPECT_THAT(std::string(shared.status().message()), ::testing::Not(HasSubstr("s3cret")));
  EXPECT_EQ(ReadSecretFile(Write("empty", "\n", 0600)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadSecretFile(dir_ + "/none").status().code(), absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace pgb
