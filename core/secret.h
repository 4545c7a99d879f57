// A secret the gateway holds (a database password), and the one reader of
// the config keys that name where it comes from: a file readable only by the
// service (`password_file`, first line) or an environment variable
// (`password_env`); never the config file itself. Secret cannot be printed.
//
//   TomlTableReader reader(table, "target[0]", {..., "password_file", "password_env"}, sink);
//   Secret password;
//   ReadSecretKeys(reader, "password_file", "password_env", resolve, true, &password);
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "base/toml_table.h"

namespace pgb {

// A secret value: no operator<<, no implicit conversion. Read with Reveal()
// only where it is sent to the database.
class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}
  const std::string& Reveal() const { return value_; }
  bool empty() const { return value_.empty(); }

 private:
  std::string value_;
};

// Reads `file_key` (a path, resolved by `resolve`; mode must deny group and
// others) or `env_key` (a variable name) of `reader`'s table into `out`;
// neither present leaves `out` empty. Problems are reported on the reader,
// naming the key, never the value. `check_files` false: only the keys'
// shape is checked (tools that need no secrets).
void ReadSecretKeys(TomlTableReader& reader, std::string_view file_key, std::string_view env_key,
                    const std::function<std::string(std::string_view)>& resolve, bool check_files,
                    Secret* out);

}  // namespace pgb
