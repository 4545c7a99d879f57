// The policy: which scope an identity gets on a target, and what that scope
// lets each statement do. A Policy is built once from the config
// ([[scope]] tables, policy/policy_config.h), is immutable, and is shared by
// every shard; the per-session part (search_path, SQL-level prepared
// statements) lives in SessionPolicyState, owned by the session.
//
//   const Scope* scope = policy.MatchScope(identity, "app");  // nullptr: no access at all
//   SessionPolicyState state(*scope, /*role=*/"app_rw");
//   Decision d = policy.Decide(*scope, statement, state);  // one statement
//   if (d.kind != Decision::kAllow) { ... refuse with DecisionMessage(d), HINT d.hint ... }
//   state.Remember(statement);  // before judging the next: `SET search_path = x; SELECT ...`
//
// A whole Query is judged with JudgeQuery (policy/judgement.h), the one loop
// over its statements: in order, each allowed one remembered before the next
// is judged (or a SET earlier in the same Query would be missed), the first
// refusal refusing the Query. Remember only widens what the state considers
// possible (search paths, roles, prepared statements) or forgets prepared
// statements, so calling it for a statement that was judged but then not
// forwarded is safe: it can only make later decisions stricter.
//
// Deny by default: an identity that matches no scope gets nothing; a statement
// is allowed only when its scope's profile (or `classes`) allows its class and
// no relation, function or setting rule refuses it. The order of checks is
// fixed and the first refusal is reported: the profile's class rules, the
// profile's extra conditions, protected settings, function lists, relation
// lists, column masks, prepared statements, then approval rules. A deny
// always wins over an approval.
//
// Rule names are stable identifiers for audit records:
//   no-scope                         no scope matches (MatchScope returned nullptr)
//   profile.<profile>                allowed by the profile
//   profile.<profile>.class          the profile does not allow the statement class
//   profile.read-only.access         locking or writing access under read-only
//   profile.read-only.command        a utility command read-only does not allow
//   profile.<profile>.temporary      CREATE TEMP TABLE/VIEW/SEQUENCE under read-only, read-write
//   profile.read-only.writing-function
//                                    nextval(), setval(), lo_* writes, pg_notify() under
//                                    read-only
//   profile.read-write.<class>       approval: hazard, ddl, dcl, code_execution, server_access,
//                                    utility
//   profile.read-write.destructive   approval: DROP, TRUNCATE, unfiltered UPDATE/DELETE
//   scope.<name>.classes             allowed by / not in the scope's `classes`
//   scope.<name>.relations.deny|allow, scope.<name>.functions.deny|allow
//   scope.<name>.approval.<condition>  approval required by the scope's `approval`
//   scope.<name>.limits              changing or resetting a limited setting (compared as
//                                    PostgreSQL reads it); DECLARE ... WITH HOLD in a scope
//                                    with statement_timeout
//   scope.<name>.advisory-locks      more distinct advisory lock keys than max_advisory_locks
//   scope.<name>.notifications       more notifications than max_notifications
//   builtin.advisory-lock            an advisory lock whose key is not a constant, or more than
//                                    8 in one statement
//   builtin.notify                   pg_notify() with arguments that are not constants, or more
//                                    than 16 notifications in one statement
//   scope.<name>.mask                in a scope with masks (every profile, admin too): a
//                                    masked column used other than as a plain output column,
//                                    a whole-row reference, a column alias list, a sort by
//                                    position or DISTINCT over masked output, COPY TO, a
//                                    FunctionCall message
//   builtin.dangerous-function       a function of the built-in dangerous list
//   builtin.secret-catalog           a system catalog that holds secrets
//   builtin.protected-setting        role, session_authorization and other protected settings
//   builtin.function-call            a FunctionCall protocol message
//   builtin.read-only-reconnect      (the statement gate) a reload made the session's scope
//                                    read-only in the database; it must reconnect
//   prepared.unknown                 EXECUTE of a name this session has not prepared (admin too:
//                                    what it runs is unknown, and approval rules apply to admin)
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "policy/catalog.h"
#include "policy/identity.h"
#include "policy/masking.h"
#include "policy/statement.h"

namespace pgb::policy {

struct Decision {
  enum Kind : uint8_t { kAllow, kDeny, kApproval };
  Kind kind = kDeny;
  std::string rule;    // stable identifier, see the list above
  std::string reason;  // names the statement kind and what the rule says; empty for kAllow
  std::string hint;    // what would be allowed, or how to ask; empty for kAllow
};

const char* DecisionKindName(Decision::Kind kind);  // "allow", "deny", "approval"

// The text of the ErrorResponse for a refused statement:
//   permission denied by pgbastion rule "profile.read-only.class": DROP TABLE (ddl) ...
//   approval required by pgbastion rule "profile.read-write.ddl": ...
std::string DecisionMessage(const Decision& decision);

enum class Profile : uint8_t { kNone, kReadOnly, kReadWrite, kAdmin };
const char* ProfileName(Profile profile);  // "none", "read-only", "read-write", "admin"

// A relation or function name pattern, written like SQL: `app.*`, `*.secrets`,
// `public.orders`, `"Billing".*`, `pg_read_file` (no schema: any schema, the
// same as `*.pg_read_file`). Unquoted parts are folded to lower case as
// PostgreSQL folds identifiers; quoted parts are taken as written. `*` inside
// a part matches any run of characters within that part.
struct NamePattern {
  std::string schema;  // "*" for any schema
  std::string name;
  std::string text;           // as written in the config, for messages
  bool literal_name = false;  // the name part has no wildcard: it names one function

  bool Matches(std::string_view schema_name, std::string_view object_name) const;
  bool MatchesName(std::string_view object_name) const;  // the schema part ignored
};

// Parses a pattern; the error says what is wrong ("empty schema part", ...).
absl::StatusOr<NamePattern> ParseNamePattern(std::string_view text);

// A column name as SQL writes it, as PostgreSQL names the column: `email`
// and `Email` are "email", `"Email"` is "Email". No schema or table part, no
// wildcard; at most 63 bytes.
absl::StatusOr<std::string> ParseColumnName(std::string_view text);

// Conditions under which a statement needs approval (`approval = [...]`): one
// bit per StatementClass, plus destructive statements.
enum ApprovalCondition : uint16_t { kApprovalDestructive = 1 << 15 };  // above every class bit
inline constexpr uint16_t ClassBit(StatementClass c) {
  return static_cast<uint16_t>(1u << static_cast<unsigned>(c));
}

// Where an identity may come from for a scope (`sources`): gateway-local
// users, client certificates, OS users on a Unix-domain socket (peer), or
// tokens of one [[issuer]] (its `iss` URL).
// Names are only unique within one source: a token whose `sub` is "alice"
// is not the local user alice.
struct IdentitySource {
  AuthMethod method = AuthMethod::kLocalPassword;
  std::string issuer;  // kToken: the issuer's exact `iss`; empty otherwise

  bool Matches(const Identity& identity) const;
};

struct Scope {
  std::string name;

  // Who it is for: every condition that is set must hold (within a list, any
  // entry may match). At least one of them is set (the config requires it;
  // `subjects = ["*"]` is how a scope says "everyone"), and a scope that
  // names anyone (subjects other than "*", groups, claims) names its sources
  // too (`sources` or `issuers`).
  std::vector<IdentitySource> sources;  // any of these; empty = every source
  std::vector<std::string> subjects;    // exact or glob (`ci-bot-*`) on Identity::subject
  std::vector<std::string> groups;      // any of these in Identity::groups
  std::vector<std::string> issuers;     // exact Identity::issuer
  std::vector<std::pair<std::string, std::string>> claims;  // every (name, value) present
  std::vector<std::string> targets;                         // target names; empty = every target

  Profile profile = Profile::kNone;
  // `classes`: replaces the profile's set of classes allowed without approval
  // (bits of ClassBit). 0 when not configured.
  uint16_t classes = 0;
  bool classes_set = false;

  std::vector<NamePattern> relations_allow;  // empty = every relation
  std::vector<NamePattern> relations_deny;
  std::vector<NamePattern> functions_allow;  // empty = every function (but the dangerous ones)
  std::vector<NamePattern> functions_deny;
  bool allow_function_call = false;  // FunctionCall protocol messages
  uint16_t approval = 0;             // ClassBit()s | kApprovalDestructive

  // The search_path the session starts with ("$user" = the database role).
  // The gateway should SET it on the backend so the rules' view is exact.
  std::vector<std::string> search_path = {"$user", "public"};

  // Limits the gateway SETs on the backend session; zero = not set. A limited
  // setting cannot be raised, reset or discarded by the client.
  absl::Duration statement_timeout = absl::ZeroDuration();
  absl::Duration lock_timeout = absl::ZeroDuration();
  absl::Duration idle_in_transaction_session_timeout = absl::ZeroDuration();
  // Resource settings capped the same way ([scope] work_mem = "64MB", ...;
  // the names of CappedSettings() in policy/setting_value.h): the value in
  // the setting's base unit (kB, 8 kB blocks, ms), sent at startup.
  std::vector<std::pair<std::string, int64_t>> setting_caps;

  // The cap on setting `name` in its base unit (the timeouts in ms), or
  // nullopt when the scope does not limit it.
  std::optional<int64_t> Cap(std::string_view setting_name) const;
  // "64MB" / "20s": the cap as the config wrote it, for messages.
  std::string DescribeCap(std::string_view setting_name) const;
  // "statement_timeout, work_mem": every setting the scope limits.
  std::string LimitedSettingNames() const;

  // Shared resources (issue 24, item 3): distinct advisory lock keys a
  // session may hold at once, and notifications it may send in all.
  int64_t max_advisory_locks = 64;
  int64_t max_notifications = 10000;

  // Result columns this scope's sessions see masked ([[scope.mask]]); at most
  // one entry per column name.
  std::vector<ColumnMask> masks;

  bool MatchesIdentity(const Identity& identity) const;
  bool MatchesTarget(std::string_view target) const;
};

// Whether the scope's sessions run as read-only transactions in the database
// itself (default_transaction_read_only = on, sent in the startup packet):
// the read-only profile, and a scope of profile "none" whose classes are
// among read-only's (read, transaction, session_setting, utility). What the
// analyser cannot see (a user-defined function that writes) is then refused
// by PostgreSQL; nothing the client sends may turn it off (Decide refuses
// every SET, set_config, transaction mode and startup setting that would).
bool ReadOnlyInDatabase(const Scope& scope);

// Where an unqualified name can resolve to, given what the session may have
// set its search_path to. `any_schema` when that is unknown (set_config with a
// non-constant value): then every schema is possible.
struct SchemaResolution {
  std::vector<std::string> schemas;
  bool any_schema = false;
};

enum class NameKind : uint8_t { kRelation, kFunction };

// What the rules remember about one session: its possible search paths, its
// database role, and its SQL-level prepared statements.
//
// The search_path is tracked conservatively. A SET can be rolled back with its
// transaction or fail, and the gateway does not learn which, so every path the
// session may have set stays possible: the schemas a name can resolve to are
// the union over all of them (plus pg_temp and pg_catalog, searched implicitly
// as PostgreSQL does). Scopes that want exact resolution set `search_path`
// and leave it alone.
class SessionPolicyState {
 public:
  // `role` is the database role the session runs as ("$user").
  SessionPolicyState(const Scope& scope, std::string role);
  SessionPolicyState(std::vector<std::string> search_path, std::string role);

  // Called for each judged statement, before the next one is judged (see the
  // top of this file): PREPARE remembers its statement, DEALLOCATE /
  // DISCARD ALL forget, SET / RESET / set_config of search_path and role
  // widen the possible search paths.
  void Remember(const StatementSummary& statement);

  // The statements a session may have prepared under `name` (several when a
  // PREPARE of an existing name may or may not have replaced the old one);
  // empty when unknown.
  const std::vector<std::shared_ptr<const StatementSummary>>* Prepared(std::string_view name) const;

  SchemaResolution ResolveSchemas(std::string_view name, NameKind kind) const;

  // Advisory lock keys the session may hold, as far as the gateway can tell
  // (a failed or rolled-back call still counts: fail closed), and the
  // notifications it has sent.
  bool HoldsAdvisoryLock(const ResourceCall& call) const;
  size_t advisory_locks() const { return advisory_keys_.size(); }
  uint64_t notifications() const { return notifications_; }

  // Calls fn(schema) for each schema an unqualified `name` may resolve to;
  // returns false instead when any schema is possible.
  template <typename Fn>
  bool ForEachCandidate(std::string_view name, NameKind kind, Fn&& fn) const;

  // The target's catalog as last read (policy/catalog.h), for scopes with
  // masks; null: not read, and masked scopes refuse statements on relations.
  void UseCatalog(std::shared_ptr<const RelationCatalog> catalog) { catalog_ = std::move(catalog); }
  const RelationCatalog* catalog() const { return catalog_.get(); }

 private:
  void AddSearchPath(std::string_view value);  // a SET value: `a, "B c", $user`
  void AddPathEntry(std::string entry);

  std::vector<std::string> default_path_;
  std::vector<std::string> roles_;         // every role "$user" may stand for
  std::vector<std::string> path_schemas_;  // union of every possible path, "$user" kept
  bool path_unknown_ = false;
  bool role_unknown_ = false;
  absl::flat_hash_map<std::string, std::vector<std::shared_ptr<const StatementSummary>>> prepared_;
  // "s:<key>" session-level, "x:<key>" transaction-level.
  absl::flat_hash_set<std::string> advisory_keys_;
  uint64_t notifications_ = 0;
  std::shared_ptr<const RelationCatalog> catalog_;
};

class Policy {
 public:
  explicit Policy(std::vector<Scope> scopes) : scopes_(std::move(scopes)) {}

  const std::vector<Scope>& scopes() const { return scopes_; }

  // The first scope, in file order, whose identity conditions and targets
  // match; nullptr when none does (the session gets no access at all).
  const Scope* MatchScope(const Identity& identity, std::string_view target) const;

  // The decision for one statement. Does not change `state`: call
  // state.Remember(statement) once it is allowed, before judging the next
  // (JudgeQuery does both for a Query).
  Decision Decide(const Scope& scope, const StatementSummary& statement,
                  const SessionPolicyState& state) const;

  // A FunctionCall protocol message names its function by OID, which cannot be
  // checked against names without the catalog: refused in a scope with masks
  // (the function could return a masked value), else unless the scope sets
  // allow_function_call or its profile is admin.
  Decision DecideFunctionCall(const Scope& scope) const;

  // The decision for an identity that matched no scope.
  static Decision NoScope(const Identity& identity, std::string_view target);

 private:
  std::vector<Scope> scopes_;
};

// The mask rules alone (rule scope.<name>.mask) for `statement`, which is
// `view_depth` view definitions deep: how a view's definition is judged in a
// scope with masks (policy/masked_scope.h). Allow when the scope has none.
Decision DecideMasks(const Scope& scope, const StatementSummary& statement,
                     const SessionPolicyState& state, int view_depth);

// The built-in list of dangerous functions (exact names and `prefix*`
// entries), denied in every schema unless the profile is admin or the scope's
// functions.allow names the function exactly. Exposed for the docs test.
const std::vector<std::string_view>& DangerousFunctions();
bool IsDangerousFunction(std::string_view name);

// --- implementation of the template above ---------------------------------

template <typename Fn>
bool SessionPolicyState::ForEachCandidate(std::string_view name, NameKind kind, Fn&& fn) const {
  if (path_unknown_) return false;
  // PostgreSQL searches pg_temp first for relations (never for functions) and
  // pg_catalog first unless the path lists it. Every relation of pg_catalog is
  // named pg_*, and no one can create more there without
  // allow_system_table_mods, so other relation names cannot resolve to it.
  if (kind == NameKind::kRelation) fn(std::string_view("pg_temp"));
  if (kind == NameKind::kFunction || name.starts_with("pg_")) fn(std::string_view("pg_catalog"));
  for (const std::string& entry : path_schemas_) {
    if (entry == "$user") {
      if (role_unknown_) return false;
      for (const std::string& role : roles_) fn(std::string_view(role));
    } else if (entry == "pg_temp") {
      if (kind == NameKind::kRelation) fn(std::string_view(entry));
    } else {
      fn(std::string_view(entry));
    }
  }
  return true;
}

}  // namespace pgb::policy
