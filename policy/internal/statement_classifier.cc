#include "policy/internal/statement_classifier.h"

#include <algorithm>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "base/str_cat.h"
#include "policy/function_classes.h"
#include "policy/internal/constant_expression.h"
#include "policy/sql_text.h"

namespace pgb::policy::internal {
namespace {

using C = StatementClass;

// A statement kind naming no relations (their walk defaults to select).
constexpr uint8_t kNoAccess = 0;

// SQL words for PostgreSQL's ObjectType, for command tags ("DROP " + name).
std::string_view ObjectTypeWords(std::string_view object_type) {
  static const auto* const kWords = new absl::flat_hash_map<std::string_view, std::string_view>{
      {"OBJECT_ACCESS_METHOD", "ACCESS METHOD"},
      {"OBJECT_AGGREGATE", "AGGREGATE"},
      {"OBJECT_CAST", "CAST"},
      {"OBJECT_COLUMN", "COLUMN"},
      {"OBJECT_COLLATION", "COLLATION"},
      {"OBJECT_CONVERSION", "CONVERSION"},
      {"OBJECT_DATABASE", "DATABASE"},
      {"OBJECT_DOMAIN", "DOMAIN"},
      {"OBJECT_DOMCONSTRAINT", "DOMAIN"},
      {"OBJECT_EVENT_TRIGGER", "EVENT TRIGGER"},
      {"OBJECT_EXTENSION", "EXTENSION"},
      {"OBJECT_FDW", "FOREIGN DATA WRAPPER"},
      {"OBJECT_FOREIGN_SERVER", "SERVER"},
      {"OBJECT_FOREIGN_TABLE", "FOREIGN TABLE"},
      {"OBJECT_FUNCTION", "FUNCTION"},
      {"OBJECT_INDEX", "INDEX"},
      {"OBJECT_LANGUAGE", "LANGUAGE"},
      {"OBJECT_LARGEOBJECT", "LARGE OBJECT"},
      {"OBJECT_MATVIEW", "MATERIALIZED VIEW"},
      {"OBJECT_OPCLASS", "OPERATOR CLASS"},
      {"OBJECT_OPERATOR", "OPERATOR"},
      {"OBJECT_OPFAMILY", "OPERATOR FAMILY"},
      {"OBJECT_POLICY", "POLICY"},
      {"OBJECT_PROCEDURE", "PROCEDURE"},
      {"OBJECT_PUBLICATION", "PUBLICATION"},
      {"OBJECT_ROLE", "ROLE"},
      {"OBJECT_ROUTINE", "ROUTINE"},
      {"OBJECT_RULE", "RULE"},
      {"OBJECT_SCHEMA", "SCHEMA"},
      {"OBJECT_SEQUENCE", "SEQUENCE"},
      {"OBJECT_SUBSCRIPTION", "SUBSCRIPTION"},
      {"OBJECT_STATISTIC_EXT", "STATISTICS"},
      {"OBJECT_TABCONSTRAINT", "TABLE"},
      {"OBJECT_TABLE", "TABLE"},
      {"OBJECT_TABLESPACE", "TABLESPACE"},
      {"OBJECT_TRANSFORM", "TRANSFORM"},
      {"OBJECT_TRIGGER", "TRIGGER"},
      {"OBJECT_TSCONFIGURATION", "TEXT SEARCH CONFIGURATION"},
      {"OBJECT_TSDICTIONARY", "TEXT SEARCH DICTIONARY"},
      {"OBJECT_TSPARSER", "TEXT SEARCH PARSER"},
      {"OBJECT_TSTEMPLATE", "TEXT SEARCH TEMPLATE"},
      {"OBJECT_TYPE", "TYPE"},
      {"OBJECT_USER_MAPPING", "USER MAPPING"},
      {"OBJECT_VIEW", "VIEW"},
  };
  auto it = kWords->find(object_type);
  return it == kWords->end() ? std::string_view() : it->second;
}

std::string PrefixedCommand(std::string_view verb, std::string_view object_type) {
  std::string_view words = ObjectTypeWords(object_type);
  std::string command(verb);
  if (!words.empty()) command.append(" ").append(words);
  return command;
}

// Object types whose name list names a relation ([schema,] name), and those
// whose list ends with a name on a relation (trigger, rule, policy, column).
bool NamesRelation(std::string_view object_type) {
  return object_type == "OBJECT_TABLE" || object_type == "OBJECT_VIEW" ||
         object_type == "OBJECT_MATVIEW" || object_type == "OBJECT_SEQUENCE" ||
         object_type == "OBJECT_FOREIGN_TABLE" || object_type == "OBJECT_INDEX";
}
bool NamesSomethingOnRelation(std::string_view object_type) {
  return object_type == "OBJECT_TRIGGER" || object_type == "OBJECT_RULE" ||
         object_type == "OBJECT_POLICY" || object_type == "OBJECT_TABCONSTRAINT" ||
         object_type == "OBJECT_COLUMN";
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& ch : out) ch = absl::ascii_tolower(static_cast<unsigned char>(ch));
  return out;
}

bool IsDataModifying(std::string_view node_type) {
  return node_type == "InsertStmt" || node_type == "UpdateStmt" || node_type == "DeleteStmt" ||
         node_type == "MergeStmt";
}

// Settings whose values PostgreSQL shows as a list of quoted identifiers
// (GUC_LIST_QUOTE), so that SET search_path = a, "B" reads a, "B".
bool IsIdentifierList(std::string_view name) {
  return name == "search_path" || name == "temp_tablespaces" || name == "local_preload_libraries" ||
         name == "session_preload_libraries" || name == "shared_preload_libraries";
}

std::optional<std::string> ConstantAsText(element e, std::string_view sql) {
  std::optional<ConstantValue> v = EvaluateConstant(e, sql);
  if (!v) return std::nullopt;
  switch (v->kind) {
    case ConstantValue::Kind::kText:
    case ConstantValue::Kind::kNumeric:
      return v->text;
    case ConstantValue::Kind::kInt:
      return std::to_string(v->integer);
    case ConstantValue::Kind::kBool:
      return std::string(v->boolean ? "true" : "false");
    case ConstantValue::Kind::kNull:
    case ConstantValue::Kind::kOpaque:
      break;
  }
  return std::nullopt;
}

class Classifier;
struct Context;
using Handler = void (Classifier::*)(object, const Context&);

// One statement node type: its class, command tag ("" when it depends on the
// statement, see Command()), what the relations it names undergo, and the
// handler that knows its fields (nullptr: every field walked alike).
struct StatementKind {
  StatementClass statement_class;
  std::string_view command;
  uint8_t access;
  Handler handler;
};

// The CTE names visible at a point of a query (WITH scoping).
struct CteScope {
  const CteScope* parent = nullptr;
  std::vector<std::string_view> names;
};

struct Context {
  uint8_t access = kAccessSelect;  // what a relation met here undergoes
  bool from_clause = false;        // a RangeVar here may name a CTE
  // The statement runs now. False inside definitions (function bodies, rule
  // actions, view queries) and plain EXPLAIN: their relations and functions
  // are listed, their writes and settings do not happen.
  bool executes = true;
  const CteScope* ctes = nullptr;
  // CREATE SCHEMA s CREATE TABLE t ...: unqualified objects created in s.
  std::string_view creation_schema;
  // This statement's targets are the statement's result (see
  // StatementSummary::output_columns): set for the top-level statement and
  // kept only into a query or DECLARE CURSOR, whose handler takes it.
  bool result = false;
  // The query of EXISTS (...): its targets are never evaluated into values
  // anyone sees, so a `*` there is no whole-row reference.
  bool exists_query = false;
};

class Classifier {
 public:
  Classifier(std::string_view sql, StatementSummary& summary) : sql_(sql), summary_(summary) {}

  absl::Status ClassifyTop(element stmt) {
    std::optional<Node> node = AsNode(stmt);
    const StatementKind* kind = node ? FindKind(node->type) : nullptr;
    if (kind == nullptr) {
      return absl::PermissionDeniedError(Cat("statement could not be classified (",
                                             node ? node->type : std::string_view("no statement"),
                                             "): the gateway refuses what it cannot analyse"));
    }
    summary_.statement_class = C::kRead;
    summary_.command =
        kind->command.empty() ? Command(node->type, node->fields) : std::string(kind->command);
    Context top;
    top.result = true;
    RunKind(*kind, node->fields, top);
    if (!refusal_.empty()) return absl::PermissionDeniedError(refusal_);
    if (summary_.statement_class == C::kDdl) {
      if (std::optional<object> rel = CreatedTemporary(node->type, node->fields)) {
        // The new relation lands in the session's own pg_temp (PostgreSQL
        // refuses a temporary relation in any other schema).
        summary_.temporary_object = true;
        const std::string_view name = StringField(*rel, "relname");
        for (RelationRef& r : summary_.relations) {
          if (r.name == name && (r.schema.empty() || r.schema == "pg_temp")) r.schema = "pg_temp";
        }
      }
    }
    // A name can be met before the FROM item it refers to (SELECT c FROM t c).
    for (std::string_view name : single_names_) {
      if (row_names_.contains(name)) summary_.row_reference = true;
    }
    ResolveAttributeRefs();
    return absl::OkStatus();
  }

 private:
  static const StatementKind* FindKind(std::string_view type);

  // CREATE TEMP TABLE / VIEW / SEQUENCE, CREATE TEMP TABLE AS, SELECT INTO
  // TEMP: the new relation's RangeVar says `relpersistence` "t".
  // Returns that RangeVar, or nullopt when the statement creates no
  // temporary relation.
  static std::optional<object> CreatedTemporary(std::string_view type, object f) {
    std::optional<object> rel;
    if (type == "CreateStmt") rel = ObjectField(f, "relation");
    if (type == "ViewStmt") rel = ObjectField(f, "view");
    if (type == "CreateSeqStmt") rel = ObjectField(f, "sequence");
    if ((type == "CreateTableAsStmt" && StringField(f, "objtype") == "OBJECT_TABLE") ||
        type == "SelectStmt") {
      std::optional<object> into = ObjectField(f, type == "SelectStmt" ? "intoClause" : "into");
      if (into) rel = ObjectField(*into, "rel");
    }
    if (!rel || StringField(*rel, "relpersistence") != "t") return std::nullopt;
    return rel;
  }

  // The statement kinds whose own targets can be a result.
  static bool HasResult(const StatementKind& kind) {
    return kind.handler == &Classifier::Select || kind.handler == &Classifier::Insert ||
           kind.handler == &Classifier::Update || kind.handler == &Classifier::Delete ||
           kind.handler == &Classifier::DeclareCursor;
  }

  void RunKind(const StatementKind& kind, object fields, const Context& c) {
    if (c.executes) Raise(kind.statement_class);
    Context inner = c;
    inner.access = kind.access == kNoAccess ? uint8_t{kAccessSelect} : kind.access;
    inner.from_clause = false;
    inner.result = c.result && HasResult(kind);
    if (kind.handler != nullptr) {
      (this->*kind.handler)(fields, inner);
    } else {
      VisitFields(fields, inner);
    }
  }

  void Raise(StatementClass c) {
    if (c > summary_.statement_class) summary_.statement_class = c;
  }

  void Refuse(std::string message) {
    if (refusal_.empty()) refusal_ = std::move(message);
  }

  // ---- The generic walk: every field of every node.

  void Visit(element e, const Context& c) {
    switch (e.type()) {
      case simdjson::dom::element_type::ARRAY: {
        array items;
        if (e.get_array().get(items) != simdjson::SUCCESS) return;
        for (element item : items) Visit(item, c);
        return;
      }
      case simdjson::dom::element_type::OBJECT: {
        if (std::optional<Node> node = AsNode(e)) {
          VisitNode(*node, c);
          return;
        }
        object bare;
        if (e.get_object().get(bare) == simdjson::SUCCESS) VisitBare(bare, c);
        return;
      }
      default:
        return;
    }
  }

  void VisitFields(object o, const Context& c) {
    for (auto field : o) Visit(field.value, c);
  }

  // A struct in a field typed with it: recognised by its fields.
  void VisitBare(object o, const Context& c) {
    if (Field(o, "relname")) return RangeVar(o, c);
    // An Alias (of a subquery, function, join, USING): a name rows go by.
    if (std::string_view alias = StringField(o, "aliasname"); !alias.empty()) {
      row_names_.insert(alias);
    }
    if (Field(o, "funcformat") && Field(o, "funcname")) return FuncCall(o, c);
    if (Field(o, "limitOption")) {
      Context arm = c;  // a set operation's arm: never the result's own targets
      arm.result = false;
      return Select(o, arm);
    }
    VisitFields(o, c);
  }

  void VisitNode(const Node& node, const Context& c) {
    std::string_view t = node.type;
    // Leaves first: most nodes of a tree are these.
    if (t == "String" || t == "A_Const" || t == "Integer" || t == "ParamRef" || t == "A_Star" ||
        t == "TypeName") {
      return;
    }
    if (t == "ColumnRef") return ColumnRef(node.fields);
    if (t == "FuncCall") return FuncCall(node.fields, c);
    if (t == "SubLink" && StringField(node.fields, "subLinkType") == "EXISTS_SUBLINK") {
      Context exists = c;
      exists.result = false;
      exists.from_clause = false;
      exists.exists_query = true;
      return VisitFields(node.fields, exists);
    }
    if (t == "RangeFunction") return RangeFunction(node.fields, c);
    if (t == "JoinExpr") JoinColumns(node.fields);
    if (t == "IndexElem") AddOtherColumn(StringField(node.fields, "name"));
    if (t == "RangeVar") return RangeVar(node.fields, c);
    if (t == "Constraint") return Constraint(node.fields, c);
    if (t == "TableLikeClause") return TableLike(node.fields, c);
    // lockedRels name FROM items (aliases, CTEs) seen already; nothing else inside.
    if (t == "LockingClause") return;
    if (const StatementKind* kind = FindKind(t)) {
      Context nested = c;
      nested.from_clause = false;
      // A SET inside another statement (CREATE/ALTER FUNCTION ... SET x = y)
      // applies while that function runs, not to the session.
      if (t == "VariableSetStmt") nested.executes = false;
      return RunKind(*kind, node.fields, nested);
    }
    Context inner = c;
    inner.result = false;
    inner.exists_query = false;
    if (t != "JoinExpr" && t != "RangeSubselect" && t != "RangeFunction" &&
        t != "RangeTableSample" && t != "RangeTableFunc") {
      inner.from_clause = false;
    }
    VisitFields(node.fields, inner);
  }

  // ---- Relations and functions.

  static bool IsCte(std::string_view name, const CteScope* scope) {
    for (; scope != nullptr; scope = scope->parent) {
      if (std::find(scope->names.begin(), scope->names.end(), name) != scope->names.end()) {
        return true;
      }
    }
    return false;
  }

  void RangeVar(object o, const Context& c) {
    std::string_view schema = StringField(o, "schemaname");
    std::string_view name = StringField(o, "relname");
    if (name.empty()) return;
    row_names_.insert(name);
    std::string_view alias_name;
    if (std::optional<object> alias = ObjectField(o, "alias")) {
      alias_name = StringField(*alias, "aliasname");
      row_names_.insert(alias_name);
      if (Field(*alias, "colnames")) summary_.renames_columns = true;
    }
    if (c.from_clause && schema.empty() && IsCte(name, c.ctes)) return;
    // A table or view whose rows qualified references can name.
    for (std::string_view qualifier : {name, alias_name}) {
      if (!qualifier.empty()) base_relations_[qualifier].emplace_back(schema, name);
    }
    if (schema.empty() && (c.access & kAccessDdl) != 0) schema = c.creation_schema;
    AddRelation(schema, name, c.access);
  }

  void AddRelation(std::string_view schema, std::string_view name, uint8_t access) {
    auto [it, added] =
        relation_index_.try_emplace(std::pair(schema, name), summary_.relations.size());
    if (added) {
      summary_.relations.push_back(RelationRef{std::string(schema), std::string(name), access});
    } else {
      summary_.relations[it->second].access |= access;
    }
  }

  // A relation written as a name list (DROP TABLE s.t, COMMENT ON COLUMN t.c):
  // `drop_last` leaves out a trailing column, trigger or policy name.
  void RelationFromNames(element list, bool drop_last, uint8_t access) {
    std::optional<Node> node = AsNode(list);
    if (!node || node->type != "List") return;
    std::optional<array> items = ArrayField(node->fields, "items");
    if (!items) return;
    std::vector<std::string_view> names;
    for (element item : *items) names.push_back(StringNodeValue(item));
    if (drop_last && !names.empty()) names.pop_back();
    if (names.empty()) return;
    std::string_view schema = names.size() >= 2 ? names[names.size() - 2] : std::string_view();
    AddRelation(schema, names.back(), access);
  }

  void AddFunction(std::string_view schema, std::string_view name, const Context& c) {
    if (name.empty()) return;
    if (function_index_.try_emplace(std::pair(schema, name), summary_.functions.size()).second) {
      summary_.functions.push_back(FunctionRef{std::string(schema), std::string(name)});
    }
    if (const FunctionClassEntry* entry = FindFunctionClass(name)) {
      Raise(entry->statement_class);
      if (entry->statement_class == C::kWrite && c.executes) summary_.modifies_data = true;
    }
  }

  // A qualified name list ["pg_catalog", "set_config"] as (schema, name).
  static std::pair<std::string_view, std::string_view> QualifiedName(object o,
                                                                     std::string_view key) {
    std::optional<array> names = ArrayField(o, key);
    std::string_view schema;
    std::string_view name;
    if (names) {
      for (element n : *names) {
        schema = name;
        name = StringNodeValue(n);
      }
    }
    return {schema, name};
  }

  void FuncCall(object o, const Context& c) {
    auto [schema, name] = QualifiedName(o, "funcname");
    AddFunction(schema, name, c);
    // In FROM without an alias, a function's rows go by its name.
    row_names_.insert(name);
    if (name == "set_config") SetConfig(o, c);
    if (c.executes && (name.starts_with("pg_advisory") || name.starts_with("pg_try_advisory") ||
                       name == "pg_notify")) {
      ResourceFunction(o, name);
    }
    Context args = c;
    args.access = kAccessSelect;
    args.from_clause = false;
    for (auto field : o) {
      if (field.key != "funcname") Visit(field.value, args);
    }
  }

  // An advisory lock function or pg_notify(), with its key when constant.
  void ResourceFunction(object o, std::string_view name) {
    ResourceCall call;
    if (name == "pg_notify") {
      call.kind = ResourceCall::kNotify;
    } else if (name == "pg_advisory_unlock_all") {
      call.kind = ResourceCall::kAdvisoryUnlockAll;
    } else if (name.starts_with("pg_advisory_unlock")) {
      call.kind = ResourceCall::kAdvisoryUnlock;
    } else if (name.find("_xact_lock") != std::string_view::npos) {
      call.kind = ResourceCall::kAdvisoryXactLock;
    } else if (name.find("_lock") != std::string_view::npos) {
      call.kind = ResourceCall::kAdvisoryLock;
    } else {
      return;  // not one of the family
    }
    if (std::optional<array> args = ArrayField(o, "args")) {
      for (element arg : *args) {
        std::optional<std::string> text = ConstantAsText(arg, sql_);
        if (!text) {
          call.constant = false;
          break;
        }
        if (!call.key.empty()) call.key += ',';
        call.key += *text;
      }
    }
    // VARIADIC or named arguments, or a call over a whole row's worth: not
    // a plain constant call.
    if (Field(o, "agg_star") || Field(o, "func_variadic") || Field(o, "over")) {
      call.constant = false;
    }
    summary_.resource_calls.push_back(std::move(call));
  }

  void Notify(object o, const Context& c) {
    if (c.executes) {
      summary_.resource_calls.push_back(
          ResourceCall{ResourceCall::kNotify, std::string(StringField(o, "conditionname")), true});
    }
    VisitFields(o, c);
  }

  // A function in FROM: its rows go by its alias, and a whole row of it holds
  // only what its arguments (walked as expressions) let through, so its
  // alias is not a row name (`SELECT g FROM generate_series(1, 3) g`).
  void RangeFunction(object o, const Context& c) {
    Context inner = c;
    inner.result = false;
    inner.exists_query = false;
    for (auto field : o) {
      if (field.key == "alias") continue;
      Visit(field.value, inner);
    }
  }

  void Constraint(object o, const Context& c) {
    for (auto field : o) {
      if (field.key == "pktable") {
        Context ref = c;
        ref.access = kAccessReferences;
        Visit(field.value, ref);
      } else {
        Visit(field.value, c);
      }
    }
  }

  // CREATE TABLE t (LIKE other): reads other's definition.
  void TableLike(object o, const Context& c) {
    if (std::optional<element> rel = Field(o, "relation")) {
      Context like = c;
      like.access = kAccessSelect;
      Visit(*rel, like);
    }
  }

  // ---- Column names (StatementSummary::output_columns and the fields after it).

  void AddName(std::vector<std::string>& names, absl::flat_hash_set<std::string_view>& seen,
               std::string_view name) {
    if (!name.empty() && seen.insert(name).second) names.emplace_back(name);
  }
  void AddOtherColumn(std::string_view name) { AddName(summary_.other_columns, other_seen_, name); }

  // A column reference outside the plain output targets.
  void ColumnRef(object o) {
    std::optional<array> fields = ArrayField(o, "fields");
    if (!fields || fields->size() == 0) return;
    element last = fields->at(fields->size() - 1);
    std::optional<Node> node = AsNode(last);
    if (node && node->type == "A_Star") {
      summary_.row_reference = true;
      return;
    }
    std::string_view name = StringNodeValue(last);
    AddOtherColumn(name);
    if (fields->size() == 1 && !name.empty()) single_names_.insert(name);
    QualifiedReference(*fields);
  }

  // `q.x`, `s.q.x` or `q.x.y` (y a field of a composite column x, or a
  // function on it): remembered until every FROM item is known.
  void QualifiedReference(array fields) {
    std::vector<std::string_view> names;
    for (element f : fields) names.push_back(StringNodeValue(f));
    const size_t n = names.size();
    if (n < 2) return;
    pending_refs_.push_back(
        {n >= 3 ? names[n - 3] : std::string_view(), names[n - 2], names[n - 1]});
    if (n >= 3) {
      // q.x.y: x is read as a column of q, and y as a field or function of it.
      pending_refs_.push_back({{}, names[n - 3], names[n - 2]});
      for (size_t i = 1; i + 1 < n; ++i) AddOtherColumn(names[i]);
    }
  }

  void ResolveAttributeRefs() {
    absl::flat_hash_set<std::tuple<std::string_view, std::string_view, std::string_view>> seen;
    for (const PendingRef& ref : pending_refs_) {
      auto it = base_relations_.find(ref.qualifier);
      if (it == base_relations_.end() || ref.attribute.empty()) continue;
      for (const auto& [schema, relation] : it->second) {
        if (!ref.schema.empty() && !schema.empty() && ref.schema != schema) continue;
        std::string_view s = schema.empty() ? ref.schema : schema;
        if (!seen.insert({s, relation, ref.attribute}).second) continue;
        summary_.attribute_refs.push_back(StatementSummary::AttributeRef{
            std::string(s), std::string(relation), std::string(ref.attribute)});
      }
    }
  }

  void JoinColumns(object o) {
    if (BoolField(o, "isNatural")) summary_.row_reference = true;
    if (std::optional<array> using_names = ArrayField(o, "usingClause")) {
      for (element name : *using_names) AddOtherColumn(StringNodeValue(name));
    }
    if (std::optional<object> alias = ObjectField(o, "alias")) {
      if (Field(*alias, "colnames")) summary_.renames_columns = true;
    }
  }

  // The targets of the statement's result: a plain column (`email`,
  // `c.email`, `email AS email`) or a star keeps its name in the result;
  // every other target is walked as an expression.
  void ResultTargets(element list, const Context& c) {
    array targets;
    if (list.get_array().get(targets) != simdjson::SUCCESS) return;
    for (element target : targets) {
      std::optional<Node> node = AsNode(target);
      if (node && node->type == "ResTarget" && PlainResultTarget(node->fields)) continue;
      Visit(target, c);
    }
  }

  bool PlainResultTarget(object target) {
    std::optional<element> val = Field(target, "val");
    std::optional<Node> ref = val ? AsNode(*val) : std::nullopt;
    if (!ref || ref->type != "ColumnRef") return false;
    std::optional<array> fields = ArrayField(ref->fields, "fields");
    if (!fields || fields->size() == 0) return false;
    element last = fields->at(fields->size() - 1);
    std::optional<Node> last_node = AsNode(last);
    std::string_view alias = StringField(target, "name");
    if (last_node && last_node->type == "A_Star") {
      if (!alias.empty()) return false;
      summary_.star_output = true;
      return true;
    }
    std::string_view name = StringNodeValue(last);
    if (name.empty() || (!alias.empty() && alias != name)) return false;
    AddName(summary_.output_columns, output_seen_, name);
    // `SELECT c FROM customers c`: a whole row, known once the FROM is read.
    if (fields->size() == 1) single_names_.insert(name);
    QualifiedReference(*fields);
    return true;
  }

  // The targets of EXISTS (SELECT ...): a star there is not evaluated into
  // anything; other targets are expressions (a cast can fail on a value).
  void ExistsTargets(element list, const Context& c) {
    array targets;
    if (list.get_array().get(targets) != simdjson::SUCCESS) return;
    for (element target : targets) {
      std::optional<Node> node = AsNode(target);
      std::optional<element> val = node ? Field(node->fields, "val") : std::nullopt;
      std::optional<Node> ref = val ? AsNode(*val) : std::nullopt;
      if (ref && ref->type == "ColumnRef") {
        std::optional<array> fields = ArrayField(ref->fields, "fields");
        if (fields && fields->size() > 0) {
          std::optional<Node> last = AsNode(fields->at(fields->size() - 1));
          if (last && last->type == "A_Star") continue;
        }
      }
      Visit(target, c);
    }
  }

  // ORDER BY / GROUP BY / DISTINCT ON of the result's query: an integer
  // constant there is an output position (GROUP BY also inside GROUPING
  // SETS, ROLLUP, CUBE). DISTINCT alone is a list holding one empty item.
  void ResultOrdering(object select) {
    if (std::optional<array> sorts = ArrayField(select, "sortClause")) {
      for (element sort : *sorts) {
        std::optional<Node> node = AsNode(sort);
        std::optional<element> key = node ? Field(node->fields, "node") : std::nullopt;
        if (key && IsPosition(*key)) summary_.sorts_by_position = true;
      }
    }
    if (std::optional<array> groups = ArrayField(select, "groupClause")) {
      for (element group : *groups) {
        if (GroupsByPosition(group)) summary_.sorts_by_position = true;
      }
    }
    if (std::optional<array> distinct = ArrayField(select, "distinctClause")) {
      for (element item : *distinct) {
        if (IsPosition(item)) summary_.sorts_by_position = true;
        if (!AsNode(item)) summary_.distinct_output = true;
      }
    }
  }

  static bool IsPosition(element e) {
    std::optional<Node> node = AsNode(e);
    return node && node->type == "A_Const" && Field(node->fields, "ival");
  }

  static bool GroupsByPosition(element e) {
    if (IsPosition(e)) return true;
    std::optional<Node> node = AsNode(e);
    if (!node || node->type != "GroupingSet") return false;
    std::optional<array> content = ArrayField(node->fields, "content");
    if (!content) return false;
    for (element item : *content) {
      if (GroupsByPosition(item)) return true;
    }
    return false;
  }

  // ---- Settings.

  void SetConfig(object o, const Context& c) {
    SettingChange s;
    s.via_function = true;
    std::optional<array> args = ArrayField(o, "args");
    std::vector<element> a;
    if (args) {
      for (element e : *args) a.push_back(e);
    }
    bool name_known = false;
    bool value_known = false;
    if (a.size() == 3) {
      if (std::optional<std::string> name = ConstantAsText(a[0], sql_)) {
        s.name = Lower(*name);
        name_known = true;
      }
      std::optional<ConstantValue> value = EvaluateConstant(a[1], sql_);
      if (value && value->kind == ConstantValue::Kind::kNull) {
        s.reset = true;
        value_known = true;
      } else if (std::optional<std::string> text = ConstantAsText(a[1], sql_)) {
        s.value = std::move(*text);
        value_known = true;
      }
      std::optional<ConstantValue> local = EvaluateConstant(a[2], sql_);
      s.local = local && local->kind == ConstantValue::Kind::kBool && local->boolean;
    }
    s.value_known = name_known && value_known;
    // A name the analyser cannot read may be "role": fail closed.
    bool privileged = !name_known || s.name == "role" || s.name == "session_authorization";
    Raise(privileged ? C::kDcl : C::kSessionSetting);
    CheckLexerSetting(s);
    if (c.executes) summary_.settings.push_back(std::move(s));
  }

  // The analyser reads statements as the server does only while the server
  // reads them with standard_conforming_strings on and in UTF-8: with
  // standard_conforming_strings off, 'a\'; DROP TABLE t; --' is one string to
  // the server and two statements to the analyser (or the other way round).
  void CheckLexerSetting(const SettingChange& s) {
    if (s.reset) return;
    if (s.name == "standard_conforming_strings") {
      std::optional<bool> on = s.value_known ? ParseBoolText(s.value) : std::nullopt;
      if (!on.value_or(false)) {
        Refuse(
            "standard_conforming_strings cannot be turned off through the gateway: statements "
            "are analysed as the server reads them with it on");
      }
    }
    if (s.name == "client_encoding") {
      std::string v = Lower(s.value);
      v.erase(std::remove_if(v.begin(), v.end(), [](char ch) { return ch == '-' || ch == '_'; }),
              v.end());
      if (!s.value_known || (v != "utf8" && v != "unicode")) {
        Refuse("client_encoding cannot be changed from UTF8 through the gateway");
      }
    }
  }

  std::string SettingValue(std::string_view name, array args, bool& known) {
    std::vector<std::string> parts;
    for (element arg : args) {
      std::optional<std::string> text = ConstantAsText(arg, sql_);
      if (!text) {
        known = false;
        return "";
      }
      std::optional<ConstantValue> v = EvaluateConstant(arg, sql_);
      bool is_string = v && v->kind == ConstantValue::Kind::kText;
      parts.push_back(is_string && IsIdentifierList(name) ? QuoteIdentifier(*text)
                                                          : std::move(*text));
    }
    return Join(parts, ", ");
  }

  // A VariableSetStmt other than SET TRANSACTION ... as one SettingChange.
  SettingChange SingleSetting(object o) {
    std::string_view kind = StringField(o, "kind");
    SettingChange s;
    s.name = Lower(StringField(o, "name"));
    s.local = BoolField(o, "is_local");
    if (kind == "VAR_SET_VALUE") {
      bool known = true;
      if (std::optional<array> args = ArrayField(o, "args")) {
        s.value = SettingValue(s.name, *args, known);
      }
      s.value_known = known;
    } else if (kind == "VAR_SET_DEFAULT" || kind == "VAR_RESET") {
      s.reset = true;
    } else if (kind == "VAR_RESET_ALL") {
      s.name = "all";
      s.reset = true;
    } else {  // VAR_SET_CURRENT: the value the setting has now, unknown here
      s.value_known = false;
    }
    return s;
  }

  // ALTER ROLE/DATABASE/SYSTEM ... SET: a default for later sessions. Not a
  // change of this session, but one that would blind the analyser in them.
  void StoredSetting(object o, const Context& c) {
    std::optional<object> set = ObjectField(o, "setstmt");
    if (set && StringField(*set, "kind") != "VAR_SET_MULTI") CheckLexerSetting(SingleSetting(*set));
    VisitFields(o, c);
  }

  // Transaction modes (`ISOLATION LEVEL ...`, `READ WRITE`, `DEFERRABLE`) as
  // the settings they set: transaction_read_only and friends, or with
  // `prefix` "default_" their session defaults. The grammar gives each mode a
  // DefElem named after its setting (READ WRITE: transaction_read_only = 0).
  void TransactionModes(std::optional<array> items, std::string_view prefix, bool local) {
    if (!items) return;
    for (element item : *items) {
      std::optional<Node> def = AsNode(item);
      if (!def || def->type != "DefElem") continue;
      SettingChange s;
      s.name = Cat(prefix, StringField(def->fields, "defname"));
      s.local = local;
      std::optional<element> arg = Field(def->fields, "arg");
      std::optional<std::string> value = arg ? ConstantAsText(*arg, sql_) : std::nullopt;
      s.value_known = value.has_value();
      s.value = value.value_or("");
      summary_.settings.push_back(std::move(s));
    }
  }

  // BEGIN / START TRANSACTION carry transaction modes too. Two-phase
  // commands are hazards: a prepared transaction keeps its locks across
  // sessions and restarts until someone ends it.
  void Transaction(object o, const Context& c) {
    if (!c.executes) return;
    TransactionModes(ArrayField(o, "options"), "", true);
    std::string_view kind = StringField(o, "kind");
    if (kind == "TRANS_STMT_PREPARE" || kind == "TRANS_STMT_COMMIT_PREPARED" ||
        kind == "TRANS_STMT_ROLLBACK_PREPARED") {
      Raise(C::kHazard);
    }
    summary_.ends_transaction = kind == "TRANS_STMT_COMMIT" || kind == "TRANS_STMT_ROLLBACK" ||
                                kind == "TRANS_STMT_PREPARE";
  }

  void VariableSet(object o, const Context& c) {
    std::string_view kind = StringField(o, "kind");
    std::string name = Lower(StringField(o, "name"));
    if (kind == "VAR_SET_MULTI") {
      // SET TRANSACTION ... / SET SESSION CHARACTERISTICS AS TRANSACTION ...
      bool session = name == "session characteristics";
      if (session && c.executes) Raise(C::kSessionSetting);
      if (c.executes) TransactionModes(ArrayField(o, "args"), session ? "default_" : "", !session);
      return;
    }
    SettingChange s = SingleSetting(o);
    if (!c.executes) return;  // CREATE FUNCTION ... SET x = y: set while f runs
    bool privileged = s.name == "role" || s.name == "session_authorization";
    Raise(privileged ? C::kDcl : C::kSessionSetting);
    CheckLexerSetting(s);
    summary_.settings.push_back(std::move(s));
  }

  // ---- Queries.

  // WITH: CTE names shadow relations in FROM inside the statement. A CTE of a
  // plain WITH sees the CTEs before it; WITH RECURSIVE ones see them all, their
  // own name included. `scope` receives every name, for the main statement.
  const CteScope* With(object with, const Context& c, CteScope& scope) {
    scope.parent = c.ctes;
    std::optional<array> ctes = ArrayField(with, "ctes");
    if (!ctes) return &scope;
    bool recursive = BoolField(with, "recursive");
    std::vector<object> bodies;
    for (element cte : *ctes) {
      std::optional<Node> node = AsNode(cte);
      if (!node) continue;
      scope.names.push_back(StringField(node->fields, "ctename"));
      row_names_.insert(scope.names.back());
      bodies.push_back(node->fields);
    }
    for (size_t i = 0; i < bodies.size(); ++i) {
      CteScope visible;
      visible.parent = c.ctes;
      visible.names.assign(scope.names.begin(),
                           recursive ? scope.names.end() : scope.names.begin() + i);
      Context body = c;
      body.access = kAccessSelect;
      body.from_clause = false;
      body.result = false;
      body.ctes = &visible;
      for (auto field : bodies[i]) {
        if (field.key == "ctename") continue;
        std::optional<Node> q = AsNode(field.value);
        if (field.key == "ctequery" && q && IsDataModifying(q->type) && c.executes) {
          summary_.data_modifying_cte = true;
        }
        Visit(field.value, body);
      }
    }
    return &scope;
  }

  // Contexts for the parts of a query: expressions, and FROM items.
  struct QueryContexts {
    Context expr;
    Context from;
  };
  QueryContexts ForQuery(object o, const Context& c, CteScope& scope) {
    QueryContexts q{.expr = c, .from = c};
    if (std::optional<object> with = ObjectField(o, "withClause")) {
      q.expr.ctes = q.from.ctes = With(*with, c, scope);
    }
    q.expr.access = kAccessSelect;
    q.expr.from_clause = false;
    q.expr.result = false;
    q.expr.exists_query = q.from.exists_query = false;
    q.from.access = kAccessSelect;
    q.from.from_clause = true;
    q.from.result = false;
    return q;
  }

  void Select(object o, const Context& c) {
    CteScope scope;
    QueryContexts q = ForQuery(o, c, scope);
    // FOR UPDATE / FOR SHARE lock the rows read from the FROM items.
    if (Field(o, "lockingClause")) {
      q.from.access |= kAccessLock;
      // Without a WHERE that selects rows, it locks every row it reads.
      std::optional<element> where = Field(o, "whereClause");
      if (c.executes && (!where || PassesEveryRow(*where, sql_))) Raise(C::kHazard);
    }
    // The statement's result, when its targets become the result's fields.
    const bool result = c.result && !Field(o, "intoClause") &&
                        (StringField(o, "op").empty() || StringField(o, "op") == "SETOP_NONE");
    if (result) ResultOrdering(o);
    for (auto field : o) {
      std::string_view key = field.key;
      if (key == "withClause" || key == "lockingClause") continue;
      if (key == "targetList" && result) {
        ResultTargets(field.value, q.expr);
      } else if (key == "targetList" && c.exists_query) {
        ExistsTargets(field.value, q.expr);
      } else if (key == "fromClause") {
        Visit(field.value, q.from);
      } else if (key == "intoClause") {
        // SELECT ... INTO new_table: creates a table and fills it.
        if (c.executes) {
          Raise(C::kDdl);
          summary_.select_into = true;
          summary_.modifies_data = true;
        }
        Context into = q.expr;
        into.access = kAccessDdl;
        Visit(field.value, into);
      } else {
        Visit(field.value, q.expr);
      }
    }
  }

  // The target of INSERT/UPDATE/DELETE/MERGE is always a table, never a CTE.
  void Target(object o, uint8_t access, const Context& c) {
    if (std::optional<element> rel = Field(o, "relation")) {
      Context target = c;
      target.access = access;
      target.from_clause = false;
      Visit(*rel, target);
    }
  }

  void Filter(object o, const Context& c) {
    if (!c.executes) return;
    summary_.modifies_data = true;
    std::optional<element> where = Field(o, "whereClause");
    if (!where || PassesEveryRow(*where, sql_)) {
      summary_.unfiltered_write = true;
      summary_.destructive = true;
    }
  }

  // A part of INSERT/UPDATE/DELETE: RETURNING is the result of a top-level one.
  void VisitQueryPart(std::string_view key, element value, const Context& c, const Context& part) {
    if (key == "returningList" && c.result) return ResultTargets(value, part);
    Visit(value, part);
  }

  static uint8_t WithReturning(object o, uint8_t access) {
    return Field(o, "returningList") ? access | kAccessSelect : access;
  }

  void Insert(object o, const Context& c) {
    CteScope scope;
    QueryContexts q = ForQuery(o, c, scope);
    uint8_t access = WithReturning(o, kAccessInsert);
    if (std::optional<object> conflict = ObjectField(o, "onConflictClause")) {
      if (c.executes) summary_.on_conflict = true;
      std::optional<object> infer = ObjectField(*conflict, "infer");
      if (c.executes && (!infer || !StringField(*infer, "conname").empty())) {
        summary_.on_conflict_any_arbiter = true;
      }
      if (StringField(*conflict, "action") == "ONCONFLICT_UPDATE") access |= kAccessUpdate;
    }
    if (c.executes) summary_.modifies_data = true;
    Target(o, access, q.expr);
    for (auto field : o) {
      if (field.key == "relation" || field.key == "withClause") continue;
      VisitQueryPart(field.key, field.value, c, q.expr);
    }
  }

  void Update(object o, const Context& c) {
    CteScope scope;
    QueryContexts q = ForQuery(o, c, scope);
    Target(o, WithReturning(o, kAccessUpdate), q.expr);
    for (auto field : o) {
      if (field.key == "relation" || field.key == "withClause") continue;
      VisitQueryPart(field.key, field.value, c, field.key == "fromClause" ? q.from : q.expr);
    }
    Filter(o, c);
  }

  void Delete(object o, const Context& c) {
    CteScope scope;
    QueryContexts q = ForQuery(o, c, scope);
    Target(o, WithReturning(o, kAccessDelete), q.expr);
    for (auto field : o) {
      if (field.key == "relation" || field.key == "withClause") continue;
      VisitQueryPart(field.key, field.value, c, field.key == "usingClause" ? q.from : q.expr);
    }
    Filter(o, c);
  }

  void Merge(object o, const Context& c) {
    CteScope scope;
    QueryContexts q = ForQuery(o, c, scope);
    uint8_t access = 0;
    bool changes_every_match = false;
    if (std::optional<array> clauses = ArrayField(o, "mergeWhenClauses")) {
      for (element clause : *clauses) {
        std::optional<Node> node = AsNode(clause);
        if (!node) continue;
        std::string_view command = StringField(node->fields, "commandType");
        if (command == "CMD_UPDATE") access |= kAccessUpdate;
        if (command == "CMD_DELETE") access |= kAccessDelete;
        if (command == "CMD_INSERT") access |= kAccessInsert;
        std::optional<element> condition = Field(node->fields, "condition");
        if ((command == "CMD_UPDATE" || command == "CMD_DELETE") &&
            (!condition || PassesEveryRow(*condition, sql_))) {
          changes_every_match = true;
        }
      }
    }
    Target(o, access == 0 ? uint8_t{kAccessSelect} : access, q.expr);
    for (auto field : o) {
      if (field.key == "relation" || field.key == "withClause") continue;
      Visit(field.value, field.key == "sourceRelation" ? q.from : q.expr);
    }
    if (!c.executes) return;
    summary_.modifies_data = true;
    std::optional<element> join = Field(o, "joinCondition");
    if (changes_every_match && join && PassesEveryRow(*join, sql_)) {
      summary_.unfiltered_write = true;
      summary_.destructive = true;
    }
  }

  // ---- Statements that wrap another one.

  // EXPLAIN runs its statement only with ANALYZE; plain EXPLAIN plans it.
  static bool ExplainAnalyzes(object o) { return BooleanOption(o, "analyze"); }

  // Whether the statement's `options` turn the boolean option `name` on
  // (EXPLAIN (ANALYZE), VACUUM (FULL)).
  static bool BooleanOption(object o, std::string_view name) {
    std::optional<array> options = ArrayField(o, "options");
    if (!options) return false;
    bool on = false;
    for (element option : *options) {
      std::optional<Node> def = AsNode(option);
      if (!def || def->type != "DefElem" || StringField(def->fields, "defname") != name) {
        continue;
      }
      // defGetBoolean: no argument is true; 0, false and off are false.
      // Anything else is true or an error at the server; both count as true.
      on = true;
      std::optional<element> arg = Field(def->fields, "arg");
      std::optional<Node> value = arg ? AsNode(*arg) : std::nullopt;
      if (!value) continue;
      if (value->type == "Integer" && !Field(value->fields, "ival")) on = false;
      if (value->type == "String") {
        std::string text = Lower(StringField(value->fields, "sval"));
        if (text == "false" || text == "off") on = false;
      }
    }
    return on;
  }

  // ---- Operational hazards (issue 24, item 2): statements whose danger is
  // what they hold or use, not the rows they change.

  // LOCK TABLE in a mode stronger than ROW EXCLUSIVE (lockdefs.h: 3), which
  // blocks the table's readers or writers for as long as the transaction
  // lasts. Plain LOCK is ACCESS EXCLUSIVE.
  void Lock(object o, const Context& c) {
    constexpr int64_t kRowExclusiveLock = 3;
    if (c.executes && IntField(o, "mode") > kRowExclusiveLock) Raise(C::kHazard);
    VisitFields(o, c);
  }

  // VACUUM FULL rewrites the table under an ACCESS EXCLUSIVE lock; plain
  // VACUUM and ANALYZE stay utility.
  void Vacuum(object o, const Context& c) {
    if (c.executes && BoolField(o, "is_vacuumcmd") && BooleanOption(o, "full")) Raise(C::kHazard);
    VisitFields(o, c);
  }

  void Explain(object o, const Context& c) {
    bool analyze = ExplainAnalyzes(o);
    if (analyze && c.executes) summary_.explain_analyze = true;
    Context inner = c;
    inner.executes = c.executes && analyze;
    if (std::optional<element> query = Field(o, "query")) Visit(*query, inner);
  }

  // PREPARE name AS statement: judged by what it prepares. The summary is the
  // prepared statement's (class, relations, functions, flags) under the
  // command PREPARE, without its settings (they change when it is executed);
  // `prepared` keeps the statement's own summary for EXECUTE.
  void Prepare(object o, const Context& c) {
    std::optional<element> query = Field(o, "query");
    if (!c.executes || !query) {
      if (query) Visit(*query, c);
      return;
    }
    auto prepared = std::make_shared<StatementSummary>();
    prepared->location = summary_.location;
    prepared->length = summary_.length;
    absl::Status inner = Classifier(sql_, *prepared).ClassifyTop(*query);
    if (!inner.ok()) return Refuse(std::string(inner.message()));
    StatementSummary outer = *prepared;
    outer.command = summary_.command;
    outer.settings.clear();
    outer.prepare_name = std::string(StringField(o, "name"));
    outer.prepared = std::move(prepared);
    summary_ = std::move(outer);
    relation_index_.clear();
    function_index_.clear();
    output_seen_.clear();
    other_seen_.clear();
  }

  // DECLARE name CURSOR FOR query: FETCH returns the query's result.
  void DeclareCursor(object o, const Context& c) {
    constexpr int64_t kCursorOptHold = 0x0020;  // parsenodes.h CURSOR_OPT_HOLD
    if (c.executes && (IntField(o, "options") & kCursorOptHold) != 0) {
      summary_.holdable_cursor = true;
    }
    VisitFields(o, c);
  }

  void Execute(object o, const Context& c) {
    if (c.executes) summary_.execute_name = std::string(StringField(o, "name"));
    VisitFields(o, c);
  }

  void Deallocate(object o, const Context& c) {
    if (!c.executes) return;
    summary_.deallocate_name = std::string(StringField(o, "name"));
    summary_.deallocate_all = summary_.deallocate_name.empty();
  }

  // COPY: STDIN is a write, STDOUT a read (or what its query is), a server
  // file or PROGRAM is server access either way.
  void Copy(object o, const Context& c) {
    bool from = BoolField(o, "is_from");
    bool program = BoolField(o, "is_program");
    bool server_file = !program && Field(o, "filename").has_value();
    if (c.executes) {
      summary_.copy = CopyInfo{.direction = from ? CopyDirection::kFrom : CopyDirection::kTo,
                               .program = program,
                               .server_file = server_file};
      if (from) summary_.modifies_data = true;
    }
    if (program || server_file) Raise(C::kServerAccess);
    if (from && c.executes) Raise(C::kWrite);
    Target(o, from ? kAccessInsert : kAccessSelect, c);
    for (auto field : o) {
      if (field.key != "relation") Visit(field.value, c);
    }
  }

  void CreateTableAs(object o, const Context& c) {
    if (c.executes) {
      summary_.select_into = true;
      std::optional<object> into = ObjectField(o, "into");
      summary_.modifies_data = !(into && BoolField(*into, "skipData"));
    }
    for (auto field : o) {
      Context part = c;
      part.access = field.key == "into" ? kAccessDdl : kAccessSelect;
      Visit(field.value, part);
    }
  }

  // ---- Definitions: their bodies run later, when used.

  void VisitDefinition(object o, const Context& c, std::initializer_list<std::string_view> bodies) {
    for (auto field : o) {
      Context part = c;
      if (std::find(bodies.begin(), bodies.end(), field.key) != bodies.end()) {
        part.executes = false;
        part.access = kAccessSelect;
      }
      Visit(field.value, part);
    }
  }

  void View(object o, const Context& c) { VisitDefinition(o, c, {"query"}); }
  void Rule(object o, const Context& c) { VisitDefinition(o, c, {"actions", "whereClause"}); }
  void Policy(object o, const Context& c) { VisitDefinition(o, c, {"qual", "with_check"}); }
  void CreateFunction(object o, const Context& c) {
    Context body = c;
    body.executes = false;
    VisitFields(o, body);
  }

  // CREATE [EVENT] TRIGGER ... EXECUTE FUNCTION f(): f runs on every event.
  void Trigger(object o, const Context& c) {
    auto [schema, name] = QualifiedName(o, "funcname");
    AddFunction(schema, name, c);
    VisitFields(o, c);
  }

  // ---- Schema changes.

  void Drop(object o, const Context& c) {
    if (c.executes) summary_.destructive = true;
    std::string_view type = StringField(o, "removeType");
    bool relation = NamesRelation(type);
    bool on_relation = NamesSomethingOnRelation(type);
    if (!relation && !on_relation) return;
    std::optional<array> objects = ArrayField(o, "objects");
    if (!objects) return;
    for (element object_name : *objects) RelationFromNames(object_name, on_relation, kAccessDdl);
  }

  void Destructive(object o, const Context& c) {
    if (c.executes) summary_.destructive = true;
    VisitFields(o, c);
  }

  void Truncate(object o, const Context& c) {
    if (c.executes) {
      summary_.modifies_data = true;
      summary_.destructive = true;
    }
    VisitFields(o, c);
  }

  void RefreshMatView(object o, const Context& c) {
    if (c.executes) summary_.modifies_data = true;
    // Without CONCURRENTLY it holds an ACCESS EXCLUSIVE lock while it runs
    // the view's whole query.
    if (c.executes && !BoolField(o, "concurrent")) Raise(C::kHazard);
    VisitFields(o, c);
  }

  // COMMENT ON / SECURITY LABEL ON an object given as a name list.
  void OnObject(object o, const Context& c) {
    std::string_view type = StringField(o, "objtype");
    std::optional<element> target = Field(o, "object");
    if (target && (NamesRelation(type) || NamesSomethingOnRelation(type))) {
      RelationFromNames(*target, NamesSomethingOnRelation(type), c.access);
    }
  }

  // ALTER TABLE: owner and row-level security changes are access control;
  // DROP COLUMN destroys data.
  void AlterTable(object o, const Context& c) {
    if (std::optional<array> cmds = ArrayField(o, "cmds")) {
      for (element cmd : *cmds) {
        std::optional<Node> node = AsNode(cmd);
        if (!node) continue;
        std::string_view subtype = StringField(node->fields, "subtype");
        if (subtype == "AT_ChangeOwner" || subtype == "AT_EnableRowSecurity" ||
            subtype == "AT_DisableRowSecurity" || subtype == "AT_ForceRowSecurity" ||
            subtype == "AT_NoForceRowSecurity") {
          Raise(C::kDcl);
        }
        if (subtype == "AT_DropColumn" && c.executes) summary_.destructive = true;
      }
    }
    VisitFields(o, c);
  }

  void CreateSchema(object o, const Context& c) {
    Context elements = c;
    elements.creation_schema = StringField(o, "schemaname");
    VisitFields(o, elements);
  }

  // ---- Command tags that depend on the statement.

  static std::string Command(std::string_view type, object f) {
    if (type == "SelectStmt") return Field(f, "intoClause") ? "SELECT INTO" : "SELECT";
    if (type == "VariableSetStmt") {
      std::string_view kind = StringField(f, "kind");
      return kind == "VAR_RESET" || kind == "VAR_RESET_ALL" ? "RESET" : "SET";
    }
    if (type == "TransactionStmt") return TransactionCommand(StringField(f, "kind"));
    if (type == "DropStmt") return PrefixedCommand("DROP", StringField(f, "removeType"));
    if (type == "AlterTableStmt") return PrefixedCommand("ALTER", StringField(f, "objtype"));
    if (type == "RenameStmt") {
      // As PostgreSQL: renaming a column is an ALTER of the column's relation.
      std::string_view renamed = StringField(f, "renameType");
      return PrefixedCommand("ALTER",
                             renamed == "OBJECT_COLUMN" ? StringField(f, "relationType") : renamed);
    }
    if (type == "AlterObjectSchemaStmt" || type == "AlterOwnerStmt" ||
        type == "AlterObjectDependsStmt") {
      return PrefixedCommand("ALTER", StringField(f, "objectType"));
    }
    if (type == "AlterFunctionStmt") return PrefixedCommand("ALTER", StringField(f, "objtype"));
    if (type == "DefineStmt") return PrefixedCommand("CREATE", StringField(f, "kind"));
    if (type == "CreateFunctionStmt") {
      return BoolField(f, "is_procedure") ? "CREATE PROCEDURE" : "CREATE FUNCTION";
    }
    if (type == "CreateTableAsStmt") {
      return StringField(f, "objtype") == "OBJECT_MATVIEW" ? "CREATE MATERIALIZED VIEW"
                                                           : "CREATE TABLE AS";
    }
    if (type == "GrantStmt") return BoolField(f, "is_grant") ? "GRANT" : "REVOKE";
    if (type == "GrantRoleStmt") return BoolField(f, "is_grant") ? "GRANT ROLE" : "REVOKE ROLE";
    if (type == "VacuumStmt") return BoolField(f, "is_vacuumcmd") ? "VACUUM" : "ANALYZE";
    if (type == "FetchStmt") return BoolField(f, "ismove") ? "MOVE" : "FETCH";
    if (type == "ClosePortalStmt") {
      return Field(f, "portalname") ? "CLOSE CURSOR" : "CLOSE CURSOR ALL";
    }
    if (type == "DeallocateStmt") return Field(f, "name") ? "DEALLOCATE" : "DEALLOCATE ALL";
    if (type == "DiscardStmt") {
      std::string_view target = StringField(f, "target");
      if (target == "DISCARD_PLANS") return "DISCARD PLANS";
      if (target == "DISCARD_SEQUENCES") return "DISCARD SEQUENCES";
      if (target == "DISCARD_TEMP") return "DISCARD TEMP";
      return "DISCARD ALL";
    }
    return std::string(type);
  }

  static std::string TransactionCommand(std::string_view kind) {
    if (kind == "TRANS_STMT_BEGIN") return "BEGIN";
    if (kind == "TRANS_STMT_START") return "START TRANSACTION";
    if (kind == "TRANS_STMT_COMMIT") return "COMMIT";
    if (kind == "TRANS_STMT_ROLLBACK" || kind == "TRANS_STMT_ROLLBACK_TO") return "ROLLBACK";
    if (kind == "TRANS_STMT_SAVEPOINT") return "SAVEPOINT";
    if (kind == "TRANS_STMT_RELEASE") return "RELEASE";
    if (kind == "TRANS_STMT_PREPARE") return "PREPARE TRANSACTION";
    if (kind == "TRANS_STMT_COMMIT_PREPARED") return "COMMIT PREPARED";
    if (kind == "TRANS_STMT_ROLLBACK_PREPARED") return "ROLLBACK PREPARED";
    return "TRANSACTION";
  }

  std::string_view sql_;
  StatementSummary& summary_;
  std::string refusal_;
  absl::flat_hash_map<std::pair<std::string_view, std::string_view>, size_t> relation_index_;
  absl::flat_hash_map<std::pair<std::string_view, std::string_view>, size_t> function_index_;
  absl::flat_hash_set<std::string_view> output_seen_;
  absl::flat_hash_set<std::string_view> other_seen_;
  // Names written alone (`c`), and the names rows go by (relations, aliases,
  // functions, CTEs): a name in both is a whole-row reference.
  absl::flat_hash_set<std::string_view> single_names_;
  absl::flat_hash_set<std::string_view> row_names_;
  // Names (relation names and aliases) that stand for a table or view of the
  // statement, and the (schema, relation) pairs each can denote; qualified
  // column references seen, resolved against them at the end.
  absl::flat_hash_map<std::string_view, std::vector<std::pair<std::string_view, std::string_view>>>
      base_relations_;
  struct PendingRef {
    std::string_view schema;  // `s` of s.q.x; empty otherwise
    std::string_view qualifier;
    std::string_view attribute;
  };
  std::vector<PendingRef> pending_refs_;
};

// Every statement node type of PostgreSQL 15's raw grammar (parsenodes.h).
// The class is the statement's own; walking its parts may raise it (a
// function, a data-modifying CTE, COPY to a file). Commands spelled "" are
// computed by Classifier::Command.
const StatementKind* Classifier::FindKind(std::string_view type) {
  using K = StatementKind;
  static const auto* const kKinds = new absl::flat_hash_map<std::string_view, K>{
      // Queries.
      {"SelectStmt", K{C::kRead, "", kAccessSelect, &Classifier::Select}},
      {"InsertStmt", K{C::kWrite, "INSERT", kAccessInsert, &Classifier::Insert}},
      {"UpdateStmt", K{C::kWrite, "UPDATE", kAccessUpdate, &Classifier::Update}},
      {"DeleteStmt", K{C::kWrite, "DELETE", kAccessDelete, &Classifier::Delete}},
      {"MergeStmt", K{C::kWrite, "MERGE", kAccessUpdate, &Classifier::Merge}},
      {"CopyStmt", K{C::kRead, "COPY", kAccessSelect, &Classifier::Copy}},
      {"ExplainStmt", K{C::kRead, "EXPLAIN", kAccessSelect, &Classifier::Explain}},
      {"DeclareCursorStmt",
       K{C::kRead, "DECLARE CURSOR", kAccessSelect, &Classifier::DeclareCursor}},
      {"FetchStmt", K{C::kRead, "", kNoAccess, nullptr}},
      {"VariableShowStmt", K{C::kRead, "SHOW", kNoAccess, nullptr}},
      // Prepared statements: PREPARE takes the class of what it prepares.
      {"PrepareStmt", K{C::kRead, "PREPARE", kAccessSelect, &Classifier::Prepare}},
      {"ExecuteStmt", K{C::kUtility, "EXECUTE", kAccessSelect, &Classifier::Execute}},
      {"DeallocateStmt", K{C::kUtility, "", kNoAccess, &Classifier::Deallocate}},
      // Transactions and session state.
      {"TransactionStmt", K{C::kTransaction, "", kNoAccess, &Classifier::Transaction}},
      {"ConstraintsSetStmt", K{C::kTransaction, "SET CONSTRAINTS", kNoAccess, nullptr}},
      {"VariableSetStmt", K{C::kTransaction, "", kNoAccess, &Classifier::VariableSet}},
      {"DiscardStmt", K{C::kSessionSetting, "", kNoAccess, nullptr}},
      // Utilities.
      {"ClosePortalStmt", K{C::kUtility, "", kNoAccess, nullptr}},
      {"ListenStmt", K{C::kUtility, "LISTEN", kNoAccess, nullptr}},
      {"NotifyStmt", K{C::kUtility, "NOTIFY", kNoAccess, &Classifier::Notify}},
      {"UnlistenStmt", K{C::kUtility, "UNLISTEN", kNoAccess, nullptr}},
      {"LockStmt", K{C::kUtility, "LOCK TABLE", kAccessLock, &Classifier::Lock}},
      {"CheckPointStmt", K{C::kHazard, "CHECKPOINT", kNoAccess, nullptr}},
      // Owner-only maintenance: PostgreSQL 15 requires ownership, as for DDL.
      {"VacuumStmt", K{C::kUtility, "", kAccessDdl, &Classifier::Vacuum}},
      {"ClusterStmt", K{C::kHazard, "CLUSTER", kAccessDdl, nullptr}},
      {"ReindexStmt", K{C::kHazard, "REINDEX", kAccessDdl, nullptr}},
      // Data changes.
      {"TruncateStmt", K{C::kWrite, "TRUNCATE TABLE", kAccessTruncate, &Classifier::Truncate}},
      {"RefreshMatViewStmt",
       K{C::kWrite, "REFRESH MATERIALIZED VIEW", kAccessUpdate, &Classifier::RefreshMatView}},
      // Schema changes.
      {"CreateTableAsStmt", K{C::kDdl, "", kAccessSelect, &Classifier::CreateTableAs}},
      {"CreateStmt", K{C::kDdl, "CREATE TABLE", kAccessDdl, nullptr}},
      {"CreateForeignTableStmt", K{C::kDdl, "CREATE FOREIGN TABLE", kAccessDdl, nullptr}},
      {"ViewStmt", K{C::kDdl, "CREATE VIEW", kAccessDdl, &Classifier::View}},
      {"IndexStmt", K{C::kDdl, "CREATE INDEX", kAccessDdl, nullptr}},
      {"CreateSeqStmt", K{C::kDdl, "CREATE SEQUENCE", kAccessDdl, nullptr}},
      {"AlterSeqStmt", K{C::kDdl, "ALTER SEQUENCE", kAccessDdl, nullptr}},
      {"AlterTableStmt", K{C::kDdl, "", kAccessDdl, &Classifier::AlterTable}},
      {"AlterTableMoveAllStmt", K{C::kDdl, "ALTER TABLE", kAccessDdl, nullptr}},
      {"RenameStmt", K{C::kDdl, "", kAccessDdl, nullptr}},
      {"AlterObjectSchemaStmt", K{C::kDdl, "", kAccessDdl, nullptr}},
      {"AlterObjectDependsStmt", K{C::kDdl, "", kAccessDdl, nullptr}},
      {"CommentStmt", K{C::kDdl, "COMMENT", kAccessDdl, &Classifier::OnObject}},
      {"DropStmt", K{C::kDdl, "", kAccessDdl, &Classifier::Drop}},
      {"CreateSchemaStmt", K{C::kDdl, "CREATE SCHEMA", kAccessDdl, &Classifier::CreateSchema}},
      {"CreatedbStmt", K{C::kDdl, "CREATE DATABASE", kAccessDdl, nullptr}},
      {"AlterDatabaseStmt", K{C::kDdl, "ALTER DATABASE", kAccessDdl, nullptr}},
      {"AlterDatabaseSetStmt",
       K{C::kDdl, "ALTER DATABASE", kAccessDdl, &Classifier::StoredSetting}},
      {"AlterDatabaseRefreshCollStmt", K{C::kDdl, "ALTER DATABASE", kAccessDdl, nullptr}},
      {"DropdbStmt", K{C::kDdl, "DROP DATABASE", kAccessDdl, &Classifier::Destructive}},
      {"DefineStmt", K{C::kDdl, "", kAccessDdl, nullptr}},
      {"CompositeTypeStmt", K{C::kDdl, "CREATE TYPE", kAccessDdl, nullptr}},
      {"CreateEnumStmt", K{C::kDdl, "CREATE TYPE", kAccessDdl, nullptr}},
      {"CreateRangeStmt", K{C::kDdl, "CREATE TYPE", kAccessDdl, nullptr}},
      {"AlterEnumStmt", K{C::kDdl, "ALTER TYPE", kAccessDdl, nullptr}},
      {"AlterTypeStmt", K{C::kDdl, "ALTER TYPE", kAccessDdl, nullptr}},
      {"CreateDomainStmt", K{C::kDdl, "CREATE DOMAIN", kAccessDdl, nullptr}},
      {"AlterDomainStmt", K{C::kDdl, "ALTER DOMAIN", kAccessDdl, nullptr}},
      {"CreateCastStmt", K{C::kDdl, "CREATE CAST", kAccessDdl, nullptr}},
      {"CreateConversionStmt", K{C::kDdl, "CREATE CONVERSION", kAccessDdl, nullptr}},
      {"CreateOpClassStmt", K{C::kDdl, "CREATE OPERATOR CLASS", kAccessDdl, nullptr}},
      {"CreateOpFamilyStmt", K{C::kDdl, "CREATE OPERATOR FAMILY", kAccessDdl, nullptr}},
      {"AlterOpFamilyStmt", K{C::kDdl, "ALTER OPERATOR FAMILY", kAccessDdl, nullptr}},
      {"AlterOperatorStmt", K{C::kDdl, "ALTER OPERATOR", kAccessDdl, nullptr}},
      {"AlterTSDictionaryStmt", K{C::kDdl, "ALTER TEXT SEARCH DICTIONARY", kAccessDdl, nullptr}},
      {"AlterTSConfigurationStmt",
       K{C::kDdl, "ALTER TEXT SEARCH CONFIGURATION", kAccessDdl, nullptr}},
      {"CreateStatsStmt", K{C::kDdl, "CREATE STATISTICS", kAccessDdl, nullptr}},
      {"AlterStatsStmt", K{C::kDdl, "ALTER STATISTICS", kAccessDdl, nullptr}},
      {"AlterCollationStmt", K{C::kDdl, "ALTER COLLATION", kAccessDdl, nullptr}},
      {"CreateForeignServerStmt", K{C::kDdl, "CREATE SERVER", kAccessDdl, nullptr}},
      {"AlterForeignServerStmt", K{C::kDdl, "ALTER SERVER", kAccessDdl, nullptr}},
      {"ImportForeignSchemaStmt", K{C::kDdl, "IMPORT FOREIGN SCHEMA", kAccessDdl, nullptr}},
      {"CreatePublicationStmt", K{C::kDdl, "CREATE PUBLICATION", kAccessDdl, nullptr}},
      {"AlterPublicationStmt", K{C::kDdl, "ALTER PUBLICATION", kAccessDdl, nullptr}},
      {"DropSubscriptionStmt",
       K{C::kDdl, "DROP SUBSCRIPTION", kAccessDdl, &Classifier::Destructive}},
      {"DropTableSpaceStmt", K{C::kDdl, "DROP TABLESPACE", kAccessDdl, &Classifier::Destructive}},
      {"AlterTableSpaceOptionsStmt", K{C::kDdl, "ALTER TABLESPACE", kAccessDdl, nullptr}},
      {"AlterExtensionContentsStmt", K{C::kDdl, "ALTER EXTENSION", kAccessDdl, nullptr}},
      // Access control.
      {"GrantStmt", K{C::kDcl, "", kAccessDdl, nullptr}},
      {"GrantRoleStmt", K{C::kDcl, "", kNoAccess, nullptr}},
      {"AlterDefaultPrivilegesStmt", K{C::kDcl, "ALTER DEFAULT PRIVILEGES", kAccessDdl, nullptr}},
      {"CreateRoleStmt", K{C::kDcl, "CREATE ROLE", kNoAccess, nullptr}},
      {"AlterRoleStmt", K{C::kDcl, "ALTER ROLE", kNoAccess, nullptr}},
      {"AlterRoleSetStmt", K{C::kDcl, "ALTER ROLE", kNoAccess, &Classifier::StoredSetting}},
      {"DropRoleStmt", K{C::kDcl, "DROP ROLE", kNoAccess, &Classifier::Destructive}},
      {"DropOwnedStmt", K{C::kDcl, "DROP OWNED", kNoAccess, &Classifier::Destructive}},
      {"ReassignOwnedStmt", K{C::kDcl, "REASSIGN OWNED", kNoAccess, nullptr}},
      {"AlterOwnerStmt", K{C::kDcl, "", kAccessDdl, nullptr}},
      {"SecLabelStmt", K{C::kDcl, "SECURITY LABEL", kAccessDdl, &Classifier::OnObject}},
      {"CreatePolicyStmt", K{C::kDcl, "CREATE POLICY", kAccessDdl, &Classifier::Policy}},
      {"AlterPolicyStmt", K{C::kDcl, "ALTER POLICY", kAccessDdl, &Classifier::Policy}},
      {"CreateUserMappingStmt", K{C::kDcl, "CREATE USER MAPPING", kNoAccess, nullptr}},
      {"AlterUserMappingStmt", K{C::kDcl, "ALTER USER MAPPING", kNoAccess, nullptr}},
      {"DropUserMappingStmt", K{C::kDcl, "DROP USER MAPPING", kNoAccess, &Classifier::Destructive}},
      // Code that runs in the server, now or whenever its event happens.
      {"DoStmt", K{C::kCodeExecution, "DO", kNoAccess, nullptr}},
      {"CallStmt", K{C::kCodeExecution, "CALL", kNoAccess, nullptr}},
      {"CreateFunctionStmt", K{C::kCodeExecution, "", kAccessDdl, &Classifier::CreateFunction}},
      {"AlterFunctionStmt", K{C::kCodeExecution, "", kAccessDdl, nullptr}},
      {"RuleStmt", K{C::kCodeExecution, "CREATE RULE", kAccessDdl, &Classifier::Rule}},
      {"CreateTrigStmt", K{C::kCodeExecution, "CREATE TRIGGER", kAccessDdl, &Classifier::Trigger}},
      {"CreateEventTrigStmt",
       K{C::kCodeExecution, "CREATE EVENT TRIGGER", kNoAccess, &Classifier::Trigger}},
      {"AlterEventTrigStmt", K{C::kCodeExecution, "ALTER EVENT TRIGGER", kNoAccess, nullptr}},
      {"CreatePLangStmt", K{C::kCodeExecution, "CREATE LANGUAGE", kNoAccess, nullptr}},
      {"CreateExtensionStmt", K{C::kCodeExecution, "CREATE EXTENSION", kNoAccess, nullptr}},
      {"AlterExtensionStmt", K{C::kCodeExecution, "ALTER EXTENSION", kNoAccess, nullptr}},
      {"LoadStmt", K{C::kCodeExecution, "LOAD", kNoAccess, nullptr}},
      {"CreateTransformStmt", K{C::kCodeExecution, "CREATE TRANSFORM", kNoAccess, nullptr}},
      {"CreateAmStmt", K{C::kCodeExecution, "CREATE ACCESS METHOD", kNoAccess, nullptr}},
      {"CreateFdwStmt", K{C::kCodeExecution, "CREATE FOREIGN DATA WRAPPER", kNoAccess, nullptr}},
      {"AlterFdwStmt", K{C::kCodeExecution, "ALTER FOREIGN DATA WRAPPER", kNoAccess, nullptr}},
      // The server's files, configuration and network connections.
      {"AlterSystemStmt",
       K{C::kServerAccess, "ALTER SYSTEM", kNoAccess, &Classifier::StoredSetting}},
      {"CreateTableSpaceStmt", K{C::kServerAccess, "CREATE TABLESPACE", kNoAccess, nullptr}},
      {"CreateSubscriptionStmt", K{C::kServerAccess, "CREATE SUBSCRIPTION", kNoAccess, nullptr}},
      {"AlterSubscriptionStmt", K{C::kServerAccess, "ALTER SUBSCRIPTION", kNoAccess, nullptr}},
  };
  auto it = kKinds->find(type);
  return it == kKinds->end() ? nullptr : &it->second;
}

}  // namespace

absl::Status ClassifyStatement(element stmt, std::string_view sql, StatementSummary& summary) {
  return Classifier(sql, summary).ClassifyTop(stmt);
}

}  // namespace pgb::policy::internal
