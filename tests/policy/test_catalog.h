// A small target catalog for the masking tests (policy/catalog.h): the
// relations the tests' statements name, in schema public (and pg_catalog's
// statistics views), as the gateway's catalog reader would read them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "policy/catalog.h"

namespace pgb::policy {

inline std::shared_ptr<const RelationCatalog> TestCatalog() {
  auto catalog = std::make_shared<RelationCatalog>();
  uint32_t oid = 16384;
  auto add = [&](std::string schema, std::string name, std::vector<std::string> columns,
                 char kind = 'r') {
    CatalogRelation r;
    r.oid = oid++;
    r.schema = std::move(schema);
    r.name = std::move(name);
    r.kind = kind;
    int16_t attnum = 1;
    for (std::string& c : columns) r.columns.push_back({std::move(c), 25, attnum++, {}});
    for (const char* system : {"ctid", "xmin", "xmax", "cmin", "cmax", "tableoid"}) {
      if (kind == 'r') r.columns.push_back({system, 0, -1, {}});
    }
    catalog->Add(std::move(r));
  };
  add("public", "customers", {"id", "name", "email", "phone", "note", "total"});
  add("public", "old_customers", {"id", "email"});
  add("public", "orders", {"id", "customer_id", "total", "note"});
  add("public", "t", {"id", "x", "note"});
  add("public", "a", {"id", "email"});
  add("public", "b", {"id", "email"});
  add("public", "contacts", {"id", "contact"}, 'v');
  add("pg_catalog", "pg_stats", {"attname", "most_common_vals", "histogram_bounds"}, 'v');
  add("pg_catalog", "pg_stats_ext_exprs", {"expr", "most_common_vals"}, 'v');
  add("pg_catalog", "pg_class", {"oid", "relname", "relnamespace", "relkind"});
  add("pg_catalog", "pg_namespace", {"oid", "nspname"});
  add("pg_catalog", "pg_stat_activity", {"pid", "query"}, 'v');
  return catalog;
}

}  // namespace pgb::policy
