#include "core/role_config.h"

#include <unistd.h>

#include <climits>

#include "absl/strings/ascii.h"
#include "base/str_cat.h"

namespace pgb {
namespace {

constexpr size_t kMaxNodeIdLength = 24;
constexpr size_t kMaxPrefixLength = 16;

bool IsNodeId(std::string_view id) {
  if (id.empty() || id.size() > kMaxNodeIdLength) return false;
  for (char c : id) {
    if (!absl::ascii_islower(static_cast<unsigned char>(c)) &&
        !absl::ascii_isdigit(static_cast<unsigned char>(c)) && c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

// A prefix is part of an unquoted-looking identifier: lower case letters,
// digits and '_', starting with a letter.
bool IsRolePrefix(std::string_view prefix) {
  if (prefix.empty() || prefix.size() > kMaxPrefixLength ||
      !absl::ascii_islower(static_cast<unsigned char>(prefix[0]))) {
    return false;
  }
  for (char c : prefix) {
    if (!absl::ascii_islower(static_cast<unsigned char>(c)) &&
        !absl::ascii_isdigit(static_cast<unsigned char>(c)) && c != '_') {
      return false;
    }
  }
  return true;
}

// A setting's name as ALTER ROLE SET takes it (`work_mem`, `myapp.tenant`).
bool IsSettingName(std::string_view name) {
  if (name.empty() || name.size() > kMaxRoleNameLength) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.') return false;
  }
  return true;
}

void ParseSettings(TomlTableReader& reader, RoleTemplate& out) {
  const toml::node* node = reader.Get("settings");
  if (node == nullptr) return;
  const toml::table* table = node->as_table();
  if (table == nullptr) {
    reader.TypeError("settings", "a table of setting = value", *node);
    return;
  }
  for (const auto& [key, value] : *table) {
    const std::string name = absl::AsciiStrToLower(std::string(key.str()));
    const std::string path = reader.KeyPath(Cat("settings.", key.str()));
    if (!IsSettingName(name)) {
      reader.sink()(value.source(), path, "is not a setting name (letters, digits, _ and .)");
      continue;
    }
    if (name == "role" || name == "session_authorization") {
      reader.sink()(value.source(), path, "the gateway chooses who the session is");
      continue;
    }
    if (const auto* s = value.as_string()) {
      out.settings.emplace_back(name, s->get());
    } else if (const auto* i = value.as_integer()) {
      out.settings.emplace_back(name, Cat(i->get()));
    } else if (const auto* b = value.as_boolean()) {
      out.settings.emplace_back(name, b->get() ? "on" : "off");
    } else {
      reader.sink()(value.source(), path,
                    Cat("expected a string, integer or boolean, got ", TomlTypeName(value)));
    }
  }
}

void ParseRole(TomlTableReader& reader,
               const std::function<void(TomlTableReader&, Secret*)>& read_secret,
               RoleTemplate& out) {
  if (reader.Has("mode")) {
    if (auto v = reader.Enum("mode", {"temporary", "static"})) {
      out.mode = *v == 0 ? RoleTemplate::Mode::kTemporary : RoleTemplate::Mode::kStatic;
    }
  }
  const auto not_in = [&](std::initializer_list<std::string_view> keys, std::string_view mode) {
    for (std::string_view key : keys) {
      if (reader.Has(key)) reader.Error(key, Cat("is not used with mode = \"", mode, "\""));
    }
  };
  if (out.mode == RoleTemplate::Mode::kStatic) {
    not_in({"member_of", "settings", "connection_limit", "grace", "lifetime"}, "static");
    if (auto v = reader.RequiredString("login", "the pre-created login role the scope uses")) {
      if (v->size() > kMaxRoleNameLength) {
        reader.Error("login", Cat("must be 1..", kMaxRoleNameLength, " bytes"));
      } else {
        out.login = *v;
      }
    }
    if (!reader.Has("password_file") && !reader.Has("password_env")) {
      reader.Error("password_file", "required with mode = \"static\" (or password_env)");
    }
    read_secret(reader, &out.password);
    return;
  }
  not_in({"login", "password_file", "password_env"}, "temporary");
  reader.Strings(
      "member_of",
      [&](const std::string& role, const toml::node& node, const std::string& path) {
        if (role.size() > kMaxRoleNameLength) {
          reader.sink()(node.source(), path, Cat("must be 1..", kMaxRoleNameLength, " bytes"));
        } else {
          out.member_of.push_back(role);
        }
      },
      TomlStringList{.single_string = false, .empty = TomlStringList::Empty::kAllowed});
  ParseSettings(reader, out);
  if (auto v = reader.Integer("connection_limit", 1, INT_MAX)) {
    out.connection_limit = static_cast<int>(*v);
  }
  if (auto v = reader.Duration("grace", absl::ZeroDuration(), absl::Hours(24 * 7))) out.grace = *v;
  if (auto v = reader.Duration("lifetime", absl::Seconds(1), absl::Hours(24 * 365))) {
    out.lifetime = *v;
  }
}

}  // namespace

std::string DefaultNodeId() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  std::string id;
  for (const char* p = host; *p != '\0' && id.size() < kMaxNodeIdLength; ++p) {
    const char c = absl::ascii_tolower(static_cast<unsigned char>(*p));
    id.push_back(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ? c : '_');
  }
  return id.empty() ? "gw" : id;
}

void ParseRolesConfig(const toml::node* roles, const TomlProblemSink& sink, RolesConfig* out) {
  out->node_id = DefaultNodeId();
  if (roles == nullptr) return;
  const toml::table* table = roles->as_table();
  if (table == nullptr) {
    sink(roles->source(), "roles", Cat("expected a table ([roles]), got ", TomlTypeName(*roles)));
    return;
  }
  TomlTableReader reader(*table, "roles",
                         {"node_id", "prefix", "janitor_interval", "statement_timeout"}, sink);
  if (auto v = reader.String("node_id")) {
    if (!IsNodeId(*v)) {
      reader.Error("node_id",
                   Cat("\"", *v, "\" must be 1..", kMaxNodeIdLength, " characters of a-z 0-9 _ -"));
    } else {
      out->node_id = *v;
    }
  }
  if (auto v = reader.String("prefix")) {
    if (!IsRolePrefix(*v)) {
      reader.Error("prefix", Cat("\"", *v, "\" must be 1..", kMaxPrefixLength,
                                 " characters of a-z 0-9 _, starting with a letter"));
    } else {
      out->prefix = *v;
    }
  }
  if (auto v = reader.Duration("janitor_interval", absl::Seconds(1), absl::Hours(24))) {
    out->janitor_interval = *v;
  }
  if (auto v = reader.Duration("statement_timeout", absl::Milliseconds(100), absl::Minutes(10))) {
    out->statement_timeout = *v;
  }
}

void ParseScopeRoles(const toml::table& root, const TomlProblemSink& sink,
                     const std::function<void(TomlTableReader&, Secret*)>& read_secret,
                     std::vector<RoleTemplate>* out) {
  const toml::array* scopes = root.get("scope") ? root.get("scope")->as_array() : nullptr;
  for (size_t i = 0; scopes != nullptr && i < scopes->size(); ++i) {
    const toml::table* scope = scopes->get(i)->as_table();
    if (scope == nullptr || !scope->contains("role")) continue;
    const toml::node& node = *scope->get("role");
    const std::string path = Cat("scope[", i, "].role");
    const toml::table* table = node.as_table();
    if (table == nullptr) {
      sink(node.source(), path, Cat("expected a table ([scope.role]), got ", TomlTypeName(node)));
      continue;
    }
    RoleTemplate role;
    if (const toml::node* name = scope->get("name"); name != nullptr && name->is_string()) {
      role.scope = name->as_string()->get();
    }
    {
      TomlTableReader reader(*table, path,
                             {"mode", "member_of", "settings", "connection_limit", "grace",
                              "lifetime", "login", "password_file", "password_env"},
                             sink, {{"password", "use password_file or password_env"}});
      ParseRole(reader, read_secret, role);
    }
    out->push_back(std::move(role));
  }
}

}  // namespace pgb
