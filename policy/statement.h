// What one SQL statement does, as the policy sees it: the typed summary the
// SQL analyser (policy/sql_analysis.h) builds from PostgreSQL's own parse tree
// and the rules (policy/rules.h) decide on. It holds no pointers into the
// statement text, so a summary can be cached by text and shared by sessions of
// one shard.
//
// Names are as written: a relation or function written without a schema has
// an empty `schema`; the rules resolve it against the session's search_path
// (see ResolveSchemas in policy/rules.h), so one cached summary serves sessions
// with different search paths.
//
//   "DELETE FROM app.orders WHERE true" ->
//     StatementSummary{.statement_class = kWrite, .command = "DELETE",
//                      .relations = {{"app", "orders", kAccessDelete}},
//                      .unfiltered_write = true, ...}
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pgb::policy {

// The command kinds of the policy, coarsest first. A statement has exactly one;
// when parts of it fall into several (a SELECT calling a file-reading
// function, a data-modifying CTE), the most dangerous one wins, in this order
// of increasing danger: kRead < kTransaction < kSessionSetting < kUtility <
// kWrite < kHazard < kDdl < kDcl < kCodeExecution < kServerAccess.
enum class StatementClass : uint8_t {
  kRead,            // SELECT, VALUES, TABLE, SHOW, EXPLAIN (no ANALYZE), FETCH, DECLARE of a read
  kTransaction,     // BEGIN, COMMIT, ROLLBACK, SAVEPOINT, PREPARE TRANSACTION, ...
  kSessionSetting,  // SET, RESET, SET LOCAL of ordinary settings; DISCARD
  kUtility,         // VACUUM, ANALYZE, CHECKPOINT, LISTEN/NOTIFY, LOCK, PREPARE/DEALLOCATE, ...
  kWrite,           // INSERT, UPDATE, DELETE, MERGE, COPY FROM STDIN, TRUNCATE
  // Operational hazards: what the statement holds or uses, not the rows it
  // changes. LOCK stronger than ROW EXCLUSIVE, VACUUM FULL, CLUSTER, REINDEX,
  // REFRESH MATERIALIZED VIEW (not CONCURRENTLY), CHECKPOINT, PREPARE
  // TRANSACTION, COMMIT/ROLLBACK PREPARED, SELECT ... FOR UPDATE/SHARE
  // without a WHERE that selects rows. (ALTER SYSTEM is server_access.)
  kHazard,
  kDdl,            // CREATE/ALTER/DROP of schema objects, SELECT INTO, CREATE TABLE AS
  kDcl,            // GRANT, REVOKE, CREATE/ALTER/DROP ROLE, SET ROLE, SET SESSION AUTHORIZATION
  kCodeExecution,  // DO, CALL, CREATE FUNCTION/PROCEDURE, LOAD, CREATE EXTENSION
  kServerAccess,   // COPY to/from a server file or PROGRAM, file/network functions
};

// Access to one relation, a bit set.
enum RelationAccess : uint8_t {
  kAccessSelect = 1 << 0,
  kAccessInsert = 1 << 1,
  kAccessUpdate = 1 << 2,
  kAccessDelete = 1 << 3,
  kAccessTruncate = 1 << 4,
  kAccessReferences = 1 << 5,
  kAccessLock = 1 << 6,
  kAccessDdl = 1 << 7,  // created, altered, dropped, renamed, granted on
};

struct RelationRef {
  std::string schema;  // empty: unqualified, resolved by the search_path
  std::string name;
  uint8_t access = 0;  // RelationAccess bits
};

struct FunctionRef {
  std::string schema;  // empty: unqualified
  std::string name;    // lower case as the parser folds it
};

// SET / RESET / SET LOCAL / set_config() of one setting.
struct SettingChange {
  std::string name;   // lower case; "role", "session_authorization", "search_path", ...
  std::string value;  // as text when a constant ("" for RESET or DEFAULT)
  bool reset = false;
  bool local = false;         // SET LOCAL, or set_config(..., true)
  bool via_function = false;  // set_config() rather than SET
  bool value_known = true;    // false when set_config's arguments are not constants
};

enum class CopyDirection : uint8_t { kNone, kFrom, kTo };

struct CopyInfo {
  CopyDirection direction = CopyDirection::kNone;
  bool program = false;      // COPY ... PROGRAM 'cmd'
  bool server_file = false;  // COPY ... 'filename' (not STDIN/STDOUT)
};

// A call that takes a resource every session shares, counted against the
// scope's caps (issue 24, item 3): advisory locks (the server's shared lock
// table) and notifications (its notification queue).
struct ResourceCall {
  enum Kind : uint8_t {
    kAdvisoryLock,      // pg_advisory_lock[_shared], pg_try_advisory_lock[_shared]
    kAdvisoryXactLock,  // the _xact_ forms: released when the transaction ends
    kAdvisoryUnlock,    // pg_advisory_unlock[_shared]
    kAdvisoryUnlockAll,
    kNotify,  // NOTIFY, pg_notify()
  };
  Kind kind = kAdvisoryLock;
  std::string key;  // the constant arguments, joined with ',' (the lock's key, the channel)
  // Every argument is a constant: the call takes one lock or sends one
  // notification however many rows it runs for (PostgreSQL folds repeats).
  // False for a column, a parameter, an expression.
  bool constant = true;
};

struct StatementSummary {
  StatementClass statement_class = StatementClass::kRead;
  // The command, in PostgreSQL's command-tag spelling: "SELECT", "INSERT",
  // "DROP TABLE", "CREATE FUNCTION", "SET", "COPY", "EXPLAIN", ...
  std::string command;
  // Byte range of this statement inside the analysed text (multi-statement
  // queries hold several).
  uint32_t location = 0;
  uint32_t length = 0;
  // The parse tree's hash without constants and positions (see
  // policy/internal/statement_fingerprint.h); never 0 once analysed.
  uint64_t fingerprint = 0;

  std::vector<RelationRef> relations;  // every relation touched, merged per name
  std::vector<FunctionRef> functions;  // every function called, once per name
  std::vector<SettingChange> settings;

  // Writes anywhere in the statement (also inside a CTE or EXPLAIN ANALYZE).
  bool modifies_data = false;
  // UPDATE or DELETE (at any level) without WHERE, or with a WHERE that is
  // constant-true (`true`, `1 = 1`, `'a' = 'a'`, `x OR true`, `NOT false`).
  bool unfiltered_write = false;
  bool data_modifying_cte = false;
  bool explain_analyze = false;
  bool select_into = false;  // SELECT INTO / CREATE TABLE AS
  bool on_conflict = false;  // INSERT ... ON CONFLICT
  // CREATE TEMP TABLE / VIEW / SEQUENCE (also AS a query, SELECT INTO TEMP):
  // a ddl statement that creates only an object private to the session.
  bool temporary_object = false;
  // DECLARE ... WITH HOLD: filled at commit with statement_timeout off.
  bool holdable_cursor = false;
  // COMMIT, ROLLBACK (not TO a savepoint), PREPARE TRANSACTION: transaction-
  // level advisory locks are released.
  bool ends_transaction = false;
  std::vector<ResourceCall> resource_calls;
  // ON CONFLICT ON CONSTRAINT name, or ON CONFLICT without a target: every
  // unique index (or the named one) arbitrates, whatever its columns.
  bool on_conflict_any_arbiter = false;
  bool destructive = false;  // DROP, TRUNCATE, unfiltered UPDATE/DELETE
  CopyInfo copy;

  // How the statement uses column names, for column masks (policy/masking.h),
  // which rewrite result columns by their field names: a masked column must
  // not reach the client under another name, nor be inferred through a
  // filter, a join or a sort. Names are as the parser leaves them (unquoted
  // ones folded to lower case), each listed once.
  //
  // Plain output columns: the targets of the statement's own result (its
  // top-level SELECT without a set operation or INTO, the RETURNING list of
  // a top-level INSERT/UPDATE/DELETE, the query of DECLARE CURSOR) that are a
  // column written as is, `email` or `c.email` or `email AS email`; their
  // result fields carry the column's own name.
  //   "SELECT id, c.email FROM customers c WHERE note = 'x'"
  //     -> output_columns {id, email}, other_columns {note}
  std::vector<std::string> output_columns;
  // Every other column reference, by its last name: filters, joins, sorts,
  // groupings, expressions, function arguments, renamed targets (`email AS
  // e`), subqueries, CTEs, set-operation arms, EXPLAIN's statement, the query
  // of CREATE VIEW / CREATE TABLE AS / SELECT INTO / INSERT ... SELECT,
  // UPDATE's SET expressions; also the names of JOIN ... USING (...), of
  // ON CONFLICT (...) and of index elements.
  std::vector<std::string> other_columns;
  // A reference to whole rows, whose fields the result would not name: a
  // name that is also a relation, alias, function or CTE of the statement
  // (`SELECT c FROM customers c`, `row_to_json(c)`, `(c).email`), `t.*` or
  // `*` anywhere but among the plain output targets (`count(c.*)`,
  // `json_build_object(c.*)`, `SELECT * FROM (SELECT * FROM t) s`), or a
  // NATURAL JOIN (its join columns are not written).
  bool row_reference = false;
  // A table or join in FROM with a column alias list (`customers AS c(id,
  // mail)`): its columns reach the result under the names of the list.
  bool renames_columns = false;
  // `*` or `t.*` among the plain output targets: every column, each under
  // its own name.
  bool star_output = false;
  // The result's query sorts, groups or DISTINCT ONs by output position
  // (`ORDER BY 1`, `GROUP BY 2`, `DISTINCT ON (1)`): on an output column
  // without naming it.
  bool sorts_by_position = false;
  // The result's query is SELECT DISTINCT (without ON): it compares, and
  // usually sorts, every output column.
  bool distinct_output = false;
  // Qualified column references `q.x` (also `s.q.x`) whose qualifier names a
  // table or view of the statement (its name, or its alias in FROM; not a
  // subquery, function or CTE), each (relation, attribute) once. PostgreSQL
  // reads `q.x` as column x of q only when q has one; otherwise as the
  // function x called on q's whole row (`c.to_json` is to_json(c),
  // `c.text` is c::text). The rules tell the two apart with the target's
  // catalog (policy/catalog.h). A qualifier naming several relations of the
  // statement (an alias reused in a subquery) gives one entry for each.
  //   "SELECT c.id, c.to_json FROM app.customers c"
  //     -> attribute_refs {{"app", "customers", "id"}, {"app", "customers", "to_json"}}
  struct AttributeRef {
    std::string schema;  // as written in FROM (empty: resolved by the search_path)
    std::string relation;
    std::string attribute;
  };
  std::vector<AttributeRef> attribute_refs;

  // SQL-level PREPARE name AS <statement>: the inner statement's summary.
  std::string prepare_name;
  std::shared_ptr<const StatementSummary> prepared;
  // EXECUTE name: judged by what the session prepared under that name.
  std::string execute_name;
  // DEALLOCATE name (empty with deallocate_all for DEALLOCATE ALL).
  std::string deallocate_name;
  bool deallocate_all = false;
};

const char* StatementClassName(StatementClass c);  // "read", "write", "ddl", ...

}  // namespace pgb::policy
