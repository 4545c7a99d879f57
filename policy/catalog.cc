#include "policy/catalog.h"

#include <utility>

#include "absl/strings/string_view.h"

namespace pgb::policy {

const CatalogColumn* CatalogRelation::FindColumn(std::string_view column) const {
  for (const CatalogColumn& c : columns) {
    if (c.name == column) return &c;
  }
  return nullptr;
}

void RelationCatalog::Add(CatalogRelation relation) {
  for (const CatalogColumn& c : relation.columns) {
    if (c.mask_tag) tagged_.try_emplace(c.name, *c.mask_tag);
  }
  by_name_[relation.name].push_back(relations_.size());
  relations_.push_back(std::move(relation));
}

const CatalogRelation* RelationCatalog::Find(std::string_view schema, std::string_view name) const {
  auto it = by_name_.find(absl::string_view(name.data(), name.size()));
  if (it == by_name_.end()) return nullptr;
  for (size_t i : it->second) {
    if (relations_[i].schema == schema) return &relations_[i];
  }
  return nullptr;
}

std::vector<const CatalogRelation*> RelationCatalog::FindAnySchema(std::string_view name) const {
  std::vector<const CatalogRelation*> found;
  auto it = by_name_.find(absl::string_view(name.data(), name.size()));
  if (it == by_name_.end()) return found;
  for (size_t i : it->second) found.push_back(&relations_[i]);
  return found;
}

std::optional<MaskMethod> MaskTagOf(std::string_view comment) {
  static constexpr std::string_view kTag = "pgbastion:mask=";
  for (size_t at = comment.find(kTag); at != std::string_view::npos;
       at = comment.find(kTag, at + 1)) {
    if (at > 0 && comment[at - 1] != ' ' && comment[at - 1] != '\t' && comment[at - 1] != '\n' &&
        comment[at - 1] != ',' && comment[at - 1] != ';' && comment[at - 1] != '(') {
      continue;
    }
    size_t begin = at + kTag.size();
    size_t end = begin;
    while (end < comment.size() && comment[end] >= 'a' && comment[end] <= 'z') ++end;
    std::string_view method = comment.substr(begin, end - begin);
    if (method == "redact") return MaskMethod::kRedact;
    if (method == "partial") return MaskMethod::kPartial;
    if (method == "null") return MaskMethod::kNull;
    // A tag whose method is misspelt or unknown here still says the column
    // is sensitive: fail closed.
    return MaskMethod::kRedact;
  }
  return std::nullopt;
}

}  // namespace pgb::policy
