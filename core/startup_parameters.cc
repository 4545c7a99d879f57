#include "core/startup_parameters.h"

#include <algorithm>
#include <string_view>

#include "absl/strings/ascii.h"
#include "base/str_cat.h"
#include "policy/judgement.h"
#include "policy/sql_analysis.h"
#include "proto/error_status.h"
#include "proto/protocol.h"

namespace pgb {
namespace {

namespace sqlstate = proto::sqlstate;

// Startup parameters that describe the connection and are passed on to the
// database as they are: formats and the client's encoding, which change
// nothing about who the session is or what it may do, and which every driver
// sends (so no scope may refuse them). Lower case, as PostgreSQL compares
// setting names.
constexpr std::string_view kConnectionParameters[] = {
    "application_name",
    "client_encoding",
    "datestyle",
    "intervalstyle",
    "timezone",
    "extra_float_digits",
    "standard_conforming_strings",
    "bytea_output",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
};

// Names a startup packet reads as something other than a setting
// (PostgreSQL's ProcessStartupPacket): as a setting of `options`, or folded
// from another case, they would name the login, the database or the
// protocol. `_pq_.` (protocol options) is a prefix.
constexpr std::string_view kPacketNames[] = {"user", "database", "options", "replication"};

// Settings PostgreSQL accepts only at connection start (context backend and
// superuser-backend in pg_settings): a SET of them fails, so nothing the
// policy judges is equivalent. tests/integration/test_startup_settings.py
// checks the list against the server's pg_settings.
constexpr std::string_view kConnectionStartOnly[] = {
    "ignore_system_indexes", "post_auth_delay",       "log_connections",
    "log_disconnections",    "jit_debugging_support", "jit_profiling_support",
};

// Never at startup, whatever the scope: the gateway chooses who the session
// is. (An admin scope may still SET them after connecting, where the
// session's role is tracked.)
constexpr std::string_view kIdentitySettings[] = {"role", "session_authorization"};

template <size_t N>
bool In(const std::string_view (&list)[N], std::string_view name) {
  return std::find(std::begin(list), std::end(list), name) != std::end(list);
}

bool IsFalse(std::string_view v) {
  return v == "false" || v == "0" || v == "off" || v == "no" || v.empty();
}

// A setting name the gateway can write as a SET and pass on unchanged:
// dot-separated parts, each a letter or '_' then letters, digits, '_' or
// '$', in lower case; no longer than PostgreSQL's identifiers (NAMEDATALEN
// - 1), so the SET's name is not truncated into another one.
bool IsPlainSettingName(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  bool part_start = true;
  for (char c : name) {
    if (c == '.') {
      if (part_start) return false;
      part_start = true;
      continue;
    }
    const bool letter = (c >= 'a' && c <= 'z') || c == '_';
    if (part_start ? !letter : !(letter || (c >= '0' && c <= '9') || c == '$')) return false;
    part_start = false;
  }
  return !part_start;
}

// The policy reads statements as UTF-8 with standard_conforming_strings on.
// A client encoding whose multibyte characters can contain ASCII bytes (SJIS,
// BIG5, GBK, UHC, GB18030, JOHAB) or backslash escapes in plain strings would
// let the database split a text where the analyser did not: `'\'; DROP ...`.
// Returns why `value` is refused for `name`, or "" when it is fine.
std::string StartupSettingProblem(std::string_view name, std::string_view value) {
  std::string folded;  // PostgreSQL's clean_encoding_name: lower case, alphanumerics only
  for (char c : value) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c))) {
      folded += absl::ascii_tolower(static_cast<unsigned char>(c));
    }
  }
  if (name == "client_encoding") {
    static constexpr std::string_view kAsciiSafePrefixes[] = {
        "utf8",   "unicode", "sqlascii", "latin", "iso8859", "win125", "win866",
        "win874", "cp125",   "cp866",    "koi8",  "euc",     "alt"};
    for (std::string_view prefix : kAsciiSafePrefixes) {
      if (folded.starts_with(prefix)) return "";
    }
    return Cat("client_encoding \"", value,
               "\" is not allowed through the gateway: the gateway checks statements "
               "as UTF-8, and this encoding could hide a quote or backslash from it");
  }
  if (name == "standard_conforming_strings" &&
      !(folded == "on" || folded == "true" || folded == "yes" || folded == "1")) {
    return "standard_conforming_strings must stay on through the gateway: with it off, a "
           "backslash in a string could end the string where the gateway's check did not";
  }
  return "";
}

// Why the setting `name` = `value` cannot be passed on whatever the scope,
// as a Status (ok when it may go on to be judged).
absl::Status CheckSetting(std::string_view name, std::string_view value) {
  if (In(kPacketNames, name) || name.starts_with("_pq_")) {
    return proto::ErrorStatus(
        sqlstate::kInsufficientPrivilege,
        Cat("the startup setting \"", name, "\" is not allowed through the gateway"),
        Cat("\"", name,
            "\" is not a setting: in a startup packet it names the login, the "
            "database or the protocol."),
        "Remove it from the connection's options.");
  }
  if (!IsPlainSettingName(name)) {
    return proto::ErrorStatus(
        sqlstate::kInvalidName, Cat("invalid startup setting name \"", name, "\""),
        "The gateway passes on settings named like PostgreSQL's own and custom ones "
        "(letters, digits, '_' and '$', parts separated by '.', at most 63 bytes).",
        "");
  }
  if (In(kConnectionStartOnly, name)) {
    return proto::ErrorStatus(
        sqlstate::kCantChangeRuntimeParam, Cat("parameter \"", name, "\" cannot be changed now"),
        "PostgreSQL takes it only at connection start, where a SET of it would fail; the gateway "
        "allows at startup only what it can judge as a SET.",
        "");
  }
  if (IsConnectionParameter(name)) {
    if (std::string problem = StartupSettingProblem(name, value); !problem.empty()) {
      return proto::ErrorStatus(
          sqlstate::kInsufficientPrivilege, problem, "",
          "Connect with client_encoding=UTF8 and standard_conforming_strings=on.");
    }
  }
  return absl::OkStatus();
}

// `SET "part"."part" TO 'value'`: every part quoted (a plain name, so no
// quote inside), the value a standard string literal (quotes doubled; the
// analyser reads with standard_conforming_strings on, as the gateway keeps
// the database).
std::string EquivalentSet(std::string_view name, std::string_view value) {
  std::string sql = "SET \"";
  for (char c : name) sql += c == '.' ? std::string_view("\".\"") : std::string_view(&c, 1);
  sql += "\" TO '";
  for (char c : value) {
    if (c == '\'') sql += '\'';
    sql += c;
  }
  sql += '\'';
  return sql;
}

}  // namespace

bool IsConnectionParameter(std::string_view name) { return In(kConnectionParameters, name); }

absl::StatusOr<StartupSettings> ParseStartupOptions(std::string_view options) {
  if (options.size() > kMaxStartupOptionsBytes) {
    return proto::ErrorStatus(
        sqlstate::kProgramLimitExceeded,
        Cat("the startup parameter \"options\" is longer than ", kMaxStartupOptionsBytes, " bytes"),
        "", "Set fewer settings at startup, or SET them after connecting.");
  }
  // pg_split_opts: words separated by unescaped white space (isspace in the
  // C locale); a backslash takes the next character literally, and a
  // trailing one is dropped.
  std::vector<std::string> words;
  for (size_t i = 0; i < options.size();) {
    while (i < options.size() && absl::ascii_isspace(static_cast<unsigned char>(options[i]))) ++i;
    if (i == options.size()) break;
    std::string word;
    bool escaped = false;
    for (; i < options.size(); ++i) {
      const char c = options[i];
      if (!escaped && absl::ascii_isspace(static_cast<unsigned char>(c))) break;
      if (!escaped && c == '\\') {
        escaped = true;
      } else {
        escaped = false;
        word += c;
      }
    }
    words.push_back(std::move(word));
  }
  const auto syntax_error = [](std::string message) {
    return proto::ErrorStatus(
        sqlstate::kSyntaxError, std::move(message),
        "The gateway reads \"-c name=value\" and \"--name=value\" in options, as PostgreSQL "
        "does; other command-line switches are not allowed through it.",
        "Write each setting as -c name=value.");
  };
  StartupSettings settings;
  for (size_t w = 0; w < words.size(); ++w) {
    const std::string& word = words[w];
    std::string_view setting;
    std::string_view form;
    if (word == "-c") {
      if (w + 1 == words.size()) return syntax_error("\"-c\" in options requires a value");
      setting = words[++w];
      form = "-c ";
    } else if (word.starts_with("-c")) {
      setting = std::string_view(word).substr(2);
      form = "-c ";
    } else if (word.starts_with("--") && word.size() > 2) {
      setting = std::string_view(word).substr(2);
      form = "--";
    } else {
      return syntax_error(
          Cat("invalid command-line argument in the startup parameter \"options\": ", word));
    }
    // ParseLongOption: the name up to the first '=', its '-'s read as '_'.
    const size_t equals = setting.find('=');
    if (equals == std::string_view::npos) {
      return syntax_error(Cat("\"", form, setting, "\" in options requires a value"));
    }
    std::string name(setting.substr(0, equals));
    for (char& c : name) {
      c = c == '-' ? '_' : absl::ascii_tolower(static_cast<unsigned char>(c));
    }
    settings.emplace_back(std::move(name), std::string(setting.substr(equals + 1)));
  }
  return settings;
}

absl::StatusOr<ClientStartup> ReadClientStartup(const proto::StartupPacket& packet) {
  ClientStartup startup;
  StartupSettings own;  // the packet's settings, applied after those of options
  for (const auto& [name, value] : packet.params) {
    if (name == "user") {
      startup.user = std::string(value);
    } else if (name == "database") {
      startup.database = std::string(value);
    } else if (name.substr(0, 5) == "_pq_.") {
      // Protocol options: answered by NegotiateProtocolVersion.
    } else if (name == "replication") {
      if (!IsFalse(value)) {
        return proto::ErrorStatus(sqlstate::kInsufficientPrivilege,
                                  "replication connections are not allowed through the gateway");
      }
    } else if (name == "options") {
      absl::StatusOr<StartupSettings> settings = ParseStartupOptions(value);
      if (!settings.ok()) return settings.status();
      for (auto& s : *settings) startup.forwarded.push_back(std::move(s));
    } else {
      // PostgreSQL finds settings by name whatever the case.
      own.emplace_back(absl::AsciiStrToLower(std::string(name)), std::string(value));
    }
  }
  for (auto& s : own) startup.forwarded.push_back(std::move(s));
  if (startup.forwarded.size() > kMaxStartupSettings) {
    return proto::ErrorStatus(
        sqlstate::kProgramLimitExceeded,
        Cat("more than ", kMaxStartupSettings, " settings in the startup packet"), "",
        "Set fewer settings at startup, or SET them after connecting.");
  }
  for (const auto& [name, value] : startup.forwarded) {
    if (absl::Status s = CheckSetting(name, value); !s.ok()) return s;
    if (name == "application_name") startup.application_name = value;
  }
  if (startup.database.empty()) startup.database = startup.user;
  return startup;
}

StartupJudgement JudgeStartupSettings(const policy::Policy& policy, const policy::Scope& scope,
                                      const std::string& role, const StartupSettings& settings) {
  StartupJudgement judgement;
  policy::SessionPolicyState state(scope, role);
  for (const auto& [name, value] : settings) {
    if (IsConnectionParameter(name)) continue;
    JudgedStartupSetting setting{name, value, EquivalentSet(name, value), {}, 0};
    const std::string detail = Cat("The startup setting \"", name, "\" is judged as the statement ",
                                   setting.statement, ".");
    const policy::SqlAnalysis analysis = policy::AnalyseSql(setting.statement);
    if (!analysis.ok) {
      judgement.refusal = proto::ErrorStatus(
          analysis.error_sqlstate,
          Cat("the startup setting \"", name, "\" cannot be judged: ", analysis.error_message),
          detail, "Remove it from the connection's settings.");
      setting.decision = policy::Decision{policy::Decision::kDeny, "analysis", "", ""};
      judgement.refused = std::move(setting);
      return judgement;
    }
    // Fail closed: the analyser must read the SET as setting exactly this
    // name (and nothing else), or the judgement is not about what the
    // database would be sent.
    if (analysis.statements.size() != 1 || analysis.statements[0].settings.size() != 1 ||
        analysis.statements[0].settings[0].name != name) {
      judgement.refusal =
          proto::ErrorStatus(sqlstate::kInsufficientPrivilege,
                             Cat("the startup setting \"", name, "\" cannot be judged"), detail,
                             "Remove it from the connection's settings.");
      setting.decision = policy::Decision{policy::Decision::kDeny, "analysis", "", ""};
      judgement.refused = std::move(setting);
      return judgement;
    }
    setting.fingerprint = analysis.statements[0].fingerprint;
    policy::QueryJudgement j = policy::JudgeQuery(policy, scope, analysis, state);
    setting.decision = std::move(j.decisions[0]);
    // Refused as the SET is where the SET is refused; where it is allowed
    // (an admin scope), refused still: at startup the session's role would
    // be chosen before the gateway tracks it.
    if (setting.decision.kind == policy::Decision::kAllow && In(kIdentitySettings, name)) {
      setting.decision = policy::Decision{
          policy::Decision::kDeny, "builtin.protected-setting",
          Cat("the startup setting ", name, " would change who the session is"),
          "the gateway chooses the session's database role; an admin scope may SET it after "
          "connecting"};
    }
    if (setting.decision.kind != policy::Decision::kAllow) {
      std::string hint = setting.decision.hint;
      if (setting.decision.kind == policy::Decision::kApproval) {
        hint =
            Cat("a login cannot wait for approval: connect without the setting and SET it "
                "after connecting (",
                hint, ")");
      }
      judgement.refusal =
          proto::ErrorStatus(sqlstate::kInsufficientPrivilege,
                             policy::DecisionMessage(setting.decision), detail, hint);
      judgement.refused = std::move(setting);
      return judgement;
    }
    judgement.allowed.push_back(std::move(setting));
  }
  return judgement;
}

StartupSettings BackendStartupParameters(const std::string& role, const std::string& database,
                                         const StartupSettings& forwarded,
                                         const StartupSettings& limits,
                                         std::string* client_search_path) {
  StartupSettings params;
  params.emplace_back("user", role);
  params.emplace_back("database", database);
  // Whatever the role or database default says: the policy's reading of
  // string literals depends on it (see StartupSettingProblem).
  params.emplace_back("standard_conforming_strings", "on");
  // The client's settings come after the scope's: PostgreSQL applies a
  // startup packet's settings in order, so a client's search_path or lower
  // timeout (judged against the limits) wins, as its SET would.
  for (const auto& l : limits) params.push_back(l);
  client_search_path->clear();
  for (const auto& p : forwarded) {
    if (p.first == "standard_conforming_strings") continue;
    if (p.first == "search_path") *client_search_path = p.second;
    params.push_back(p);
  }
  return params;
}

}  // namespace pgb
