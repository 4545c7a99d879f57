// `pgbastion policy explain --config FILE (--claims JSON [--source SOURCE] |
//  --user NAME) [--target NAME] [--json] SQL`: the decision the policy takes on each
// statement of SQL for an identity, without a database. The config's secrets
// and TLS files need not exist (ConfigOptions::check_files = false).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "base/json_text.h"
#include "base/str_cat.h"
#include "core/config.h"
#include "policy/catalog.h"
#include "policy/identity.h"
#include "policy/judgement.h"
#include "policy/rules.h"
#include "policy/setting_value.h"
#include "policy/sql_analysis.h"
#include "policy/sql_text.h"
#include "simdjson.h"
#include "tools/pgbastion/commands.h"

namespace pgb::tools {
namespace {

// Explain reads no database, so a masked scope's catalog checks
// (policy/masked_scope.h) are made against what the statements assume: each
// relation they name is a table, in each schema it may resolve to, whose
// columns are every name the statements use as a column. What only the real
// catalog decides (c.to_json as a function of the row, views, column tags,
// relations that do not exist) is left to the gateway; the caller says so.
std::shared_ptr<const policy::RelationCatalog> AssumedCatalog(
    const policy::SqlAnalysis& analysis, const policy::SessionPolicyState& state) {
  std::vector<std::string> columns;
  std::vector<std::pair<std::string, std::string>> relations;
  const auto add = [&](const policy::StatementSummary& s) {
    for (const auto* names : {&s.output_columns, &s.other_columns}) {
      columns.insert(columns.end(), names->begin(), names->end());
    }
    for (const auto& ref : s.attribute_refs) columns.push_back(ref.attribute);
    for (const policy::RelationRef& r : s.relations) {
      if (!r.schema.empty()) {
        relations.emplace_back(r.schema, r.name);
        continue;
      }
      const bool known = state.ForEachCandidate(
          r.name, policy::NameKind::kRelation,
          [&](std::string_view schema) { relations.emplace_back(schema, r.name); });
      if (!known) relations.emplace_back("public", r.name);
    }
  };
  for (const policy::StatementSummary& s : analysis.statements) {
    add(s);
    if (s.prepared) add(*s.prepared);
  }
  auto catalog = std::make_shared<policy::RelationCatalog>();
  for (auto& [schema, name] : relations) {
    if (catalog->Find(schema, name) != nullptr) continue;
    policy::CatalogRelation relation;
    relation.schema = std::move(schema);
    relation.name = std::move(name);
    for (const std::string& column : columns) relation.columns.push_back({column, 0, 0, {}});
    catalog->Add(std::move(relation));
  }
  return catalog;
}

constexpr const char kPolicyUsage[] =
    "Usage: pgbastion policy explain --config FILE\n"
    "                                (--claims JSON [--source SOURCE] | --user NAME)\n"
    "                                [--target NAME] [--json] SQL\n"
    "\n"
    "Shows the decision the policy of FILE takes on each statement of SQL for an\n"
    "identity: allow, deny or approval, with the rule, the reason and a hint, the\n"
    "statement's class, and the relations and functions it uses with the schemas\n"
    "each may resolve to. Needs no database; the config's password files and TLS\n"
    "files need not exist. SQL '-' reads the statements from stdin. Statements are\n"
    "judged in order, each in the light of the allowed ones before (SET\n"
    "search_path, PREPARE), as the gateway judges them: the first statement not\n"
    "allowed refuses the whole query, and the ones after it are not judged.\n"
    "In a scope with masks, the gateway also decides with the target's catalog;\n"
    "explain assumes every relation named is a table with the columns the\n"
    "statements name (stderr says so), and cannot see attribute notation\n"
    "(c.to_json), views or pgbastion:mask= column tags.\n"
    "\n"
    "Options:\n"
    "  --config FILE   the configuration file\n"
    "  --claims JSON   the identity as token claims, for example\n"
    "                  '{\"sub\":\"bot-7\",\"groups\":[\"read-only\"],\"iss\":\"https://idp\"}'\n"
    "                  (sub, groups, iss, azp or client_id; other string claims match\n"
    "                  a scope's claims)\n"
    "  --source SOURCE where the --claims identity comes from, as a scope's sources\n"
    "                  name it: issuer:<[[issuer]] name>, certificate or local.\n"
    "                  Default: the [[issuer]] whose issuer is the claims' iss, else\n"
    "                  the only [[issuer]]\n"
    "  --user NAME     the identity of a [[user]] of the config (its name and groups)\n"
    "  --target NAME   the target (dbname); default: the first [[target]]\n"
    "  --json          one JSON object per statement, one per line\n"
    "  --help          show this help\n"
    "\n"
    "Exit status: 0 decided (whatever the decisions), 1 bad config, 2 usage error.\n";

int Usage(std::string_view message) {
  std::fprintf(stderr, "pgbastion policy explain: %.*s\n\n%s", static_cast<int>(message.size()),
               message.data(), kPolicyUsage);
  return 2;
}

// Token claims as JSON into an Identity: the fields the gateway maps from a
// verified token, and every other string claim for scope `claims`.
absl::StatusOr<policy::Identity> IdentityFromClaims(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json.data(), json.size()).get(root) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("--claims is not valid JSON");
  }
  simdjson::dom::object object;
  if (root.get_object().get(object) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("--claims must be a JSON object");
  }
  policy::Identity identity;
  identity.method = policy::AuthMethod::kToken;
  for (const auto field : object) {
    const std::string key(field.key);
    std::string_view text;
    if (key == "groups") {
      if (field.value.get_string().get(text) == simdjson::SUCCESS) {
        identity.groups.emplace_back(text);
        continue;
      }
      simdjson::dom::array groups;
      if (field.value.get_array().get(groups) != simdjson::SUCCESS) {
        return absl::InvalidArgumentError(
            "--claims: groups must be a string or an array of strings");
      }
      for (const auto group : groups) {
        if (group.get_string().get(text) != simdjson::SUCCESS) {
          return absl::InvalidArgumentError("--claims: groups must be an array of strings");
        }
        identity.groups.emplace_back(text);
      }
      continue;
    }
    if (field.value.get_string().get(text) != simdjson::SUCCESS) continue;  // exp, iat, ...
    if (key == "sub") {
      identity.subject = std::string(text);
    } else if (key == "iss") {
      identity.issuer = std::string(text);
    } else if (key == "azp" || key == "client_id") {
      identity.client_id = std::string(text);
      identity.claims.emplace_back(key, std::string(text));
    } else {
      identity.claims.emplace_back(key, std::string(text));
    }
  }
  if (identity.subject.empty()) {
    return absl::InvalidArgumentError("--claims needs a \"sub\" (the subject)");
  }
  return identity;
}

// Gives the --claims identity its source (a scope's `sources` match it): the
// one --source names, else the [[issuer]] of its `iss`, else the only one.
absl::Status PlaceClaims(const Config& config, std::string_view source,
                         policy::Identity& identity) {
  const auto by_name = [&](std::string_view name) -> const policy::IssuerConfig* {
    for (const policy::IssuerConfig& issuer : config.issuers) {
      if (issuer.name == name) return &issuer;
    }
    return nullptr;
  };
  const policy::IssuerConfig* issuer = nullptr;
  if (source == "local" || source == "certificate") {
    identity.method =
        source == "local" ? policy::AuthMethod::kLocalPassword : policy::AuthMethod::kCertificate;
    identity.issuer.clear();
    return absl::OkStatus();
  }
  if (source.starts_with("issuer:")) {
    issuer = by_name(source.substr(7));
    if (issuer == nullptr) {
      return absl::InvalidArgumentError(
          Cat("--source: no [[issuer]] named '", source.substr(7), "'"));
    }
  } else if (!source.empty()) {
    return absl::InvalidArgumentError(
        Cat("--source '", source, "': expected issuer:<name>, certificate or local"));
  } else if (!identity.issuer.empty()) {
    return absl::OkStatus();  // the claims' own iss
  } else if (config.issuers.size() == 1) {
    issuer = &config.issuers.front();
  } else {
    return absl::InvalidArgumentError(
        "--claims has no \"iss\": say where the identity comes from with --source "
        "issuer:<name>, certificate or local");
  }
  identity.issuer = issuer->issuer;
  return absl::OkStatus();
}

std::string AccessList(uint8_t access) {
  static constexpr std::pair<uint8_t, std::string_view> kNames[] = {
      {policy::kAccessSelect, "select"},     {policy::kAccessInsert, "insert"},
      {policy::kAccessUpdate, "update"},     {policy::kAccessDelete, "delete"},
      {policy::kAccessTruncate, "truncate"}, {policy::kAccessReferences, "references"},
      {policy::kAccessLock, "lock"},         {policy::kAccessDdl, "ddl"}};
  std::string out = "[";
  for (const auto& [bit, name] : kNames) {
    if ((access & bit) == 0) continue;
    if (out.size() > 1) out += ',';
    out += JsonString(name);
  }
  return out + "]";
}

// ["public"], or the schemas an unqualified name may land in, or ["*"].
std::vector<std::string> Schemas(const std::string& schema, const std::string& name,
                                 policy::NameKind kind, const policy::SessionPolicyState& state) {
  if (!schema.empty()) return {schema};
  policy::SchemaResolution resolution = state.ResolveSchemas(name, kind);
  if (resolution.any_schema) return {"*"};
  return resolution.schemas;
}

std::string JsonStrings(const std::vector<std::string>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += JsonString(values[i]);
  }
  return out + "]";
}

struct Context {
  std::string target;
  const policy::Scope* scope = nullptr;
  bool json = false;
  const approvals::ApprovalsConfig* approvals = nullptr;  // [approvals]
};

// How an approval decision is carried out (docs/approvals.md): "hold" or
// "retry" with an [approvals] store, "refuse" without one.
std::string ApprovalMode(const Context& context, const policy::Decision& decision) {
  if (context.approvals == nullptr || !context.approvals->enabled) return "refuse";
  const approvals::ApprovalSettings s = context.approvals->For(
      context.scope != nullptr ? std::string_view(context.scope->name) : std::string_view(),
      decision.rule);
  return Cat(s.mode == approvals::ApprovalMode::kRetry ? "retry" : "hold", " (", s.approvers,
             s.approvers == 1 ? " approver" : " approvers", ", timeout ",
             absl::FormatDuration(s.timeout), ")");
}

// A setting the scope caps: the value PostgreSQL would apply and the cap, in
// the setting's base unit, as JSON numbers ("null" when there is none).
struct SettingLimit {
  std::string applied = "null";
  std::string cap = "null";
  std::string_view unit;
};

SettingLimit LimitOf(const policy::Scope* scope, const policy::SettingChange& setting) {
  SettingLimit limit;
  const policy::CappedSetting* capped = policy::FindCappedSetting(setting.name);
  if (scope == nullptr || capped == nullptr) return limit;
  if (std::optional<int64_t> cap = scope->Cap(setting.name)) limit.cap = Cat(*cap);
  if (setting.value_known && !setting.reset) {
    if (auto v = policy::ParseIntegerSetting(setting.value, capped->unit)) limit.applied = Cat(*v);
  }
  switch (capped->unit) {
    case policy::SettingUnit::kMilliseconds:
      limit.unit = "ms";
      break;
    case policy::SettingUnit::kSeconds:
      limit.unit = "s";
      break;
    case policy::SettingUnit::kKilobytes:
      limit.unit = "kB";
      break;
    case policy::SettingUnit::kBlocks:
      limit.unit = "8kB blocks";
      break;
    case policy::SettingUnit::kNone:
      limit.unit = "count";
      break;
  }
  return limit;
}

void Print(const Context& context, size_t index, std::string_view text,
           const policy::StatementSummary* statement, const policy::Decision& decision,
           const policy::SessionPolicyState* state) {
  if (context.json) {
    std::string out = Cat("{\"statement\":", index + 1,
                          ",\"decision\":", JsonString(policy::DecisionKindName(decision.kind)));
    if (statement != nullptr) {
      Append(out, ",\"class\":", JsonString(policy::StatementClassName(statement->statement_class)),
             ",\"command\":", JsonString(statement->command));
    }
    Append(out, ",\"rule\":", JsonString(decision.rule),
           ",\"reason\":", JsonString(decision.reason), ",\"hint\":", JsonString(decision.hint),
           ",\"target\":", JsonString(context.target));
    if (decision.kind == policy::Decision::kApproval) {
      const std::string mode = ApprovalMode(context, decision);
      Append(out, ",\"mode\":", JsonString(mode.substr(0, mode.find(' '))));
    }
    if (context.scope != nullptr) {
      Append(out, ",\"scope\":", JsonString(context.scope->name),
             ",\"profile\":", JsonString(policy::ProfileName(context.scope->profile)),
             ",\"read_only_in_database\":",
             policy::ReadOnlyInDatabase(*context.scope) ? "true" : "false");
    } else {
      out += ",\"scope\":null,\"profile\":null";
    }
    if (statement != nullptr && !statement->settings.empty()) {
      out += ",\"settings\":[";
      for (size_t i = 0; i < statement->settings.size(); ++i) {
        const SettingLimit limit = LimitOf(context.scope, statement->settings[i]);
        Append(out, i > 0 ? "," : "", "{\"name\":", JsonString(statement->settings[i].name),
               ",\"value\":", JsonString(statement->settings[i].value),
               ",\"applied\":", limit.applied, ",\"cap\":", limit.cap, "}");
      }
      out += "]";
    }
    if (statement != nullptr && state != nullptr) {
      out += ",\"relations\":[";
      for (size_t i = 0; i < statement->relations.size(); ++i) {
        const policy::RelationRef& r = statement->relations[i];
        if (i > 0) out += ',';
        Append(out, "{\"name\":", JsonString(r.name), ",\"schemas\":",
               JsonStrings(Schemas(r.schema, r.name, policy::NameKind::kRelation, *state)),
               ",\"access\":", AccessList(r.access), "}");
      }
      out += "],\"functions\":[";
      for (size_t i = 0; i < statement->functions.size(); ++i) {
        const policy::FunctionRef& f = statement->functions[i];
        if (i > 0) out += ',';
        Append(out, "{\"name\":", JsonString(f.name), ",\"schemas\":",
               JsonStrings(Schemas(f.schema, f.name, policy::NameKind::kFunction, *state)), "}");
      }
      out += "]";
    }
    Append(out, ",\"text\":", JsonString(text), "}\n");
    std::fputs(out.c_str(), stdout);
    return;
  }
  std::string out = Cat(index + 1, ". ", policy::DecisionKindName(decision.kind), ": ", text, "\n");
  if (statement != nullptr) {
    Append(out, "   class ", policy::StatementClassName(statement->statement_class), ", command ",
           statement->command, "\n");
  }
  for (const policy::SettingChange& setting :
       statement != nullptr ? statement->settings : std::vector<policy::SettingChange>{}) {
    const SettingLimit limit = LimitOf(context.scope, setting);
    if (limit.cap == "null") continue;
    Append(out, "   setting ", setting.name, " = '", setting.value, "': PostgreSQL applies ",
           limit.applied, ", the scope's cap is ", limit.cap, " (", limit.unit, ")\n");
  }
  if (context.scope != nullptr && policy::ReadOnlyInDatabase(*context.scope)) {
    out += "   the session runs as a read-only transaction in the database\n";
  }
  Append(out, "   rule ", decision.rule, "\n");
  if (decision.kind == policy::Decision::kApproval) {
    Append(out, "   mode: ", ApprovalMode(context, decision), "\n");
  }
  if (!decision.reason.empty()) Append(out, "   reason: ", decision.reason, "\n");
  if (!decision.hint.empty()) Append(out, "   hint: ", decision.hint, "\n");
  std::fputs(out.c_str(), stdout);
}

}  // namespace

int RunPolicy(const Args& args) {
  if (args.empty()) return Usage("expected a subcommand: explain");
  if (args[0] == "--help" || args[0] == "-h") {
    std::fputs(kPolicyUsage, stdout);
    return 0;
  }
  if (args[0] != "explain") return Usage(Cat("unknown subcommand '", args[0], "'"));
  std::string_view config_path, claims, source, user, target_name, sql;
  bool have_sql = false;
  Context context;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kPolicyUsage, stdout);
      return 0;
    }
    if (arg == "--json") {
      context.json = true;
      continue;
    }
    bool matched = false;
    for (auto [name, value] :
         {std::pair<std::string_view, std::string_view*>{"--config", &config_path},
          {"--claims", &claims},
          {"--source", &source},
          {"--user", &user},
          {"--target", &target_name}}) {
      if (arg == name) {
        if (i + 1 >= args.size()) return Usage(std::string(name) + " needs a value");
        *value = args[++i];
        matched = true;
      } else if (arg.starts_with(name) && arg.size() > name.size() && arg[name.size()] == '=') {
        *value = arg.substr(name.size() + 1);
        matched = true;
      }
      if (matched) break;
    }
    if (matched) continue;
    if (arg.starts_with("--") || have_sql) {
      return Usage(Cat("unexpected argument '", arg, "'"));
    }
    sql = arg;
    have_sql = true;
  }
  if (config_path.empty()) return Usage("--config FILE is required");
  if (claims.empty() == user.empty()) return Usage("give either --claims JSON or --user NAME");
  if (!source.empty() && claims.empty()) return Usage("--source goes with --claims");
  if (!have_sql) return Usage("expected the SQL to explain (or '-' for stdin)");
  std::string sql_text(sql);
  if (sql == "-") {
    sql_text.clear();
    char buffer[8192];
    for (size_t n; (n = std::fread(buffer, 1, sizeof(buffer), stdin)) > 0;)
      sql_text.append(buffer, n);
  }

  std::optional<policy::Identity> identity;
  if (!claims.empty()) {
    absl::StatusOr<policy::Identity> parsed = IdentityFromClaims(claims);
    if (!parsed.ok()) return Usage(std::string(parsed.status().message()));
    identity = *std::move(parsed);
  }

  const absl::StatusOr<Config> config =
      LoadConfigFile(std::string(config_path), ConfigOptions{.check_files = false});
  if (!config.ok()) {
    std::fprintf(stderr, "%s\npgbastion policy explain: invalid config %.*s\n",
                 std::string(config.status().message()).c_str(),
                 static_cast<int>(config_path.size()), config_path.data());
    return 1;
  }
  if (!claims.empty()) {
    if (absl::Status placed = PlaceClaims(*config, source, *identity); !placed.ok()) {
      return Usage(std::string(placed.message()));
    }
  }
  if (!user.empty()) {
    const UserConfig* local = config->FindUser(user);
    if (local == nullptr) return Usage(Cat("no [[user]] named '", user, "'"));
    identity.emplace();
    identity->method = policy::AuthMethod::kLocalPassword;
    identity->subject = local->name;
    identity->groups = local->groups;
  }
  const TargetConfig* target =
      target_name.empty() ? &config->targets.front() : config->FindTarget(target_name);
  if (target == nullptr) return Usage(Cat("no [[target]] named '", target_name, "'"));
  context.target = target->name;
  context.approvals = &config->approvals;
  context.scope = config->policy->MatchScope(*identity, target->name);
  // A [[user]] limited to other targets never gets a session on this one.
  if (!user.empty()) {
    const UserConfig* local = config->FindUser(user);
    if (!local->targets.empty() && std::find(local->targets.begin(), local->targets.end(),
                                             target->name) == local->targets.end()) {
      context.scope = nullptr;
    }
  }

  const policy::SqlAnalysis analysis = policy::AnalyseSql(sql_text);
  if (context.scope == nullptr) {
    // As the gateway: no scope refuses everything, analysed or not.
    const policy::Decision none = policy::Policy::NoScope(*identity, target->name);
    if (!analysis.ok) Print(context, 0, sql_text, nullptr, none, nullptr);
    for (size_t i = 0; i < analysis.statements.size(); ++i) {
      const policy::StatementSummary& s = analysis.statements[i];
      Print(context, i, policy::StatementText(sql_text, s), &s, none, nullptr);
    }
    return 0;
  }
  // As the gateway judges a Query (policy/judgement.h).
  policy::SessionPolicyState state(*context.scope, target->user);
  if (!context.scope->masks.empty()) {
    state.UseCatalog(AssumedCatalog(analysis, state));
    std::fputs(
        "note: the scope has masks, and explain reads no database: it assumed that every "
        "relation exists as a table with the columns the statements name. The gateway decides "
        "with the target's catalog (attribute notation such as c.to_json, views, "
        "pgbastion:mask= column tags, relations it does not know): see security.md.\n",
        stderr);
  }
  const policy::QueryJudgement judgement =
      policy::JudgeQuery(*config->policy, *context.scope, analysis, state);
  if (!analysis.ok) {
    Print(context, 0, sql_text, nullptr, judgement.decisions[0], nullptr);
    return 0;
  }
  // The names each statement uses, resolved in the state it was judged in:
  // the one the allowed statements before it leave.
  policy::SessionPolicyState shown(*context.scope, target->user);
  for (size_t i = 0; i < analysis.statements.size(); ++i) {
    const policy::StatementSummary& s = analysis.statements[i];
    Print(context, i, policy::StatementText(sql_text, s), &s, judgement.decisions[i], &shown);
    if (judgement.decisions[i].kind == policy::Decision::kAllow) shown.Remember(s);
  }
  return 0;
}

}  // namespace pgb::tools
