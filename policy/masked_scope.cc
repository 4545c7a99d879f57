#include "policy/masked_scope.h"

#include <vector>

#include "base/str_cat.h"

namespace pgb::policy {
namespace {

// Relations that show other sessions' statement texts, literals included.
constexpr std::string_view kActivityRelations[] = {"pg_stat_activity", "pg_stat_statements"};
// Functions behind them, and functions that carry a value out of the result
// path (a notification, a setting's ParameterStatus, a large object).
constexpr std::string_view kChannelFunctions[] = {"pg_stat_get_activity",
                                                  "pg_stat_get_backend_activity",
                                                  "pg_stat_statements",
                                                  "pg_notify",
                                                  "lowrite",
                                                  "loread"};

template <size_t N>
bool In(const std::string_view (&list)[N], std::string_view name) {
  for (std::string_view entry : list) {
    if (entry == name) return true;
  }
  return false;
}

std::string Qualified(std::string_view schema, std::string_view name) {
  return schema.empty() ? std::string(name) : Cat(schema, ".", name);
}

// The catalog's relations `schema.name` can be under the session's possible
// search paths.
std::vector<const CatalogRelation*> Resolve(const RelationCatalog& catalog,
                                            const SessionPolicyState& state,
                                            std::string_view schema, std::string_view name) {
  std::vector<const CatalogRelation*> found;
  if (!schema.empty()) {
    if (const CatalogRelation* r = catalog.Find(schema, name)) found.push_back(r);
    return found;
  }
  const bool known = state.ForEachCandidate(name, NameKind::kRelation, [&](std::string_view s) {
    if (const CatalogRelation* r = catalog.Find(s, name)) found.push_back(r);
  });
  if (!known) found = catalog.FindAnySchema(name);
  return found;
}

bool HasMaskedColumn(const Scope& scope, const RelationCatalog& catalog,
                     const CatalogRelation& relation) {
  for (const CatalogColumn& column : relation.columns) {
    if (MaskedName(scope, &catalog, column.name) != nullptr) return true;
  }
  return false;
}

// Views nested deeper than this are refused in a scope with masks.
constexpr int kMaxViewDepth = 16;

// A view is judged by its definition with the mask rules, as if the session
// had written it. System views are not: they read the catalogs only.
std::optional<MaskRefusal> CheckView(const Scope& scope, const CatalogRelation& relation,
                                     const SessionPolicyState& state, int view_depth) {
  if (relation.schema == "pg_catalog" || relation.schema == "information_schema") {
    return std::nullopt;
  }
  const std::string name = Cat(relation.schema, ".", relation.name);
  if (relation.definition_unread) {
    return MaskRefusal{Cat("the definition of view ", name,
                           " could not be analysed, so the gateway cannot tell which columns it "
                           "reveals (scope ",
                           scope.name, " masks columns)"),
                       "select from the tables the view reads"};
  }
  if (relation.definition == nullptr) return std::nullopt;
  if (view_depth >= kMaxViewDepth) {
    return MaskRefusal{Cat("view ", name, " is built on views nested more than ", kMaxViewDepth,
                           " deep (scope ", scope.name, " masks columns)"),
                       "select from the tables the views read"};
  }
  const Decision d = DecideMasks(scope, *relation.definition, state, view_depth + 1);
  if (d.kind != Decision::kDeny) return std::nullopt;
  return MaskRefusal{
      Cat("view ", name, " is defined by a query this scope may not run: ", d.reason),
      Cat("select from the tables the view reads, as the rules allow (", d.hint, ")")};
}

}  // namespace

const ColumnMask* MaskedName(const Scope& scope, const RelationCatalog* catalog,
                             std::string_view column) {
  return FindColumnMask(scope.masks, catalog, column);
}

std::optional<MaskRefusal> CheckMaskedScope(const Scope& scope, const StatementSummary& s,
                                            const SessionPolicyState& state, int view_depth) {
  const std::string in_scope = Cat(" (scope ", scope.name, " masks columns)");
  for (const RelationRef& r : s.relations) {
    if (In(kActivityRelations, r.name)) {
      return MaskRefusal{Cat(r.name, " shows other sessions' statements with their literals, ",
                             "a secret catalog", in_scope),
                         "ask an administrator; a scope with masks may not read it"};
    }
  }
  for (const FunctionRef& f : s.functions) {
    const bool large_object = f.name.starts_with("lo_");
    if (In(kChannelFunctions, f.name) || large_object) {
      return MaskRefusal{Cat("function ", f.name, " carries values out of the result rows (",
                             large_object ? "a large object" : "a notification or statistics",
                             "), where masking cannot reach them", in_scope),
                         "select the values instead; masked columns are rewritten in rows only"};
    }
  }
  for (const SettingChange& setting : s.settings) {
    if (setting.via_function && !setting.value_known) {
      return MaskRefusal{Cat("set_config with a computed value would show it to the client in a ",
                             "ParameterStatus or SHOW, past masking", in_scope),
                         "set settings to constants"};
    }
  }

  const RelationCatalog* catalog = state.catalog();
  // Relations only created, dropped or renamed here need not exist yet.
  bool touches_relations = false;
  for (const RelationRef& r : s.relations) touches_relations |= r.access != kAccessDdl;
  if (!touches_relations) return std::nullopt;
  if (catalog == nullptr) {
    return MaskRefusal{
        Cat("the gateway has not read the target's catalog, and without it cannot tell which "
            "columns a statement reveals",
            in_scope),
        "try again shortly; the gateway reads the catalog at start and every minute (its log "
        "says why a read failed)"};
  }
  for (const RelationRef& r : s.relations) {
    if (r.access == kAccessDdl) continue;
    const std::vector<const CatalogRelation*> found = Resolve(*catalog, state, r.schema, r.name);
    if (found.empty()) {
      return MaskRefusal{
          Cat("relation ", Qualified(r.schema, r.name),
              " is not in the target's catalog as the gateway last read it, so the gateway "
              "cannot tell which of its columns are masked",
              in_scope),
          "use tables and views that exist (temporary tables are not seen); a relation created "
          "in this session is known shortly after its transaction commits"};
    }
    for (const CatalogRelation* relation : found) {
      if (std::optional<MaskRefusal> refusal = CheckView(scope, *relation, state, view_depth)) {
        return refusal;
      }
    }
    if (s.on_conflict_any_arbiter && (r.access & kAccessInsert) != 0) {
      for (const CatalogRelation* relation : found) {
        if (HasMaskedColumn(scope, *catalog, *relation)) {
          return MaskRefusal{
              Cat("ON CONFLICT ON CONSTRAINT (or without a conflict target) on ", relation->schema,
                  ".", relation->name,
                  ", which has masked columns, answers whether a guessed value exists (INSERT 0 0 "
                  "or INSERT 0 1)",
                  in_scope),
              "name the conflict columns, ON CONFLICT (id), leaving masked columns out"};
        }
      }
    }
  }
  for (const StatementSummary::AttributeRef& ref : s.attribute_refs) {
    for (const CatalogRelation* relation : Resolve(*catalog, state, ref.schema, ref.relation)) {
      if (relation->HasColumn(ref.attribute)) continue;
      if (!HasMaskedColumn(scope, *catalog, *relation)) continue;
      return MaskRefusal{
          Cat(ref.attribute, " is not a column of ", relation->schema, ".", relation->name,
              ": PostgreSQL reads a reference to it as ", ref.attribute, "(", relation->name,
              "), a function of the whole row, which has masked columns", in_scope),
          "select the columns you need by name"};
    }
  }
  return std::nullopt;
}

}  // namespace pgb::policy
