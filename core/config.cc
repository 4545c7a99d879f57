#include "core/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/time/time.h"
#include "base/file_read.h"
#include "base/str_cat.h"
#include "base/toml_table.h"
#include "core/audit/audit_config_parse.h"
#include "policy/issuer_config_toml.h"
#include "policy/policy_config.h"
#include "proto/scram.h"
#include "toml++/toml.h"

// Debian's libtomlplusplus3 is built with exceptions (only the toml::v3::ex
// ABI namespace is exported), so with TOML_EXCEPTIONS=0 this file would fail to
// link against it. Both forms are handled anyway: the parse is the only call
// that can report a syntax error, and it never lets an exception escape.

namespace pgb {
namespace {

std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  for (;;) {
    const size_t end = text.find(separator);
    parts.push_back(text.substr(0, end));
    if (end == std::string_view::npos) return parts;
    text.remove_prefix(end + 1);
  }
}

constexpr int kMaxWorkers = 1024;
constexpr int64_t kMinMessageSize = 1024;
constexpr int64_t kMaxMessageSize = 0x3fffffff;  // PostgreSQL's MaxAllocSize - 1
constexpr size_t kMaxNameLength = 63;            // PostgreSQL's NAMEDATALEN - 1
constexpr size_t kMaxConfigFileSize = 4 << 20;
// sockaddr_un's sun_path holds the socket's path and its terminating NUL.
constexpr size_t kMaxSocketPath = sizeof(sockaddr_un::sun_path) - 1;

// One error: where it is (for ordering and the location suffix) and its line.
struct ConfigError {
  uint32_t line = 0;
  uint32_t column = 0;
  std::string text;
};

// Walks the parsed TOML document, collecting every error rather than stopping
// at the first, and builds the Config.
class ConfigParser {
 public:
  ConfigParser(std::string_view origin, std::string_view base_dir, ConfigOptions options)
      : origin_(origin), base_dir_(base_dir), options_(options) {}

  void AddError(const toml::source_region& where, std::string_view path, std::string_view message) {
    ConfigError error{where.begin.line, where.begin.column, Cat(path, ": ", message)};
    if (where.begin.line > 0) {
      error.text += Cat(" (", origin_, ":", where.begin.line, ":", where.begin.column, ")");
    }
    errors_.push_back(std::move(error));
  }

  void AddSyntaxError(const toml::source_region& where, std::string_view description) {
    errors_.push_back({where.begin.line, where.begin.column,
                       Cat(origin_, ":", where.begin.line, ":", where.begin.column,
                           ": TOML syntax error: ", description)});
  }

  absl::StatusOr<Config> Parse(const toml::table& root);

  absl::Status ErrorStatus() {
    std::stable_sort(errors_.begin(), errors_.end(),
                     [](const ConfigError& a, const ConfigError& b) {
                       return std::tie(a.line, a.column) < std::tie(b.line, b.column);
                     });
    std::vector<std::string_view> lines;
    lines.reserve(errors_.size());
    for (const ConfigError& error : errors_) lines.push_back(error.text);
    return absl::InvalidArgumentError(Join(lines, "\n"));
  }

  std::string ResolvePath(std::string_view path) const {
    if (base_dir_.empty() || path.empty() || path.front() == '/') return std::string(path);
    return (std::filesystem::path(base_dir_) / std::filesystem::path(path))
        .lexically_normal()
        .string();
  }

 private:
  void ParseGateway(const toml::table& root, Config& config);
  void ParseListeners(const toml::table& root, Config& config);
  void ParseIssuers(const toml::table& root, Config& config);
  void ParseListener(const toml::table& table, const std::string& path, ListenerConfig& out);
  void ParseListenerAuth(TomlTableReader& reader, const toml::node& node, ListenerConfig& out);
  // socket_dir, socket_mode, socket_group: a Unix-domain socket listener.
  void ParseSocketListener(TomlTableReader& reader, ListenerConfig& out);
  void ParseTarget(const toml::table& table, const std::string& path, TargetConfig& out);
  void ParseUser(const toml::table& table, const std::string& path, UserConfig& out);
  // [[scope]] role tables (core/role_config.h), and the targets they need.
  void ParseScopeRoles(const toml::table& root, Config& config);
  void CheckScopeRoles(const toml::table& root, const Config& config);

  // Visits each table of an array of tables; reports a missing or empty array
  // and elements that are not tables.
  template <typename Fn>
  void ForEachTableOf(const toml::table& root, std::string_view key, Fn&& fn);
  // [[target]], [[user]]: each table read by `parse` into `out`; names are unique.
  template <typename T>
  void ParseNamedTables(const toml::table& root, std::string_view key,
                        void (ConfigParser::*parse)(const toml::table&, const std::string&, T&),
                        std::vector<T>& out);

  // Checks that `path` (already resolved) names a readable regular file.
  void CheckReadableFile(const toml::source_region& where, const std::string& key_path,
                         const std::string& path);

  std::string origin_;
  std::string base_dir_;
  ConfigOptions options_;
  std::vector<ConfigError> errors_;
  // Where the table readers and the [[scope]], [[issuer]] and [audit] parsers report.
  const TomlProblemSink sink_ = [this](const toml::source_region& where, std::string_view path,
                                       std::string_view message) {
    AddError(where, path, message);
  };
};

template <typename Fn>
void ConfigParser::ForEachTableOf(const toml::table& root, std::string_view key, Fn&& fn) {
  const toml::node* node = root.get(key);
  const toml::array* array = node != nullptr ? node->as_array() : nullptr;
  if (node == nullptr || (array != nullptr && array->empty())) {
    AddError(node != nullptr ? node->source() : root.source(), key,
             Cat("at least one [[", key, "]] is required"));
    return;
  }
  ForEachTomlTable(*node, key, sink_, fn);
}

void ConfigParser::CheckReadableFile(const toml::source_region& where, const std::string& key_path,
                                     const std::string& path) {
  if (!options_.check_files) return;
  const int fd = ::open(path.c_str(),
                        O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);  // a FIFO must not block us
  if (fd < 0) {
    AddError(where, key_path, Cat("cannot open \"", path, "\": ", std::strerror(errno)));
    return;
  }
  struct stat st;
  if (::fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
    AddError(where, key_path, Cat("\"", path, "\" is not a regular file"));
  }
  ::close(fd);
}

void ConfigParser::ParseGateway(const toml::table& root, Config& config) {
  const toml::node* node = root.get("gateway");
  if (node == nullptr) return;  // every key has a default
  const toml::table* table = node->as_table();
  if (table == nullptr) {
    AddError(node->source(), "gateway",
             Cat("expected a table ([gateway]), got ", TomlTypeName(*node)));
    return;
  }
  TomlTableReader reader(*table, "gateway",
                         {"workers", "max_message_size", "max_statement_size",
                          "analysis_cache_size", "auth_timeout", "shutdown_timeout", "log_level"},
                         sink_);
  if (auto v = reader.Integer("workers", 0, kMaxWorkers)) config.workers = static_cast<int>(*v);
  if (auto v = reader.Integer("max_message_size", kMinMessageSize, kMaxMessageSize)) {
    config.max_message_size = static_cast<uint32_t>(*v);
  }
  if (auto v = reader.Integer("max_statement_size", kMinMessageSize, kMaxMessageSize)) {
    config.max_statement_size = static_cast<uint32_t>(*v);
  }
  if (auto v = reader.Integer("analysis_cache_size", 0, int64_t{1} << 40)) {
    config.analysis_cache_size = static_cast<size_t>(*v);
  }
  if (auto v = reader.Duration("auth_timeout")) config.auth_timeout = *v;
  if (auto v = reader.Duration("shutdown_timeout")) config.shutdown_timeout = *v;
  if (auto v = reader.Enum("log_level", {"debug", "info", "warning", "error"})) {
    constexpr LogLevel kLevels[] = {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarning,
                                    LogLevel::kError};
    config.log_level = kLevels[*v];
  }
}

void ConfigParser::ParseListenerAuth(TomlTableReader& reader, const toml::node& node,
                                     ListenerConfig& out) {
  const toml::array* list = node.as_array();
  if (list == nullptr) {
    reader.TypeError("auth", "an array of \"password\", \"token\", \"certificate\", \"peer\"",
                     node);
    return;
  }
  if (list->empty()) {
    reader.Error("auth",
                 "must name at least one of \"password\", \"token\", \"certificate\", \"peer\"");
    return;
  }
  for (size_t i = 0; i < list->size(); ++i) {
    const toml::node& element = *list->get(i);
    const std::string key = Cat(reader.KeyPath("auth"), "[", i, "]");
    const std::string* name = element.is_string() ? &element.as_string()->get() : nullptr;
    std::optional<LoginMethod> method;
    if (name != nullptr && *name == "password") method = LoginMethod::kPassword;
    if (name != nullptr && *name == "token") method = LoginMethod::kToken;
    if (name != nullptr && *name == "certificate") method = LoginMethod::kCertificate;
    if (name != nullptr && *name == "peer") method = LoginMethod::kPeer;
    if (!method.has_value()) {
      AddError(element.source(), key,
               "must be \"password\", \"token\", \"certificate\" or \"peer\"");
    } else if (out.Allows(*method)) {
      AddError(element.source(), key, Cat("\"", *name, "\" is listed twice"));
    } else {
      out.auth.push_back(*method);
    }
  }
}

// A Unix-domain socket carries no TLS: the TLS keys are refused rather than
// ignored, and a token (a bearer credential) may be sent in clear over it,
// since it never crosses a network. A process that could put its own socket
// where clients look for ours would collect those tokens, so with "token" the
// directory must not be writable by other users (docs/security.md).
void ConfigParser::ParseSocketListener(TomlTableReader& reader, ListenerConfig& out) {
  const std::optional<std::string> dir = reader.String("socket_dir");
  for (std::string_view key :
       {"address", "tls", "tls_cert", "tls_key", "tls_client_ca", "certificate_user_match"}) {
    if (reader.Has(key)) {
      reader.Error(key,
                   "not used with socket_dir: a Unix-domain socket listener has no address and "
                   "no TLS (use a second [[listener]] for TCP)");
    }
  }
  if (auto v = reader.Integer("port", 1, 65535)) out.port = static_cast<uint16_t>(*v);
  if (const toml::node* node = reader.Get("auth")) ParseListenerAuth(reader, *node, out);
  if (out.Allows(LoginMethod::kCertificate)) {
    reader.Error("auth", "\"certificate\" needs TLS, which a Unix-domain socket does not carry");
  }
  if (auto v = reader.String("socket_mode")) {
    const bool octal =
        (v->size() == 3 || v->size() == 4) &&
        std::all_of(v->begin(), v->end(), [](char c) { return c >= '0' && c <= '7'; });
    if (!octal || (v->size() == 4 && v->front() != '0')) {
      reader.Error("socket_mode", Cat("\"", *v,
                                      "\" is not a file mode; write it in octal as a string, "
                                      "for example \"0770\" or \"0777\""));
    } else {
      out.socket_mode = static_cast<uint32_t>(std::strtoul(v->c_str(), nullptr, 8));
    }
  }
  if (auto v = reader.String("socket_group")) {
    group buf;
    group* found = nullptr;
    std::vector<char> text(16384);
    if (v->empty()) {
      reader.Error("socket_group", "must not be empty");
    } else if (::getgrnam_r(v->c_str(), &buf, text.data(), text.size(), &found) != 0 ||
               found == nullptr) {
      reader.Error("socket_group", Cat("no group named \"", *v, "\""));
    } else {
      out.socket_group = found->gr_gid;
    }
  }
  if (!dir.has_value()) return;  // a type error, reported
  if (dir->empty() || dir->front() != '/') {
    reader.Error("socket_dir",
                 Cat("\"", *dir, "\" must be an absolute path (such as /run/pgbastion)"));
    return;
  }
  out.socket_dir = std::filesystem::path(*dir).lexically_normal().string();
  if (out.socket_dir.size() > 1 && out.socket_dir.back() == '/') out.socket_dir.pop_back();
  if (const std::string socket = out.SocketPath(); socket.size() > kMaxSocketPath) {
    reader.Error("socket_dir", Cat("the socket's path \"", socket, "\" is ", socket.size(),
                                   " bytes; a Unix-domain socket's path may have at most ",
                                   kMaxSocketPath, " (choose a shorter directory)"));
  }
  if (!options_.check_files) return;
  struct stat st;
  if (::stat(out.socket_dir.c_str(), &st) != 0) {
    reader.Error("socket_dir", Cat("cannot use \"", out.socket_dir, "\": ", std::strerror(errno),
                                   " (the gateway does not create it; with systemd, "
                                   "RuntimeDirectory=pgbastion creates /run/pgbastion)"));
  } else if (!S_ISDIR(st.st_mode)) {
    reader.Error("socket_dir", Cat("\"", out.socket_dir, "\" is not a directory"));
  }
}

void ConfigParser::ParseListener(const toml::table& table, const std::string& path,
                                 ListenerConfig& out) {
  TomlTableReader reader(
      table, path,
      {"address", "port", "tls", "tls_cert", "tls_key", "auth", "tls_client_ca",
       "certificate_user_match", "socket_dir", "socket_mode", "socket_group"},
      sink_,
      {{"ssl", "use \"tls\""},
       {"cert", "use \"tls_cert\""},
       {"key", "use \"tls_key\""},
       {"unix_socket_directories", "use \"socket_dir\" (one directory per [[listener]])"},
       {"unix_socket_permissions", "use \"socket_mode\""},
       {"unix_socket_group", "use \"socket_group\""}});
  if (reader.Has("socket_dir")) {
    ParseSocketListener(reader, out);
    return;
  }
  for (std::string_view key : {"socket_mode", "socket_group"}) {
    if (reader.Has(key)) reader.Error(key, "only used with socket_dir");
  }
  if (auto v = reader.String("address")) {
    unsigned char buf[sizeof(in6_addr)];
    if (inet_pton(AF_INET, v->c_str(), buf) != 1 && inet_pton(AF_INET6, v->c_str(), buf) != 1) {
      reader.Error("address", Cat("\"", *v,
                                  "\" is not an IPv4 or IPv6 address literal "
                                  "(for example \"127.0.0.1\", \"0.0.0.0\", \"::\")"));
    } else {
      out.address = *v;
    }
  }
  if (auto v = reader.Integer("port", 1, 65535)) out.port = static_cast<uint16_t>(*v);
  if (auto v = reader.String("tls_cert")) out.tls_cert_file = ResolvePath(*v);
  if (auto v = reader.String("tls_key")) out.tls_key_file = ResolvePath(*v);

  bool tls_valid = true;
  out.tls = reader.Has("tls_cert") ? ListenerTls::kOptional : ListenerTls::kDisabled;
  if (reader.Has("tls")) {
    constexpr ListenerTls kModes[] = {ListenerTls::kDisabled, ListenerTls::kOptional,
                                      ListenerTls::kRequired};
    if (auto v = reader.Enum("tls", {"disabled", "optional", "required"})) {
      out.tls = kModes[*v];
    } else {
      tls_valid = false;
    }
  }
  if (const toml::node* node = reader.Get("auth")) ParseListenerAuth(reader, *node, out);
  if (out.Allows(LoginMethod::kPeer)) {
    reader.Error("auth",
                 "\"peer\" needs a Unix-domain socket listener (socket_dir): only there does "
                 "the kernel say which OS user connected");
  }
  if (tls_valid && out.tls == ListenerTls::kDisabled && out.Allows(LoginMethod::kToken)) {
    reader.Error("auth",
                 "\"token\" needs tls = \"optional\" or \"required\": a token travels as a "
                 "cleartext password and is accepted only over TLS");
  }
  if (auto v = reader.String("tls_client_ca")) out.tls_client_ca_file = ResolvePath(*v);
  if (auto v = reader.Enum("certificate_user_match", {"subject", "ignore"})) {
    out.certificate_user_must_match = *v == 0;
  }
  if (tls_valid && out.tls == ListenerTls::kDisabled && out.Allows(LoginMethod::kCertificate)) {
    reader.Error("auth", "\"certificate\" needs tls = \"optional\" or \"required\"");
  }
  if (out.Allows(LoginMethod::kCertificate) && !reader.Has("tls_client_ca")) {
    reader.Error("tls_client_ca",
                 "required with auth \"certificate\" (PEM file of the CAs that sign client "
                 "certificates)");
  }
  if (reader.Has("tls_client_ca") && !out.Allows(LoginMethod::kCertificate)) {
    reader.Error("tls_client_ca", "only used with auth = [..., \"certificate\"]");
  }
  if (!tls_valid || out.tls == ListenerTls::kDisabled) return;
  if (const toml::node* node = reader.Get("tls_client_ca"); node != nullptr && node->is_string()) {
    CheckReadableFile(node->source(), reader.KeyPath("tls_client_ca"), out.tls_client_ca_file);
  }
  for (const auto& [key, file] :
       {std::pair<std::string_view, const std::string*>{"tls_cert", &out.tls_cert_file},
        {"tls_key", &out.tls_key_file}}) {
    const toml::node* node = reader.Get(key);
    if (node == nullptr) {
      reader.Error(key, "required unless tls = \"disabled\" (PEM file)");
    } else if (node->is_string()) {
      if (file->empty()) {
        reader.Error(key, "must not be empty");
      } else {
        CheckReadableFile(node->source(), reader.KeyPath(key), *file);
      }
    }
  }
}

void ConfigParser::ParseListeners(const toml::table& root, Config& config) {
  ForEachTableOf(root, "listener", [&](const toml::table& table, const std::string& path, size_t) {
    ListenerConfig listener;
    ParseListener(table, path, listener);
    config.listeners.push_back(std::move(listener));
  });
  // Duplicates compare the binary address, so "::1" and "0:0::1" collide.
  absl::flat_hash_map<std::string, size_t> seen;
  for (size_t i = 0; i < config.listeners.size(); ++i) {
    const ListenerConfig& listener = config.listeners[i];
    std::string key;
    if (listener.local()) {
      key = Cat("unix:", listener.SocketPath());
    } else {
      unsigned char buf[sizeof(in6_addr)] = {};
      const int family = listener.address.find(':') == std::string::npos ? AF_INET : AF_INET6;
      if (inet_pton(family, listener.address.c_str(), buf) != 1) continue;  // reported already
      key = Cat(family, ":", listener.port, ":");
      key.append(reinterpret_cast<const char*>(buf), sizeof(buf));
    }
    auto [it, inserted] = seen.emplace(std::move(key), i);
    if (!inserted) {
      const toml::node* node = root.get("listener")->as_array()->get(i);
      AddError(node->source(), Cat("listener[", i, "]"),
               Cat("duplicate listener ",
                   listener.local() ? listener.SocketPath()
                                    : Cat(listener.address, " port ", listener.port),
                   " (also listener[", it->second, "])"));
    }
  }
}

bool IsTargetName(std::string_view name) {
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

// An IP literal or a DNS name (letters, digits, '-', '.'; labels of 1..63).
bool IsHost(std::string_view host) {
  unsigned char buf[sizeof(in6_addr)];
  const std::string text(host);
  if (inet_pton(AF_INET, text.c_str(), buf) == 1 || inet_pton(AF_INET6, text.c_str(), buf) == 1) {
    return true;
  }
  if (host.empty() || host.size() > 253) return false;
  if (host.back() == '.') host.remove_suffix(1);
  for (std::string_view label : Split(host, '.')) {
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    }
  }
  return true;
}

void ConfigParser::ParseTarget(const toml::table& table, const std::string& path,
                               TargetConfig& out) {
  TomlTableReader reader(
      table, path,
      {"name", "host", "port", "database", "user", "password_file", "password_env", "tls", "tls_ca",
       "tls_server_name", "connect_timeout", "provision_user", "provision_password_file",
       "provision_password_env", "reassign_owned_to"},
      sink_,
      {{"password",
        "passwords are never stored in this file; use password_file (a file with mode 600) "
        "or password_env (an environment variable)"},
       {"dbname", "use \"database\""},
       {"sslmode", "use \"tls\" (disable | require | verify-ca | verify-full)"},
       {"sslrootcert", "use \"tls_ca\""}});
  if (auto v = reader.RequiredString("name", "clients select the target with dbname=<name>")) {
    if (v->size() > kMaxNameLength || !IsTargetName(*v)) {
      reader.Error("name", Cat("\"", *v, "\" must be 1..", kMaxNameLength,
                               " characters of A-Z a-z 0-9 _ . -"));
    } else {
      out.name = *v;
    }
  }
  if (auto v = reader.RequiredString(
          "host", "IP address or DNS name of the database server, or its socket directory")) {
    if (!v->empty() && v->front() == '/') {
      // As libpq reads host: a directory holding the server's .s.PGSQL.<port>.
      if (v->size() + sizeof("/.s.PGSQL.65535") > sizeof(sockaddr_un::sun_path)) {
        reader.Error("host",
                     Cat("socket directory \"", *v, "\" is too long (at most ",
                         sizeof(sockaddr_un::sun_path) - sizeof("/.s.PGSQL.65535"), " bytes)"));
      } else {
        out.host = *v;
      }
    } else if (!IsHost(*v)) {
      reader.Error(
          "host",
          Cat("\"", *v, "\" is not an IP address, a DNS name or an absolute socket directory"));
    } else {
      out.host = *v;
    }
  }
  if (auto v = reader.Integer("port", 1, 65535)) out.port = static_cast<uint16_t>(*v);
  out.database = out.name;
  if (auto v = reader.String("database")) {
    if (v->empty() || v->size() > kMaxNameLength) {
      reader.Error("database", Cat("must be 1..", kMaxNameLength, " bytes"));
    } else {
      out.database = *v;
    }
  }
  if (auto v = reader.RequiredString("user", "the role the gateway logs in as")) {
    if (v->size() > kMaxNameLength) {
      reader.Error("user", Cat("must be 1..", kMaxNameLength, " bytes"));
    } else {
      out.user = *v;
    }
  }
  if (auto v = reader.Duration("connect_timeout")) out.connect_timeout = *v;

  // TLS to the database (libpq's sslmode names).
  if (auto v = reader.String("tls_ca")) out.tls_ca_file = ResolvePath(*v);
  bool tls_valid = true;
  out.tls = reader.Has("tls_ca") ? BackendTls::kVerifyFull : BackendTls::kDisable;
  if (reader.Has("tls")) {
    constexpr BackendTls kModes[] = {BackendTls::kDisable, BackendTls::kRequire,
                                     BackendTls::kVerifyCa, BackendTls::kVerifyFull};
    if (auto v = reader.Enum("tls", {"disable", "require", "verify-ca", "verify-full"})) {
      out.tls = kModes[*v];
    } else {
      tls_valid = false;
    }
  }
  const bool verifies = out.tls == BackendTls::kVerifyCa || out.tls == BackendTls::kVerifyFull;
  if (const toml::node* ca = reader.Get("tls_ca"); tls_valid && ca != nullptr && ca->is_string()) {
    // A CA with a mode that does not verify would look safer than it is.
    if (!verifies) {
      reader.Error("tls_ca", "is only used with tls = \"verify-ca\" or \"verify-full\"");
    } else if (out.tls_ca_file.empty()) {
      reader.Error("tls_ca", "must not be empty");
    } else {
      CheckReadableFile(ca->source(), reader.KeyPath("tls_ca"), out.tls_ca_file);
    }
  } else if (tls_valid && verifies && !reader.Has("tls_ca")) {
    reader.Error("tls_ca", "required when tls = \"verify-ca\" or \"verify-full\" (PEM file)");
  }
  if (out.local() && tls_valid && out.tls != BackendTls::kDisable) {
    // PostgreSQL offers no TLS on its Unix-domain socket.
    reader.Error("tls", "must be \"disable\" for a Unix-domain socket (host is a directory)");
  }
  out.tls_server_name = out.local() ? "" : out.host;
  if (auto v = reader.String("tls_server_name")) {
    if (tls_valid && out.tls == BackendTls::kDisable) {
      reader.Error("tls_server_name", "is not used with tls = \"disable\"");
    } else if (!IsHost(*v)) {
      reader.Error("tls_server_name", Cat("\"", *v, "\" is not a DNS name"));
    } else {
      out.tls_server_name = *v;
    }
  }

  // The password. Its value (and the file's contents) never goes into a message.
  const auto resolve = [this](std::string_view p) { return ResolvePath(p); };
  ReadSecretKeys(reader, "password_file", "password_env", resolve, options_.check_files,
                 &out.password);
  // Temporary roles (core/role_config.h).
  if (auto v = reader.String("provision_user")) {
    if (v->empty() || v->size() > kMaxNameLength) {
      reader.Error("provision_user", Cat("must be 1..", kMaxNameLength, " bytes"));
    } else {
      out.provision_user = *v;
    }
  }
  if (auto v = reader.String("reassign_owned_to")) {
    if (v->empty() || v->size() > kMaxNameLength) {
      reader.Error("reassign_owned_to", Cat("must be 1..", kMaxNameLength, " bytes"));
    } else {
      out.reassign_owned_to = *v;
    }
  }
  if (out.provision_user.empty()) {
    for (std::string_view key :
         {"provision_password_file", "provision_password_env", "reassign_owned_to"}) {
      if (reader.Has(key)) reader.Error(key, "is only used with provision_user");
    }
    return;
  }
  if (out.reassign_owned_to.empty()) out.reassign_owned_to = out.provision_user;
  ReadSecretKeys(reader, "provision_password_file", "provision_password_env", resolve,
                 options_.check_files, &out.provision_password);
}

// One parser decides what a verifier is: the one the gateway logs clients in
// with (so a config that passes check-config also starts). Its messages name
// the part that is wrong, never the verifier itself.
absl::Status CheckScramVerifier(std::string_view verifier) {
  const absl::StatusOr<proto::ScramVerifier> parsed = proto::ParseScramVerifier(verifier);
  if (parsed.ok()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      Cat(std::string(parsed.status().message()),
          "; expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> "
          "(run `pgbastion scram-verifier`)"));
}

void ConfigParser::ParseUser(const toml::table& table, const std::string& path, UserConfig& out) {
  TomlTableReader reader(table, path, {"name", "scram_verifier", "targets", "groups"}, sink_,
                         {{"password",
                           "gateway users are configured with scram_verifier (from "
                           "`pgbastion scram-verifier`), never a password"}});
  if (auto v = reader.RequiredString("name", "the user name clients log in with")) {
    if (v->size() > kMaxNameLength) {
      reader.Error("name", Cat("must be 1..", kMaxNameLength, " bytes"));
    } else {
      out.name = *v;
    }
  }
  if (auto v = reader.RequiredString("scram_verifier", "from `pgbastion scram-verifier`")) {
    if (absl::Status checked = CheckScramVerifier(*v); !checked.ok()) {
      reader.Error("scram_verifier", std::string(checked.message()));
    } else {
      out.scram_verifier = *v;
    }
  }
  // Target names are checked against [[target]] in Parse, once all are known.
  if (const toml::node* node = reader.Get("targets")) {
    const toml::array* array = node->as_array();
    if (array == nullptr) {
      reader.TypeError("targets", "an array of target names", *node);
    } else if (array->empty()) {
      // An empty list reading as "all targets" would fail open.
      reader.Error("targets", "must name at least one target; omit the key to allow all targets");
    } else {
      for (size_t i = 0; i < array->size(); ++i) {
        const toml::node& element = *array->get(i);
        const std::string element_path = Cat(reader.KeyPath("targets"), "[", i, "]");
        if (!element.is_string()) {
          AddError(element.source(), element_path,
                   Cat("expected a string (target name), got ", TomlTypeName(element)));
          continue;
        }
        const std::string& name = element.as_string()->get();
        if (std::find(out.targets.begin(), out.targets.end(), name) != out.targets.end()) {
          AddError(element.source(), element_path, Cat("target \"", name, "\" is listed twice"));
          continue;
        }
        out.targets.push_back(name);
      }
    }
  }
  // Groups, matched by [[scope]] groups (policy/policy_config.h).
  if (const toml::node* node = reader.Get("groups")) {
    const toml::array* array = node->as_array();
    if (array == nullptr) {
      reader.TypeError("groups", "an array of group names", *node);
    } else {
      for (size_t i = 0; i < array->size(); ++i) {
        const toml::node& element = *array->get(i);
        if (!element.is_string() || element.as_string()->get().empty()) {
          AddError(element.source(), Cat(reader.KeyPath("groups"), "[", i, "]"),
                   "expected a non-empty string (group name)");
        } else {
          out.groups.push_back(element.as_string()->get());
        }
      }
    }
  }
}

template <typename T>
void ConfigParser::ParseNamedTables(const toml::table& root, std::string_view key,
                                    void (ConfigParser::*parse)(const toml::table&,
                                                                const std::string&, T&),
                                    std::vector<T>& out) {
  TomlUniqueNames names(key);
  ForEachTableOf(root, key, [&](const toml::table& table, const std::string& path, size_t index) {
    T value;
    (this->*parse)(table, path, value);
    names.Add(table, path, index, value.name, sink_);
    out.push_back(std::move(value));
  });
}

void ConfigParser::ParseScopeRoles(const toml::table& root, Config& config) {
  pgb::ParseScopeRoles(
      root, sink_,
      [this](TomlTableReader& reader, Secret* out) {
        ReadSecretKeys(
            reader, "password_file", "password_env",
            [this](std::string_view p) { return ResolvePath(p); }, options_.check_files, out);
      },
      &config.scope_roles);
}

// A scope with temporary roles needs a provisioning login on every target it
// may use.
void ConfigParser::CheckScopeRoles(const toml::table& root, const Config& config) {
  const toml::array* scopes = root.get("scope") ? root.get("scope")->as_array() : nullptr;
  for (size_t i = 0; scopes != nullptr && i < scopes->size(); ++i) {
    const toml::table* scope = scopes->get(i)->as_table();
    const toml::node* name = scope != nullptr ? scope->get("name") : nullptr;
    if (name == nullptr || !name->is_string()) continue;
    const RoleTemplate* role = config.FindRoleTemplate(name->as_string()->get());
    if (role == nullptr || role->mode != RoleTemplate::Mode::kTemporary) continue;
    std::vector<std::string> targets;
    if (const toml::node* listed = scope->get("targets"); listed && listed->as_array()) {
      for (const toml::node& t : *listed->as_array()) {
        if (t.is_string()) targets.push_back(t.as_string()->get());
      }
    }
    for (const TargetConfig& target : config.targets) {
      if (!targets.empty() &&
          std::find(targets.begin(), targets.end(), target.name) == targets.end()) {
        continue;
      }
      if (target.provision_user.empty()) {
        AddError(scope->get("role")->source(), Cat("scope[", i, "].role"),
                 Cat("temporary roles need a provisioning login on target \"", target.name,
                     "\": set provision_user and provision_password_file (or "
                     "provision_password_env) in its [[target]]"));
      }
    }
  }
}

// [[issuer]] is read by policy/issuer_config_toml.h; its problems join ours.
void ConfigParser::ParseIssuers(const toml::table& root, Config& config) {
  const toml::node* node = root.get("issuer");
  if (node == nullptr) return;
  config.issuers = policy::ParseIssuerTables(
      *node, [this](std::string_view path) { return ResolvePath(path); }, sink_);
}

absl::StatusOr<Config> ConfigParser::Parse(const toml::table& root) {
  Config config;
  {
    TomlTableReader top(root, "",
                        {"gateway", "listener", "target", "user", "scope", "audit", "issuer",
                         "login", "control", "approvals", "roles",
                          "recording"},
                        sink_);
    ParseGateway(root, config);
    ParseListeners(root, config);
    ParseNamedTables(root, "target", &ConfigParser::ParseTarget, config.targets);
    // With token identity providers, gateway-local users are optional.
    if (root.contains("user") || !root.contains("issuer")) {
      ParseNamedTables(root, "user", &ConfigParser::ParseUser, config.users);
    }
    audit::ParseAuditConfig(
        root.get("audit"), [this](std::string_view path) { return ResolvePath(path); }, sink_,
        &config.audit);
    ParseIssuers(root, config);
    ParseLoginConfig(root.get("login"), sink_, &config.login_throttle);
    ParseControlConfig(
        root.get("control"), [this](std::string_view path) { return ResolvePath(path); }, sink_,
        &config.control);
    approvals::ParseApprovalsConfig(
        root.get("approvals"), [this](std::string_view path) { return ResolvePath(path); }, sink_,
        &config.approvals);
    ParseRolesConfig(root.get("roles"), sink_, &config.roles);
    recording::ParseRecordingConfig(
        root.get("recording"), root.get("scope"),
        [this](std::string_view path) { return ResolvePath(path); }, sink_, &config.recording);
  }
  const toml::array* listener_tables =
      root.get("listener") ? root.get("listener")->as_array() : nullptr;
  for (size_t i = 0; i < config.listeners.size(); ++i) {
    ListenerConfig& listener = config.listeners[i];
    if (listener.Allows(LoginMethod::kToken) && config.issuers.empty()) {
      const toml::node* table = listener_tables != nullptr && i < listener_tables->size()
                                    ? listener_tables->get(i)
                                    : nullptr;
      const toml::node* auth =
          table != nullptr && table->is_table() ? table->as_table()->get("auth") : nullptr;
      AddError(auth != nullptr ? auth->source() : root.source(), Cat("listener[", i, "].auth"),
               "\"token\" needs at least one [[issuer]] to verify tokens with");
    }
    if (listener.auth.empty()) {
      listener.auth.push_back(LoginMethod::kPassword);
      // Over a Unix-domain socket a token never crosses a network (ParseSocketListener).
      if (!config.issuers.empty() && (listener.tls != ListenerTls::kDisabled || listener.local())) {
        listener.auth.push_back(LoginMethod::kToken);
      }
    }
    // ... but a process that could put its own socket where clients look for
    // ours, while the gateway is down, would collect the tokens they send.
    struct stat st;
    if (listener.local() && listener.Allows(LoginMethod::kToken) && options_.check_files &&
        ::stat(listener.socket_dir.c_str(), &st) == 0 && (st.st_mode & S_IWOTH) != 0) {
      const toml::node* table = listener_tables != nullptr && i < listener_tables->size()
                                    ? listener_tables->get(i)
                                    : nullptr;
      const toml::node* dir =
          table != nullptr && table->is_table() ? table->as_table()->get("socket_dir") : nullptr;
      AddError(dir != nullptr ? dir->source() : root.source(), Cat("listener[", i, "].socket_dir"),
               Cat("\"", listener.socket_dir,
                   "\" is writable by every user: with auth \"token\" another process could put "
                   "its own socket there while the gateway is down and collect tokens; use a "
                   "directory only the gateway's user can write, such as /run/pgbastion"));
    }
  }
  // Users may only name targets that exist. A target whose name was itself
  // invalid is not known here, so a user naming it gets a second error.
  const toml::array* users = root.get("user") ? root.get("user")->as_array() : nullptr;
  for (size_t u = 0; users != nullptr && u < users->size(); ++u) {
    const toml::table* user = users->get(u)->as_table();
    const toml::node* targets_node = user != nullptr ? user->get("targets") : nullptr;
    const toml::array* targets = targets_node != nullptr ? targets_node->as_array() : nullptr;
    for (size_t i = 0; targets != nullptr && i < targets->size(); ++i) {
      const toml::node& element = *targets->get(i);
      if (!element.is_string()) continue;
      const std::string& name = element.as_string()->get();
      if (config.FindTarget(name) == nullptr) {
        std::vector<std::string_view> names;
        for (const TargetConfig& target : config.targets) names.push_back(target.name);
        AddError(element.source(), Cat("user[", u, "].targets[", i, "]"),
                 Cat("no [[target]] named \"", name, "\" (targets: ", Join(names, ", "), ")"));
      }
    }
  }
  // [[scope]]: the policy (policy/policy_config.h).
  std::vector<std::string> target_names;
  for (const TargetConfig& target : config.targets) target_names.push_back(target.name);
  // Its problems went to sink_ (errors_) with the rest.
  if (absl::StatusOr<std::shared_ptr<const policy::Policy>> policy =
          policy::ParsePolicy(root, target_names, config.issuers, sink_);
      policy.ok()) {
    config.policy = *std::move(policy);
  }
  ParseScopeRoles(root, config);
  CheckScopeRoles(root, config);
  if (!errors_.empty()) return ErrorStatus();
  return config;
}

}  // namespace

bool ListenerConfig::Allows(LoginMethod method) const {
  return std::find(auth.begin(), auth.end(), method) != auth.end();
}

std::string ListenerConfig::SocketPath() const {
  return Cat(socket_dir == "/" ? "" : socket_dir, "/.s.PGSQL.", port);
}

std::string ListenerConfig::Describe() const {
  return local() ? SocketPath() : Cat(address, ":", port);
}

const TargetConfig* Config::FindTarget(std::string_view name) const {
  for (const TargetConfig& target : targets) {
    if (target.name == name) return &target;
  }
  return nullptr;
}

const RoleTemplate* Config::FindRoleTemplate(std::string_view scope) const {
  for (const RoleTemplate& role : scope_roles) {
    if (role.scope == scope) return &role;
  }
  return nullptr;
}

const UserConfig* Config::FindUser(std::string_view name) const {
  for (const UserConfig& user : users) {
    if (user.name == name) return &user;
  }
  return nullptr;
}

int Config::ResolvedWorkers() const {
  if (workers > 0) return workers;
  const long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
  return cores < 1 ? 1 : static_cast<int>(std::min<long>(cores, kMaxWorkers));
}

absl::StatusOr<Config> ParseConfig(std::string_view toml_text, std::string_view origin,
                                   std::string_view base_dir, ConfigOptions options) {
  ConfigParser parser(origin, base_dir, options);
  toml::table root;
#if TOML_EXCEPTIONS
  try {
    root = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& error) {
    parser.AddSyntaxError(error.source(), error.description());
    return parser.ErrorStatus();
  } catch (const std::exception& error) {
    return absl::InternalError(Cat(origin, ": cannot parse: ", error.what()));
  }
#else
  toml::parse_result result = toml::parse(toml_text, origin);
  if (!result) {
    parser.AddSyntaxError(result.error().source(), result.error().description());
    return parser.ErrorStatus();
  }
  root = std::move(result).table();
#endif
  return parser.Parse(root);
}

absl::StatusOr<Config> LoadConfigFile(const std::string& path, ConfigOptions options) {
  absl::StatusOr<FileContents> read = ReadRegularFile(path, kMaxConfigFileSize);
  if (!read.ok()) return read.status();
  std::error_code error;
  std::filesystem::path absolute = std::filesystem::absolute(path, error);
  if (error) {
    return absl::InvalidArgumentError(Cat("cannot resolve \"", path, "\": ", error.message()));
  }
  const std::string base_dir = absolute.lexically_normal().parent_path().string();
  return ParseConfig(read->contents, path, base_dir, options);
}

}  // namespace pgb
