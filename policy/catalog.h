// RelationCatalog: what the masking rules know of a target database's
// relations, read from its catalog (pg_class, pg_attribute, pg_description)
// over the gateway's own connection (core/catalog_reader.h) and shared
// read-only by every shard as an immutable snapshot.
//
// The analyser sees names only: `c.to_json` is a column reference to it. With
// the catalog the rules can tell PostgreSQL's two readings apart (a column x
// of c, or the function x called on c's whole row), know which columns a
// relation has (a relation with a masked column may not be used whole), and
// read masks declared in the database itself: a column whose comment holds
// the tag `pgbastion:mask=<method>` (redact, partial, null) is masked by that
// method in every scope that has masks.
//
//   RelationCatalog catalog;
//   catalog.Add({.schema = "public", .name = "customers", .kind = 'r',
//                .columns = {{"id", 23, 1, {}}, {"email", 1043, 2, MaskMethod::kPartial}}});
//   const CatalogRelation* r = catalog.Find("public", "customers");
//   r->HasColumn("to_json");  // false: c.to_json is a function call on c
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "policy/masking.h"
#include "policy/statement.h"

namespace pgb::policy {

struct CatalogColumn {
  std::string name;
  uint32_t type_oid = 0;
  int16_t attnum = 0;  // negative for system columns (ctid, xmin, ...)
  // The method of a `pgbastion:mask=<method>` tag in the column's comment.
  std::optional<MaskMethod> mask_tag;
};

struct CatalogRelation {
  uint32_t oid = 0;
  std::string schema;
  std::string name;
  char kind = 'r';  // pg_class.relkind: r table, v view, m matview, f foreign, p partitioned
  std::vector<CatalogColumn> columns;
  // A view's or materialized view's query (pg_get_viewdef, names qualified),
  // as the analyser reads it; null for other relations, and for a view whose
  // definition could not be analysed (then `definition_unread`).
  std::shared_ptr<const StatementSummary> definition;
  bool definition_unread = false;

  const CatalogColumn* FindColumn(std::string_view column) const;
  bool HasColumn(std::string_view column) const { return FindColumn(column) != nullptr; }
};

class RelationCatalog {
 public:
  void Add(CatalogRelation relation);
  const CatalogRelation* Find(std::string_view schema, std::string_view name) const;
  // Every relation named `name`, in any schema (for a search_path that is
  // not known).
  std::vector<const CatalogRelation*> FindAnySchema(std::string_view name) const;
  size_t size() const { return relations_.size(); }
  // Names of columns tagged `pgbastion:mask=` in any relation, and their
  // methods (the first tag met for a name wins).
  const absl::flat_hash_map<std::string, MaskMethod>& tagged_columns() const { return tagged_; }

  absl::Time read_at = absl::InfinitePast();

 private:
  std::vector<CatalogRelation> relations_;
  absl::flat_hash_map<std::string, std::vector<size_t>> by_name_;  // name -> indexes
  absl::flat_hash_map<std::string, MaskMethod> tagged_;
};

// The method named by a `pgbastion:mask=<method>` tag in a column comment:
// the tag may stand anywhere in the comment, separated from other text by
// white space, commas, semicolons or a parenthesis. An unknown method is
// read as redact (the tag says the column is sensitive); nullopt: no tag.
//   "Customer e-mail. pgbastion:mask=partial" -> kPartial
std::optional<MaskMethod> MaskTagOf(std::string_view comment);

}  // namespace pgb::policy
