#include "policy/rules.h"

#include <algorithm>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "base/str_cat.h"
#include "policy/function_classes.h"
#include "policy/setting_value.h"
#include "policy/masked_scope.h"

namespace pgb::policy {
namespace {

// `*` matches any run of characters (also none); everything else literally.
bool GlobMatch(std::string_view pattern, std::string_view text) {
  if (pattern == "*") return true;  // the common cases first: any, and a plain name
  if (pattern.find('*') == std::string_view::npos) return pattern == text;
  size_t p = 0, t = 0, star = std::string_view::npos, resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool Contains(const std::vector<std::string>& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// A list of names with `prefix*` entries, looked up per function and relation
// of every statement: exact names hashed, prefixes scanned.
class NameList {
 public:
  NameList(std::initializer_list<std::string_view> entries)
      : NameList(std::span<const std::string_view>(entries.begin(), entries.size())) {}
  explicit NameList(std::span<const std::string_view> entries) {
    for (std::string_view entry : entries) {
      if (entry.ends_with('*')) {
        prefixes_.push_back(entry.substr(0, entry.size() - 1));
      } else {
        exact_.insert(absl::string_view(entry.data(), entry.size()));
      }
    }
  }

  bool Contains(std::string_view name) const {
    if (exact_.contains(absl::string_view(name.data(), name.size()))) return true;
    return std::any_of(prefixes_.begin(), prefixes_.end(),
                       [&](std::string_view prefix) { return name.starts_with(prefix); });
  }

 private:
  absl::flat_hash_set<absl::string_view> exact_;
  std::vector<std::string_view> prefixes_;
};

bool InList(const NameList& list, std::string_view name) { return list.Contains(name); }

// Functions that read or write server files, reach the network, signal other
// backends, control the server or replication, or run SQL given as text (which
// the analyser cannot see into).
constexpr std::string_view kDangerousFunctionNames[] = {
    // server files
    "pg_read_file", "pg_read_binary_file", "pg_stat_file", "pg_ls_*", "pg_file_*",  // adminpack
    "pg_logdir_ls", "lo_import", "lo_export",
    // network
    "dblink", "dblink_*",
    // other backends and the server
    "pg_terminate_backend", "pg_cancel_backend", "pg_signal_backend", "pg_reload_conf",
    "pg_rotate_logfile", "pg_promote", "pg_log_backend_memory_contexts", "pg_switch_wal",
    "pg_create_restore_point", "pg_backup_start", "pg_backup_stop", "pg_start_backup",
    "pg_stop_backup", "pg_wal_replay_pause", "pg_wal_replay_resume", "pg_stat_reset*",
    "pg_stat_statements_reset", "binary_upgrade_*",
    // replication
    "pg_create_physical_replication_slot", "pg_create_logical_replication_slot",
    "pg_drop_replication_slot", "pg_copy_physical_replication_slot",
    "pg_copy_logical_replication_slot", "pg_replication_slot_advance", "pg_logical_slot_*",
    "pg_replication_origin_*", "pg_logical_emit_message",
    // SQL text or a relation named by a value: invisible to the analyser
    "query_to_xml*", "query_to_xmlschema", "cursor_to_xml*", "table_to_xml*", "schema_to_xml*",
    "database_to_xml*", "ts_stat", "ts_rewrite"};
const NameList kDangerousFunctions{std::span<const std::string_view>(kDangerousFunctionNames)};

// Functions that write (PostgreSQL refuses them in a read-only transaction).
const NameList kWritingFunctions = {"nextval",     "setval",        "lo_create",     "lo_creat",
                                    "lo_unlink",   "lo_put",        "lo_from_bytea", "lowrite",
                                    "lo_truncate", "lo_truncate64", "pg_notify"};

// System catalogs whose rows are secrets: password hashes, user mapping and
// subscription passwords, large object data, sampled column values, server
// authentication config. Denied to every profile but admin. All are named
// pg_*, which CheckRelations tests first.
const NameList kSecretCatalogs = {"pg_authid",        "pg_shadow",         "pg_user_mapping",
                                  "pg_user_mappings", "pg_subscription",   "pg_largeobject",
                                  "pg_statistic",     "pg_hba_file_rules", "pg_ident_file_mappings",
                                  "pg_file_settings"};

// Catalogs and views that hold values of table columns (most common values,
// histogram bounds): a scope with masks may not read them, admin included.
const NameList kColumnStatistics = {"pg_stats", "pg_stats_ext", "pg_stats_ext_exprs",
                                    "pg_statistic", "pg_statistic_ext_data"};

// Settings no profile but admin may change: who the session is, what the
// server logs and audits about it, and safety switches.
const NameList kProtectedSettings = {"role",
                                     "session_authorization",
                                     "session_replication_role",
                                     "allow_system_table_mods",
                                     "ignore_system_indexes",
                                     "ignore_checksum_failure",
                                     "zero_damaged_pages",
                                     "lo_compat_privileges",
                                     "dynamic_library_path",
                                     "local_preload_libraries",
                                     "session_preload_libraries",
                                     "track_activities",
                                     "log_statement",
                                     "log_duration",
                                     "log_min_duration_statement",
                                     "log_min_duration_sample",
                                     "log_statement_sample_rate",
                                     "log_transaction_sample_rate",
                                     "log_min_messages",
                                     "log_min_error_statement",
                                     "log_parameter_max_length",
                                     "log_parameter_max_length_on_error",
                                     "pgaudit.*"};

// Utility commands that neither write nor lock: allowed under read-only.
const NameList kHarmlessUtility = {"LISTEN",      "UNLISTEN",       "PREPARE",        "EXECUTE",
                                   "DEALLOCATE*", "DECLARE CURSOR", "FETCH",          "MOVE",
                                   "CLOSE*",      "DISCARD*",       "SET CONSTRAINTS"};
// Utility commands read-write also allows; any other needs approval.
const NameList kRoutineUtility = {"NOTIFY", "LOCK TABLE", "VACUUM", "ANALYZE"};
// Commands that are queries, whatever class their functions give them.
const NameList kQueryCommands = {"SELECT", "VALUES", "INSERT", "UPDATE", "DELETE", "MERGE"};
// Transaction commands that leave a prepared transaction behind.
const NameList kTwoPhaseCommands = {"PREPARE TRANSACTION", "COMMIT PREPARED", "ROLLBACK PREPARED"};

constexpr StatementClass kAllClasses[] = {
    StatementClass::kRead,        StatementClass::kTransaction, StatementClass::kSessionSetting,
    StatementClass::kUtility,     StatementClass::kWrite,       StatementClass::kHazard,
    StatementClass::kDdl,         StatementClass::kDcl,         StatementClass::kCodeExecution,
    StatementClass::kServerAccess};

constexpr uint16_t kReadOnlyClasses =
    ClassBit(StatementClass::kRead) | ClassBit(StatementClass::kTransaction) |
    ClassBit(StatementClass::kSessionSetting) | ClassBit(StatementClass::kUtility);
constexpr uint16_t kReadWriteClasses = kReadOnlyClasses | ClassBit(StatementClass::kWrite);
constexpr uint16_t kEveryClass = (1u << std::size(kAllClasses)) - 1;
// What read-write holds for approval rather than refusing.
constexpr uint16_t kReadWriteApprovalClasses =
    ClassBit(StatementClass::kHazard) | ClassBit(StatementClass::kDdl) |
    ClassBit(StatementClass::kDcl) | ClassBit(StatementClass::kCodeExecution) |
    ClassBit(StatementClass::kServerAccess);

uint16_t ProfileClasses(Profile profile) {
  switch (profile) {
    case Profile::kNone:
      return 0;
    case Profile::kReadOnly:
      return kReadOnlyClasses;
    case Profile::kReadWrite:
      return kReadWriteClasses;
    case Profile::kAdmin:
      return kEveryClass;
  }
  return 0;
}

std::string ClassList(uint16_t classes) {
  std::string out;
  for (StatementClass c : kAllClasses) {
    if ((classes & ClassBit(c)) == 0) continue;
    if (!out.empty()) out += ", ";
    out += StatementClassName(c);
  }
  return out.empty() ? "nothing" : out;
}

bool IsTruthy(std::string_view value) {
  const std::string v = absl::AsciiStrToLower(std::string(value));
  return v == "on" || v == "true" || v == "yes" || v == "1" || v == "t" || v == "y";
}

// "SELECT (server_access)", naming the function that made the class when a
// built-in function raised it: "SELECT (server_access: pg_read_file reads a
// server file)".
std::string Kind(const StatementSummary& s) {
  std::string why;
  for (const FunctionRef& f : s.functions) {
    const FunctionClassEntry* e = FindFunctionClass(f.name);
    if (e != nullptr && e->statement_class == s.statement_class) {
      why = Cat(": ", f.name, " ", e->reason);
      break;
    }
  }
  return Cat(s.command.empty() ? "statement" : s.command, " (",
             StatementClassName(s.statement_class), why, ")");
}

std::string ScopeLabel(const Scope& scope) {
  return Cat("scope '", scope.name, "' (profile ", ProfileName(scope.profile), ")");
}

std::string QualifiedName(std::string_view schema, std::string_view name) {
  return schema.empty() ? std::string(name) : Cat(schema, ".", name);
}

Decision Allow(std::string rule) { return Decision{Decision::kAllow, std::move(rule), "", ""}; }

Decision Refuse(Decision::Kind kind, std::string rule, std::string reason, std::string hint) {
  return Decision{kind, std::move(rule), std::move(reason), std::move(hint)};
}

// The first pattern that matches the name in any schema it may resolve to
// (fail closed), or nullptr.
const NamePattern* DeniedBy(const std::vector<NamePattern>& patterns, std::string_view schema,
                            std::string_view name, NameKind kind, const SessionPolicyState& state) {
  if (patterns.empty()) return nullptr;
  if (!schema.empty()) {
    for (const NamePattern& p : patterns) {
      if (p.Matches(schema, name)) return &p;
    }
    return nullptr;
  }
  const NamePattern* found = nullptr;
  const bool known = state.ForEachCandidate(name, kind, [&](std::string_view candidate) {
    for (const NamePattern& p : patterns) {
      if (found == nullptr && p.Matches(candidate, name)) found = &p;
    }
  });
  if (!known) {
    for (const NamePattern& p : patterns) {
      if (p.MatchesName(name)) return &p;
    }
  }
  return found;
}

// Whether the patterns allow the name in every schema it may resolve to (the
// session's own pg_temp excepted): an allow list must hold wherever the name
// lands, or an unqualified name could reach a relation the list leaves out.
bool AllowedBy(const std::vector<NamePattern>& patterns, std::string_view schema,
               std::string_view name, NameKind kind, const SessionPolicyState& state) {
  auto any_matches = [&](std::string_view candidate) {
    return std::any_of(patterns.begin(), patterns.end(),
                       [&](const NamePattern& p) { return p.Matches(candidate, name); });
  };
  if (!schema.empty()) return any_matches(schema);
  bool all = true;
  const bool known = state.ForEachCandidate(name, kind, [&](std::string_view candidate) {
    if (candidate == "pg_temp") return;
    if (!any_matches(candidate)) all = false;
  });
  if (known) return all;
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const NamePattern& p) { return p.schema == "*" && p.MatchesName(name); });
}

// Where an unqualified name may land, for messages: "orders (resolves to
// public.orders or alice.orders)".
std::string DescribeName(std::string_view schema, std::string_view name, NameKind kind,
                         const SessionPolicyState& state) {
  if (!schema.empty()) return QualifiedName(schema, name);
  const SchemaResolution resolution = state.ResolveSchemas(name, kind);
  if (resolution.any_schema) {
    return Cat(name, " (the search_path is not known, so it may resolve to any schema)");
  }
  std::string out = Cat(name, " (may resolve to ");
  for (size_t i = 0; i < resolution.schemas.size(); ++i) {
    if (i > 0) out += i + 1 == resolution.schemas.size() ? " or " : ", ";
    out += QualifiedName(resolution.schemas[i], name);
  }
  return out + ")";
}

class Judge {
 public:
  Judge(const Scope& scope, const StatementSummary& s, const SessionPolicyState& state)
      : scope_(scope), s_(s), state_(state) {}

  Decision Run(int depth);
  // CheckMasks alone, for a view's definition `view_depth` views deep.
  Decision RunMasks(int view_depth) {
    view_depth_ = view_depth;
    if (std::optional<Decision> denied = CheckMasks()) return *std::move(denied);
    return Allow("");
  }

 private:
  std::string ScopeRule(std::string_view suffix) const {
    return Cat("scope.", scope_.name, ".", suffix);
  }
  std::string ProfileRule(std::string_view suffix) const {
    return suffix.empty() ? Cat("profile.", ProfileName(scope_.profile))
                          : Cat("profile.", ProfileName(scope_.profile), ".", suffix);
  }
  void Hold(std::string rule, std::string reason, std::string hint) {
    if (!approval_) {
      approval_ = Refuse(Decision::kApproval, std::move(rule), std::move(reason), std::move(hint));
    }
  }

  std::optional<Decision> CheckClass();
  std::optional<Decision> CheckProfileConditions();
  std::optional<Decision> CheckSettings();
  std::optional<Decision> CheckResources();
  std::optional<Decision> CheckFunctions();
  std::optional<Decision> CheckRelations();
  std::optional<Decision> CheckMasks();
  // Whether `r` is (or, unqualified, may resolve to) the pg_catalog relation
  // of its name.
  bool MayBeCatalog(const RelationRef& r) const;
  std::optional<Decision> CheckPrepared(int depth);
  void CheckApprovalRules();

  const Scope& scope_;
  const StatementSummary& s_;
  const SessionPolicyState& state_;
  std::string allow_rule_;
  std::optional<Decision> approval_;
  int view_depth_ = 0;  // CheckMasks of a view's definition
};

std::optional<Decision> Judge::CheckClass() {
  const uint16_t allowed = scope_.classes_set ? scope_.classes : ProfileClasses(scope_.profile);
  const uint16_t bit = ClassBit(s_.statement_class);
  // Temporary tables, views and sequences are private to the session and
  // vanish with it (docs/security.md): read-only and read-write create them
  // without approval. (In a read-only scope PostgreSQL itself refuses the
  // CREATE: the session is a read-only transaction, see ReadOnlyInDatabase.)
  if (s_.temporary_object && !scope_.classes_set &&
      (scope_.profile == Profile::kReadOnly || scope_.profile == Profile::kReadWrite)) {
    allow_rule_ = ProfileRule("temporary");
    return std::nullopt;
  }
  if ((allowed & bit) != 0) {
    allow_rule_ = scope_.classes_set ? ScopeRule("classes") : ProfileRule("");
    return std::nullopt;
  }
  if (scope_.profile == Profile::kReadWrite && (kReadWriteApprovalClasses & bit) != 0) {
    allow_rule_ = ProfileRule("");
    Hold(ProfileRule(StatementClassName(s_.statement_class)),
         Cat(Kind(s_), " needs approval under ", ScopeLabel(scope_)),
         "read-write allows reading and writing rows without approval; operational hazards "
         "(strong locks, VACUUM FULL, CLUSTER, REINDEX, REFRESH MATERIALIZED VIEW, two-phase "
         "commit, FOR UPDATE of a whole table), schema changes, privileges, code execution and "
         "server file or network access are held for approval");
    return std::nullopt;
  }
  std::string hint;
  switch (scope_.profile) {
    case Profile::kReadOnly:
      hint = Cat(ScopeLabel(scope_), " allows read statements only; ask an administrator for a ",
                 "read-write scope");
      break;
    case Profile::kNone:
      hint = Cat(ScopeLabel(scope_), " allows: ", ClassList(allowed));
      break;
    default:
      hint = Cat(ScopeLabel(scope_), " allows: ", ClassList(allowed),
                 "; ask an administrator to change the scope's classes");
      break;
  }
  return Refuse(Decision::kDeny, scope_.classes_set ? ScopeRule("classes") : ProfileRule("class"),
                Cat(Kind(s_), " is not allowed by ", ScopeLabel(scope_)), std::move(hint));
}

std::optional<Decision> Judge::CheckProfileConditions() {
  const StatementClass c = s_.statement_class;
  if (scope_.profile == Profile::kReadOnly) {
    auto hint = [&] {
      return Cat(ScopeLabel(scope_), " allows reading without locks; ask an administrator for a ",
                 "read-write scope");
    };
    if (s_.modifies_data && !s_.temporary_object) {
      return Refuse(Decision::kDeny, ProfileRule("access"),
                    Cat(Kind(s_), " modifies data, which ", ScopeLabel(scope_), " does not allow"),
                    hint());
    }
    for (const RelationRef& r : s_.relations) {
      // The temporary relation created.
      if (s_.temporary_object && r.schema == "pg_temp") continue;
      if ((r.access & ~(kAccessSelect | kAccessReferences)) != 0) {
        return Refuse(Decision::kDeny, ProfileRule("access"),
                      Cat(Kind(s_), " locks or changes ",
                          DescribeName(r.schema, r.name, NameKind::kRelation, state_), ", which ",
                          ScopeLabel(scope_), " does not allow"),
                      hint());
      }
    }
    for (const FunctionRef& f : s_.functions) {
      if (InList(kWritingFunctions, f.name)) {
        return Refuse(Decision::kDeny, ProfileRule("writing-function"),
                      Cat(Kind(s_), " calls ", QualifiedName(f.schema, f.name),
                          "(), which writes; ", ScopeLabel(scope_), " does not allow it"),
                      hint());
      }
    }
    if ((c == StatementClass::kUtility && !InList(kHarmlessUtility, s_.command)) ||
        (c == StatementClass::kTransaction && InList(kTwoPhaseCommands, s_.command))) {
      return Refuse(Decision::kDeny, ProfileRule("command"),
                    Cat(Kind(s_), " is not allowed by ", ScopeLabel(scope_)),
                    Cat(ScopeLabel(scope_),
                        " allows LISTEN, UNLISTEN, cursors and prepared statements among utility "
                        "commands; ask an administrator for a read-write scope"));
    }
  } else if (scope_.profile == Profile::kReadWrite) {
    if (s_.destructive || s_.unfiltered_write) {
      Hold(ProfileRule("destructive"),
           Cat(Kind(s_), " is destructive (DROP, TRUNCATE, or UPDATE/DELETE without a real WHERE) ",
               "and needs approval under ", ScopeLabel(scope_)),
           "UPDATE and DELETE with a WHERE that selects rows are allowed without approval");
    }
    // A query the analyser raised to utility for a function it calls
    // (pg_notify(): a NOTIFY) is judged as that command would be: routine.
    if (c == StatementClass::kUtility && !InList(kHarmlessUtility, s_.command) &&
        !InList(kRoutineUtility, s_.command) && !InList(kQueryCommands, s_.command)) {
      Hold(ProfileRule("utility"), Cat(Kind(s_), " needs approval under ", ScopeLabel(scope_)),
           "read-write allows LISTEN/NOTIFY, LOCK, VACUUM, ANALYZE, cursors and prepared "
           "statements among utility commands without approval");
    }
  }
  return std::nullopt;
}

std::optional<Decision> Judge::CheckSettings() {
  if (scope_.profile == Profile::kAdmin) return std::nullopt;
  const bool limited = scope_.statement_timeout > absl::ZeroDuration() ||
                       scope_.lock_timeout > absl::ZeroDuration() ||
                       scope_.idle_in_transaction_session_timeout > absl::ZeroDuration() ||
                       !scope_.setting_caps.empty();
  auto limits_hint = [&] {
    return Cat(ScopeLabel(scope_), " limits ", scope_.LimitedSettingNames(),
               "; a limited setting may be lowered but not raised, reset or turned off");
  };
  if (limited && s_.command.starts_with("DISCARD ALL")) {
    return Refuse(Decision::kDeny, ScopeRule("limits"),
                  Cat(Kind(s_), " would reset the scope's limits"), limits_hint());
  }
  for (const SettingChange& setting : s_.settings) {
    const std::string& name = setting.name;
    if (name.empty()) {
      return Refuse(Decision::kDeny, "builtin.protected-setting",
                    Cat(Kind(s_), " calls set_config() with a setting name that is not a constant"),
                    "name the setting with a constant: set_config('work_mem', $1, false)");
    }
    if (InList(kProtectedSettings, name)) {
      return Refuse(
          Decision::kDeny, "builtin.protected-setting",
          Cat(Kind(s_), " changes the protected setting ", name),
          name == "role" || name == "session_authorization"
              ? "the gateway chooses the session's database role; ask an administrator for a "
                "scope with the privileges you need"
              : Cat("only an admin scope may change ", name));
    }
    if (ReadOnlyInDatabase(scope_) &&
        (name == "default_transaction_read_only" || name == "transaction_read_only") &&
        (setting.reset || !setting.value_known || !IsTruthy(setting.value))) {
      return Refuse(Decision::kDeny, "builtin.protected-setting",
                    Cat(Kind(s_), " turns off ", name, " under ", ScopeLabel(scope_)),
                    Cat(ScopeLabel(scope_),
                        " runs its sessions as read-only transactions in the database; "
                        "READ WRITE, and any setting that would turn that off, is refused"));
    }
    if (limited && name == "all") {
      return Refuse(Decision::kDeny, ScopeRule("limits"),
                    Cat(Kind(s_), " would reset the scope's limits"), limits_hint());
    }
    const std::optional<int64_t> cap = scope_.Cap(name);
    if (!cap.has_value()) continue;
    // Compared as PostgreSQL reads the value (policy/setting_value.h): its
    // units, fractions and rounding, so that no spelling lands on 0 ("no
    // limit") or above the cap.
    const CappedSetting* capped = FindCappedSetting(name);
    if (capped == nullptr || setting.reset || !setting.value_known || setting.value.empty() ||
        !WithinCap(*capped, setting.value, *cap)) {
      return Refuse(Decision::kDeny, ScopeRule("limits"),
                    Cat(Kind(s_), " would raise, reset or turn off ", name, " (limit ",
                        scope_.DescribeCap(name), ")"),
                    limits_hint());
    }
  }
  return std::nullopt;
}

// Shared resources one session could exhaust for every other (issue 24,
// item 3): the server's lock table (advisory locks taken once per row, or a
// new key per statement), its notification queue, and a holdable cursor's
// fill at commit, which runs with statement_timeout off.
std::optional<Decision> Judge::CheckResources() {
  if (scope_.profile == Profile::kAdmin) return std::nullopt;
  constexpr size_t kMaxAdvisoryLocksPerStatement = 8;
  constexpr size_t kMaxNotificationsPerStatement = 16;
  if (s_.holdable_cursor && scope_.statement_timeout > absl::ZeroDuration()) {
    return Refuse(Decision::kDeny, ScopeRule("limits"),
                  Cat(Kind(s_),
                      " declares a cursor WITH HOLD, which PostgreSQL fills at commit "
                      "with statement_timeout off, beyond the scope's limit of ",
                      absl::FormatDuration(scope_.statement_timeout)),
                  "declare the cursor without WITH HOLD inside a transaction, or read the rows "
                  "with a plain query");
  }
  size_t locks = 0;
  size_t new_keys = 0;
  size_t notifications = 0;
  std::vector<const ResourceCall*> seen;
  for (const ResourceCall& call : s_.resource_calls) {
    const bool lock =
        call.kind == ResourceCall::kAdvisoryLock || call.kind == ResourceCall::kAdvisoryXactLock;
    if (lock && !call.constant) {
      return Refuse(Decision::kDeny, "builtin.advisory-lock",
                    Cat(Kind(s_),
                        " takes advisory locks whose key is not a constant; one lock "
                        "per row or per parameter could fill the server's shared lock "
                        "table, and then no session could log in"),
                    "take an advisory lock with a constant key: SELECT pg_advisory_lock(42)");
    }
    if (call.kind == ResourceCall::kNotify && !call.constant) {
      return Refuse(Decision::kDeny, "builtin.notify",
                    Cat(Kind(s_),
                        " calls pg_notify() with arguments that are not constants, "
                        "which could send one notification per row and fill the "
                        "server's notification queue"),
                    "send notifications with constant arguments, or with NOTIFY");
    }
    if (lock) {
      ++locks;
      const bool repeated = std::any_of(seen.begin(), seen.end(), [&](const ResourceCall* c) {
        return c->key == call.key && c->kind == call.kind;
      });
      if (!repeated && !state_.HoldsAdvisoryLock(call)) ++new_keys;
      seen.push_back(&call);
    }
    if (call.kind == ResourceCall::kNotify) ++notifications;
  }
  if (locks > kMaxAdvisoryLocksPerStatement) {
    return Refuse(Decision::kDeny, "builtin.advisory-lock",
                  Cat(Kind(s_), " takes ", locks, " advisory locks; at most ",
                      kMaxAdvisoryLocksPerStatement, " in one statement"),
                  "take fewer advisory locks at once");
  }
  if (new_keys > 0 &&
      state_.advisory_locks() + new_keys > static_cast<uint64_t>(scope_.max_advisory_locks)) {
    return Refuse(Decision::kDeny, ScopeRule("advisory-locks"),
                  Cat(Kind(s_), " would hold more than ", scope_.max_advisory_locks,
                      " advisory lock keys in this session (", ScopeLabel(scope_), ")"),
                  "release advisory locks (pg_advisory_unlock, pg_advisory_unlock_all, or end the "
                  "transaction for the _xact_ ones) before taking more");
  }
  if (notifications > kMaxNotificationsPerStatement) {
    return Refuse(Decision::kDeny, "builtin.notify",
                  Cat(Kind(s_), " sends ", notifications, " notifications; at most ",
                      kMaxNotificationsPerStatement, " in one statement"),
                  "send fewer notifications at once");
  }
  if (notifications > 0 &&
      state_.notifications() + notifications > static_cast<uint64_t>(scope_.max_notifications)) {
    return Refuse(Decision::kDeny, ScopeRule("notifications"),
                  Cat(Kind(s_), " would send more than ", scope_.max_notifications,
                      " notifications in this session (", ScopeLabel(scope_), ")"),
                  "open a new session, or ask an administrator to raise max_notifications");
  }
  return std::nullopt;
}

std::optional<Decision> Judge::CheckFunctions() {
  const bool admin = scope_.profile == Profile::kAdmin;
  for (const FunctionRef& f : s_.functions) {
    if (const NamePattern* p =
            DeniedBy(scope_.functions_deny, f.schema, f.name, NameKind::kFunction, state_)) {
      return Refuse(
          Decision::kDeny, ScopeRule("functions.deny"),
          Cat(Kind(s_), " calls ", DescribeName(f.schema, f.name, NameKind::kFunction, state_),
              ", which matches \"", p->text, "\" in the deny list of ", ScopeLabel(scope_)),
          "call a function the scope does not deny");
    }
    if (!admin && IsDangerousFunction(f.name)) {
      std::vector<NamePattern> named;
      for (const NamePattern& p : scope_.functions_allow) {
        if (p.literal_name) named.push_back(p);
      }
      if (named.empty() || !AllowedBy(named, f.schema, f.name, NameKind::kFunction, state_)) {
        return Refuse(Decision::kDeny, "builtin.dangerous-function",
                      Cat(Kind(s_), " calls ", QualifiedName(f.schema, f.name),
                          "(), which is on the built-in list of dangerous functions (server "
                          "files, network, other sessions, server control, SQL given as text)"),
                      Cat("only an admin scope, or a scope whose functions.allow names ", f.name,
                          " exactly, may call it; ask an administrator"));
      }
    }
    if (!scope_.functions_allow.empty() &&
        !AllowedBy(scope_.functions_allow, f.schema, f.name, NameKind::kFunction, state_)) {
      return Refuse(
          Decision::kDeny, ScopeRule("functions.allow"),
          Cat(Kind(s_), " calls ", DescribeName(f.schema, f.name, NameKind::kFunction, state_),
              ", which is not in the allow list of ", ScopeLabel(scope_)),
          "call only functions the scope's functions.allow lists (schema-qualify the "
          "name if the search_path makes it ambiguous)");
    }
  }
  return std::nullopt;
}

std::optional<Decision> Judge::CheckRelations() {
  const bool admin = scope_.profile == Profile::kAdmin;
  for (const RelationRef& r : s_.relations) {
    if (const NamePattern* p =
            DeniedBy(scope_.relations_deny, r.schema, r.name, NameKind::kRelation, state_)) {
      return Refuse(
          Decision::kDeny, ScopeRule("relations.deny"),
          Cat(Kind(s_), " uses ", DescribeName(r.schema, r.name, NameKind::kRelation, state_),
              ", which matches \"", p->text, "\" in the deny list of ", ScopeLabel(scope_)),
          "use relations the scope does not deny (schema-qualify names if the "
          "search_path makes them ambiguous)");
    }
    if (!admin && r.name.starts_with("pg_") && InList(kSecretCatalogs, r.name)) {
      if (MayBeCatalog(r)) {
        return Refuse(
            Decision::kDeny, "builtin.secret-catalog",
            Cat(Kind(s_), " reads pg_catalog.", r.name, ", a system catalog that holds secrets"),
            "only an admin scope may read it; for role and catalog information use "
            "pg_roles, pg_class, information_schema");
      }
    }
    // The temporary relation a statement creates lands in the session's own
    // pg_temp, which an allow list does not need to name (deny lists apply).
    const bool created_temporary = s_.temporary_object && r.schema == "pg_temp";
    if (!scope_.relations_allow.empty() && !created_temporary &&
        !AllowedBy(scope_.relations_allow, r.schema, r.name, NameKind::kRelation, state_)) {
      return Refuse(
          Decision::kDeny, ScopeRule("relations.allow"),
          Cat(Kind(s_), " uses ", DescribeName(r.schema, r.name, NameKind::kRelation, state_),
              ", which is not in the allow list of ", ScopeLabel(scope_)),
          "use only relations the scope's relations.allow lists (schema-qualify names "
          "if the search_path makes them ambiguous)");
    }
  }
  return std::nullopt;
}

// By [[scope.mask]] name, or by a `pgbastion:mask=` tag in the catalog.
const ColumnMask* FindMask(const Scope& scope, std::string_view column,
                           const SessionPolicyState& state) {
  return MaskedName(scope, state.catalog(), column);
}

// Masks rewrite result columns by field name (policy/masking.h), so in a scope
// with masks a statement may use a masked column only as a plain output
// column, under its own name: anywhere else its values could reach the
// client under another name, or be inferred through a filter, a join or a
// sort. Admin scopes too: masks are the operator's explicit choice.
bool Judge::MayBeCatalog(const RelationRef& r) const {
  if (!r.schema.empty()) return r.schema == "pg_catalog";
  bool catalog = false;
  const bool known = state_.ForEachCandidate(
      r.name, NameKind::kRelation, [&](std::string_view s) { catalog |= s == "pg_catalog"; });
  return catalog || !known;
}

std::optional<Decision> Judge::CheckMasks() {
  if (scope_.masks.empty()) return std::nullopt;
  const std::string rule = ScopeRule("mask");
  auto refuse = [&](std::string reason, std::string hint) {
    return Refuse(Decision::kDeny, rule, std::move(reason), std::move(hint));
  };
  for (const RelationRef& r : s_.relations) {
    if (r.name.starts_with("pg_stat") && InList(kColumnStatistics, r.name) && MayBeCatalog(r)) {
      return refuse(Cat(Kind(s_), " reads pg_catalog.", r.name,
                        ", which holds column values (most common values, histogram bounds); "
                        "a scope with masked columns may not read it"),
                    "ask an administrator for column statistics outside the masked scope");
    }
  }
  if (s_.copy.direction == CopyDirection::kTo) {
    return refuse(
        Cat("COPY TO is refused in a scope with masked columns (scope ", scope_.name, ")"),
        "use SELECT; masked values are rewritten in result rows only");
  }
  for (const std::string& column : s_.other_columns) {
    if (FindMask(scope_, column, state_) != nullptr) {
      return refuse(Cat("column \"", column, "\" is masked for scope ", scope_.name,
                        ": it can only be selected as a plain column"),
                    Cat("select it as is (SELECT ", column,
                        " FROM ...), without renaming, "
                        "expressions, filters, joins, sorts or subqueries on it"));
    }
  }
  if (s_.row_reference) {
    return refuse(Cat("a whole-row reference (a table or alias used as a value, t.* inside an ",
                      "expression or subquery, NATURAL JOIN) could reveal masked columns of scope ",
                      scope_.name),
                  "list the columns you need");
  }
  if (s_.renames_columns) {
    return refuse(
        Cat("a column alias list on a table or join (AS t(a, b)) renames its columns ",
            "and could reveal masked columns of scope ", scope_.name, " under other names"),
        "drop the column alias list and select the columns by their own names");
  }
  // What among the outputs is masked, or may be: `masked column "email" is`.
  std::string masked_output;
  for (const std::string& column : s_.output_columns) {
    if (FindMask(scope_, column, state_) != nullptr) {
      masked_output = Cat("masked column \"", column, "\" is");
      break;
    }
  }
  if (masked_output.empty() && s_.star_output)
    masked_output = "*, which may hold masked columns, is";
  if (!masked_output.empty() && s_.sorts_by_position) {
    return refuse(Cat("ORDER BY, GROUP BY or DISTINCT ON by output position while ", masked_output,
                      " among the outputs could sort on a masked column (scope ", scope_.name, ")"),
                  "sort and group by named columns that are not masked");
  }
  if (!masked_output.empty() && s_.distinct_output) {
    return refuse(Cat("SELECT DISTINCT compares every output, and ", masked_output,
                      " among them (scope ", scope_.name, ")"),
                  "leave out DISTINCT, or the masked columns");
  }
  // CREATE TABLE t (a, b) AS EXECUTE p: p's result columns, renamed, into a table.
  if (s_.select_into && !s_.execute_name.empty()) {
    const auto* prepared = state_.Prepared(s_.execute_name);
    bool reveals = false;  // an unknown name is refused by CheckPrepared
    if (prepared != nullptr) {
      for (const auto& statement : *prepared) {
        reveals |= statement->star_output;
        for (const std::string& column : statement->output_columns) {
          reveals |= FindMask(scope_, column, state_) != nullptr;
        }
      }
    }
    if (reveals) {
      return refuse(
          Cat("CREATE TABLE AS EXECUTE ", s_.execute_name, " would store masked columns of scope ",
              scope_.name, " under names of its choosing"),
          "create the table from a SELECT that leaves the masked columns out");
    }
  }
  // What the target's catalog decides (policy/masked_scope.h).
  if (std::optional<MaskRefusal> r = CheckMaskedScope(scope_, s_, state_, view_depth_)) {
    return refuse(std::move(r->reason), std::move(r->hint));
  }
  return std::nullopt;
}

void Merge(Decision& into, Decision d) {
  if (into.kind == Decision::kDeny) return;
  if (d.kind == Decision::kDeny ||
      (d.kind == Decision::kApproval && into.kind == Decision::kAllow)) {
    into = std::move(d);
  }
}

// PREPARE is judged by the statement it prepares, EXECUTE by what the session
// prepared under that name; depth stops CREATE TABLE AS EXECUTE chains.
std::optional<Decision> Judge::CheckPrepared(int depth) {
  if (depth > 2) {
    return Refuse(Decision::kDeny, "prepared.unknown",
                  Cat(Kind(s_), " nests prepared statements too deeply"), "");
  }
  Decision inner = Allow("");
  if (s_.prepared != nullptr) {
    Decision d = Judge(scope_, *s_.prepared, state_).Run(depth + 1);
    if (d.kind != Decision::kAllow) {
      d.reason = Cat("PREPARE ", s_.prepare_name, " prepares ", d.reason);
    }
    Merge(inner, std::move(d));
  }
  if (!s_.execute_name.empty()) {
    const auto* prepared = state_.Prepared(s_.execute_name);
    if (prepared == nullptr || prepared->empty()) {
      return Refuse(Decision::kDeny, "prepared.unknown",
                    Cat(Kind(s_), " runs prepared statement \"", s_.execute_name,
                        "\", which this session has not prepared through the gateway"),
                    "PREPARE the statement in this session first: the gateway judges EXECUTE by "
                    "the statement it runs");
    }
    for (const auto& statement : *prepared) {
      Decision d = Judge(scope_, *statement, state_).Run(depth + 1);
      if (d.kind != Decision::kAllow) {
        d.reason = Cat("EXECUTE ", s_.execute_name, " runs ", d.reason);
      }
      Merge(inner, std::move(d));
    }
  }
  if (inner.kind == Decision::kDeny) return inner;
  if (inner.kind == Decision::kApproval) Hold(inner.rule, inner.reason, inner.hint);
  return std::nullopt;
}

void Judge::CheckApprovalRules() {
  if ((scope_.approval & ClassBit(s_.statement_class)) != 0) {
    Hold(ScopeRule(Cat("approval.", StatementClassName(s_.statement_class))),
         Cat(Kind(s_), " needs approval under ", ScopeLabel(scope_)),
         Cat("scope '", scope_.name, "' holds ", StatementClassName(s_.statement_class),
             " statements for approval"));
  }
  if ((scope_.approval & kApprovalDestructive) != 0 && (s_.destructive || s_.unfiltered_write)) {
    Hold(ScopeRule("approval.destructive"),
         Cat(Kind(s_), " is destructive and needs approval under ", ScopeLabel(scope_)),
         Cat("scope '", scope_.name,
             "' holds DROP, TRUNCATE and UPDATE/DELETE without a real WHERE for approval"));
  }
}

Decision Judge::Run(int depth) {
  for (auto check : {&Judge::CheckClass, &Judge::CheckProfileConditions, &Judge::CheckSettings,
                     &Judge::CheckResources, &Judge::CheckFunctions, &Judge::CheckRelations,
                     &Judge::CheckMasks}) {
    if (std::optional<Decision> denied = (this->*check)()) return *std::move(denied);
  }
  if (s_.prepared != nullptr || !s_.execute_name.empty()) {
    if (std::optional<Decision> denied = CheckPrepared(depth)) return *std::move(denied);
  }
  CheckApprovalRules();
  if (approval_) return *std::move(approval_);
  return Allow(std::move(allow_rule_));
}

// A double-quoted identifier from text[i], its opening quote, to its closing
// quote, with "" standing for one quote: appended to `out`, `i` moved past
// it. False when the quote is not closed (then `i` is at the end).
bool ReadQuotedIdentifier(std::string_view text, size_t& i, std::string& out) {
  ++i;
  while (i < text.size()) {
    if (text[i] == '"') {
      if (i + 1 < text.size() && text[i + 1] == '"') {
        out += '"';
        i += 2;
        continue;
      }
      ++i;
      return true;
    }
    out += text[i++];
  }
  return false;
}

// One part of a dotted name from text[i] up to the next '.' or the end, as
// PostgreSQL reads an identifier: "Quoted" as written, unquoted folded to
// lower case.
absl::StatusOr<std::string> ReadNamePart(std::string_view text, size_t& i) {
  std::string part;
  if (i < text.size() && text[i] == '"') {
    if (!ReadQuotedIdentifier(text, i, part)) {
      return absl::InvalidArgumentError("unterminated quoted identifier");
    }
    return part;
  }
  while (i < text.size() && text[i] != '.') {
    const char c = text[i++];
    if (c == '"' || absl::ascii_isspace(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          "unexpected quote or space (quote a whole part: \"My Schema\".*)");
    }
    part += absl::ascii_tolower(static_cast<unsigned char>(c));
  }
  return part;
}

// One entry of a search_path value (PostgreSQL's SplitIdentifierString):
// quoted entries keep their case, unquoted ones are folded to lower case.
std::vector<std::string> SplitSearchPath(std::string_view value) {
  std::vector<std::string> entries;
  size_t i = 0;
  auto skip_space = [&] {
    while (i < value.size() && absl::ascii_isspace(static_cast<unsigned char>(value[i]))) ++i;
  };
  while (true) {
    skip_space();
    if (i >= value.size()) break;
    std::string entry;
    if (value[i] == '"') {
      ReadQuotedIdentifier(value, i, entry);  // unclosed: the rest of the value
    } else {
      while (i < value.size() && value[i] != ',' &&
             !absl::ascii_isspace(static_cast<unsigned char>(value[i]))) {
        entry += absl::ascii_tolower(static_cast<unsigned char>(value[i++]));
      }
    }
    entries.push_back(std::move(entry));
    skip_space();
    if (i < value.size() && value[i] == ',') ++i;
  }
  return entries;
}

}  // namespace

const char* DecisionKindName(Decision::Kind kind) {
  switch (kind) {
    case Decision::kAllow:
      return "allow";
    case Decision::kDeny:
      return "deny";
    case Decision::kApproval:
      return "approval";
  }
  return "unknown";
}

std::string DecisionMessage(const Decision& decision) {
  switch (decision.kind) {
    case Decision::kAllow:
      return Cat("allowed by pgbastion rule \"", decision.rule, "\"");
    case Decision::kDeny:
      return Cat("permission denied by pgbastion rule \"", decision.rule, "\": ", decision.reason);
    case Decision::kApproval:
      return Cat("approval required by pgbastion rule \"", decision.rule, "\": ", decision.reason);
  }
  return decision.reason;
}

std::optional<int64_t> Scope::Cap(std::string_view setting_name) const {
  const auto ms = [](absl::Duration d) -> std::optional<int64_t> {
    if (d <= absl::ZeroDuration()) return std::nullopt;
    return absl::ToInt64Milliseconds(d);
  };
  if (setting_name == "statement_timeout") return ms(statement_timeout);
  if (setting_name == "lock_timeout") return ms(lock_timeout);
  if (setting_name == "idle_in_transaction_session_timeout") {
    return ms(idle_in_transaction_session_timeout);
  }
  for (const auto& [capped, value] : setting_caps) {
    if (capped == setting_name) return value;
  }
  return std::nullopt;
}

std::string Scope::DescribeCap(std::string_view setting_name) const {
  const std::optional<int64_t> cap = Cap(setting_name);
  const CappedSetting* setting = FindCappedSetting(setting_name);
  if (!cap.has_value() || setting == nullptr) return "none";
  switch (setting->unit) {
    case SettingUnit::kMilliseconds:
      return absl::FormatDuration(absl::Milliseconds(*cap));
    case SettingUnit::kSeconds:
      return absl::FormatDuration(absl::Seconds(*cap));
    case SettingUnit::kKilobytes:
      return Cat(*cap, "kB");
    case SettingUnit::kBlocks:
      return Cat(*cap * 8, "kB");
    case SettingUnit::kNone:
      break;
  }
  return Cat(*cap);
}

std::string Scope::LimitedSettingNames() const {
  std::string out;
  for (const CappedSetting& setting : CappedSettings()) {
    if (!Cap(setting.name).has_value()) continue;
    if (!out.empty()) out += ", ";
    out += setting.name;
  }
  return out;
}

bool ReadOnlyInDatabase(const Scope& scope) {
  if (scope.profile == Profile::kReadOnly) return true;
  return scope.profile == Profile::kNone && scope.classes_set &&
         (scope.classes & ~kReadOnlyClasses) == 0;
}

const char* ProfileName(Profile profile) {
  switch (profile) {
    case Profile::kNone:
      return "none";
    case Profile::kReadOnly:
      return "read-only";
    case Profile::kReadWrite:
      return "read-write";
    case Profile::kAdmin:
      return "admin";
  }
  return "unknown";
}

bool NamePattern::Matches(std::string_view schema_name, std::string_view object_name) const {
  return GlobMatch(schema, schema_name) && GlobMatch(name, object_name);
}

bool NamePattern::MatchesName(std::string_view object_name) const {
  return GlobMatch(name, object_name);
}

absl::StatusOr<NamePattern> ParseNamePattern(std::string_view text) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (true) {
    absl::StatusOr<std::string> part = ReadNamePart(text, i);
    if (!part.ok()) return part.status();
    if (part->empty()) {
      return absl::InvalidArgumentError(
          "empty name part; write schema.name, *.name, schema.* or name");
    }
    parts.push_back(*std::move(part));
    if (i >= text.size()) break;
    if (text[i] != '.') {
      return absl::InvalidArgumentError("expected '.' after a quoted identifier");
    }
    ++i;
  }
  if (parts.size() > 2) {
    return absl::InvalidArgumentError("too many '.'; write schema.name (quote names with dots)");
  }
  NamePattern pattern;
  pattern.text = std::string(text);
  pattern.schema = parts.size() == 2 ? parts[0] : "*";
  pattern.name = parts.back();
  pattern.literal_name = pattern.name.find('*') == std::string::npos;
  return pattern;
}

absl::StatusOr<std::string> ParseColumnName(std::string_view text) {
  const bool quoted = !text.empty() && text[0] == '"';
  size_t i = 0;
  absl::StatusOr<std::string> name = ReadNamePart(text, i);
  if (!name.ok()) return name.status();
  if (i < text.size()) {
    return absl::InvalidArgumentError(
        "a column name has no '.' (masks match the column name in every table; quote a name "
        "with a dot: \"a.b\")");
  }
  if (name->empty()) return absl::InvalidArgumentError("empty column name");
  if (!quoted && name->find('*') != std::string::npos) {
    return absl::InvalidArgumentError("a column name, not a pattern: '*' is not allowed");
  }
  if (name->size() > 63) {
    return absl::InvalidArgumentError(
        "longer than 63 bytes; PostgreSQL truncates names to 63 bytes");
  }
  return name;
}

bool IdentitySource::Matches(const Identity& identity) const {
  return identity.method == method && (method != AuthMethod::kToken || identity.issuer == issuer);
}

bool Scope::MatchesIdentity(const Identity& identity) const {
  if (!sources.empty() &&
      std::none_of(sources.begin(), sources.end(),
                   [&](const IdentitySource& source) { return source.Matches(identity); })) {
    return false;
  }
  if (!subjects.empty() &&
      std::none_of(subjects.begin(), subjects.end(),
                   [&](const std::string& s) { return GlobMatch(s, identity.subject); })) {
    return false;
  }
  if (!groups.empty() && std::none_of(groups.begin(), groups.end(), [&](const std::string& g) {
        return Contains(identity.groups, g);
      })) {
    return false;
  }
  if (!issuers.empty() && !Contains(issuers, identity.issuer)) return false;
  for (const auto& wanted : claims) {
    const auto& [claim, value] = wanted;
    const bool in_claims = std::any_of(identity.claims.begin(), identity.claims.end(),
                                       [&](const auto& c) { return c == wanted; });
    const bool in_fields =
        (claim == "sub" && identity.subject == value) ||
        (claim == "iss" && identity.issuer == value) ||
        ((claim == "azp" || claim == "client_id") && identity.client_id == value);
    if (!in_claims && !in_fields) return false;
  }
  return true;
}

bool Scope::MatchesTarget(std::string_view target) const {
  return targets.empty() || Contains(targets, target);
}

SessionPolicyState::SessionPolicyState(const Scope& scope, std::string role)
    : SessionPolicyState(scope.search_path, std::move(role)) {}

SessionPolicyState::SessionPolicyState(std::vector<std::string> search_path, std::string role)
    : default_path_(std::move(search_path)) {
  roles_.push_back(std::move(role));
  for (const std::string& entry : default_path_) AddPathEntry(entry);
}

void SessionPolicyState::AddPathEntry(std::string entry) {
  if (!Contains(path_schemas_, entry)) path_schemas_.push_back(std::move(entry));
}

void SessionPolicyState::AddSearchPath(std::string_view value) {
  for (std::string& entry : SplitSearchPath(value)) AddPathEntry(std::move(entry));
}

namespace {
std::string AdvisoryKey(const ResourceCall& call) {
  return Cat(call.kind == ResourceCall::kAdvisoryXactLock ? "x:" : "s:", call.key);
}
}  // namespace

bool SessionPolicyState::HoldsAdvisoryLock(const ResourceCall& call) const {
  return advisory_keys_.contains(AdvisoryKey(call));
}

void SessionPolicyState::Remember(const StatementSummary& statement) {
  for (const ResourceCall& call : statement.resource_calls) {
    switch (call.kind) {
      case ResourceCall::kAdvisoryLock:
      case ResourceCall::kAdvisoryXactLock:
        advisory_keys_.insert(AdvisoryKey(call));
        break;
      case ResourceCall::kAdvisoryUnlock:
        if (call.constant) advisory_keys_.erase(AdvisoryKey(call));
        break;
      case ResourceCall::kAdvisoryUnlockAll:
        absl::erase_if(advisory_keys_, [](const std::string& k) { return k.starts_with("s:"); });
        break;
      case ResourceCall::kNotify:
        ++notifications_;
        break;
    }
  }
  if (statement.ends_transaction) {
    absl::erase_if(advisory_keys_, [](const std::string& k) { return k.starts_with("x:"); });
  }
  if (!statement.prepare_name.empty() && statement.prepared != nullptr) {
    // PREPARE of a name in use fails and keeps the old statement; the gateway
    // does not learn which happened, so both stay possible.
    prepared_[statement.prepare_name].push_back(statement.prepared);
  }
  if (statement.deallocate_all || statement.command.starts_with("DISCARD ALL")) {
    prepared_.clear();
  } else if (!statement.deallocate_name.empty()) {
    prepared_.erase(statement.deallocate_name);
  }
  if (statement.command.starts_with("DISCARD ALL")) {
    for (const std::string& entry : default_path_) AddPathEntry(entry);
  }
  for (const SettingChange& setting : statement.settings) {
    if (setting.name.empty()) {  // set_config() of a setting named at run time
      path_unknown_ = true;
      role_unknown_ = true;
    } else if (setting.name == "search_path" && !setting.value_known) {
      path_unknown_ = true;
    } else if (setting.name == "search_path" && !setting.reset && !setting.value.empty()) {
      AddSearchPath(setting.value);
    } else if (setting.name == "search_path" || setting.name == "all") {
      for (const std::string& entry : default_path_) AddPathEntry(entry);
    } else if (setting.name == "role" || setting.name == "session_authorization") {
      if (!setting.value_known) {
        role_unknown_ = true;
      } else if (!setting.reset && !setting.value.empty() && setting.value != "none" &&
                 !Contains(roles_, setting.value)) {
        roles_.push_back(setting.value);
      }
    }
  }
}

const std::vector<std::shared_ptr<const StatementSummary>>* SessionPolicyState::Prepared(
    std::string_view name) const {
  // Debian's Abseil cannot look a std::string key up by std::string_view.
  const auto it = prepared_.find(std::string(name));
  return it == prepared_.end() ? nullptr : &it->second;
}

SchemaResolution SessionPolicyState::ResolveSchemas(std::string_view name, NameKind kind) const {
  SchemaResolution resolution;
  resolution.any_schema = !ForEachCandidate(name, kind, [&](std::string_view schema) {
    if (!Contains(resolution.schemas, schema)) resolution.schemas.emplace_back(schema);
  });
  if (resolution.any_schema) resolution.schemas.clear();
  return resolution;
}

const Scope* Policy::MatchScope(const Identity& identity, std::string_view target) const {
  for (const Scope& scope : scopes_) {
    if (scope.MatchesTarget(target) && scope.MatchesIdentity(identity)) return &scope;
  }
  return nullptr;
}

Decision Policy::Decide(const Scope& scope, const StatementSummary& statement,
                        const SessionPolicyState& state) const {
  return Judge(scope, statement, state).Run(0);
}

Decision DecideMasks(const Scope& scope, const StatementSummary& statement,
                     const SessionPolicyState& state, int view_depth) {
  return Judge(scope, statement, state).RunMasks(view_depth);
}

Decision Policy::DecideFunctionCall(const Scope& scope) const {
  if (!scope.masks.empty()) {
    return Refuse(Decision::kDeny, Cat("scope.", scope.name, ".mask"),
                  Cat("a FunctionCall message is refused in a scope with masked columns (scope ",
                      scope.name, "): the function could return a masked value"),
                  "call the function with SELECT, where the gateway can see what it reads");
  }
  if (scope.profile == Profile::kAdmin) return Allow("profile.admin");
  if (scope.allow_function_call) return Allow(Cat("scope.", scope.name, ".allow_function_call"));
  return Refuse(Decision::kDeny, "builtin.function-call",
                "a FunctionCall message names its function by OID, which cannot be checked "
                "against the function lists",
                Cat("call the function with SELECT instead; an administrator can set "
                    "allow_function_call = true on scope '",
                    scope.name, "'"));
}

namespace {

// Where an identity came from, for messages: "a gateway user", "a token of https://idp".
std::string SourceOf(const Identity& identity) {
  switch (identity.method) {
    case AuthMethod::kLocalPassword:
      return "a gateway user";
    case AuthMethod::kToken:
      return Cat("a token of ", identity.issuer);
    case AuthMethod::kCertificate:
      return "a client certificate";
    case AuthMethod::kPeer:
      return "an OS user on the local socket";
  }
  return "unknown";
}

}  // namespace

Decision Policy::NoScope(const Identity& identity, std::string_view target) {
  return Refuse(Decision::kDeny, "no-scope",
                Cat("no scope of the policy gives \"", identity.subject, "\" (", SourceOf(identity),
                    ") access to target \"", target, "\""),
                "ask an administrator for a [[scope]] that matches your identity (its source, "
                "subject, groups or claims) and this target");
}

const std::vector<std::string_view>& DangerousFunctions() {
  static const std::vector<std::string_view> names(std::begin(kDangerousFunctionNames),
                                                   std::end(kDangerousFunctionNames));
  return names;
}

bool IsDangerousFunction(std::string_view name) { return InList(kDangerousFunctions, name); }

}  // namespace pgb::policy
