#include "core/secret.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "absl/strings/ascii.h"
#include "base/file_read.h"
#include "base/str_cat.h"

namespace pgb {
namespace {

constexpr size_t kMaxPasswordFileSize = 64 << 10;

bool IsEnvName(std::string_view name) {
  if (name.empty() || absl::ascii_isdigit(static_cast<unsigned char>(name.front()))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

}  // namespace

void ReadSecretKeys(TomlTableReader& reader, std::string_view file_key, std::string_view env_key,
                    const std::function<std::string(std::string_view)>& resolve, bool check_files,
                    Secret* out) {
  const toml::node* file_node = reader.Get(file_key);
  const toml::node* env_node = reader.Get(env_key);
  std::optional<std::string> file = reader.String(file_key);
  std::optional<std::string> env = reader.String(env_key);
  if (file_node != nullptr && env_node != nullptr) {
    reader.Error(env_key, Cat("set either ", file_key, " or ", env_key, ", not both"));
    return;
  }
  if (file.has_value()) {
    if (file->empty()) {
      reader.Error(file_key, "must not be empty");
      return;
    }
    const std::string resolved = resolve(*file);
    if (!check_files) return;
    absl::StatusOr<FileContents> read = ReadRegularFile(resolved, kMaxPasswordFileSize);
    if (!read.ok()) {
      reader.Error(file_key, std::string(read.status().message()));
      return;
    }
    if ((read->mode & 077) != 0) {
      char mode[8];
      std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(read->mode & 07777));
      reader.Error(file_key,
                   Cat("\"", resolved, "\" has mode ", mode,
                       "; it must not be readable by group or others: chmod 600 ", resolved));
      return;
    }
    std::string_view first_line = read->contents;
    first_line = first_line.substr(0, first_line.find('\n'));
    if (!first_line.empty() && first_line.back() == '\r') first_line.remove_suffix(1);
    if (first_line.empty()) {
      reader.Error(file_key, Cat("\"", resolved, "\" is empty; its first line is the password"));
      return;
    }
    *out = Secret(std::string(first_line));
  } else if (env.has_value()) {
    if (!IsEnvName(*env)) {
      reader.Error(env_key, Cat("\"", *env, "\" is not an environment variable name"));
      return;
    }
    if (!check_files) return;
    const char* value = std::getenv(env->c_str());
    if (value == nullptr) {
      reader.Error(env_key, Cat("environment variable ", *env, " is not set"));
    } else if (*value == '\0') {
      reader.Error(env_key, Cat("environment variable ", *env, " is empty"));
    } else {
      *out = Secret(value);
    }
  }
}

}  // namespace pgb
