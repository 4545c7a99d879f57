#include "core/approvals/approvals_config.h"

#include "base/str_cat.h"

namespace pgb::approvals {
namespace {

bool RuleMatches(std::string_view pattern, std::string_view rule) {
  if (!pattern.empty() && pattern.back() == '*') {
    pattern.remove_suffix(1);
    return rule.substr(0, pattern.size()) == pattern;
  }
  return pattern == rule;
}

// The keys a rule and the table share.
template <typename Set>
void ReadSettings(TomlTableReader& reader, Set&& set) {
  if (auto v = reader.Enum("mode", {"hold", "retry"})) {
    set.mode(*v == 0 ? ApprovalMode::kHold : ApprovalMode::kRetry);
  }
  if (auto v = reader.Duration("timeout", absl::Seconds(1), absl::Hours(24 * 7))) set.timeout(*v);
  if (auto v = reader.Integer("approvers", 1, 16)) set.approvers(static_cast<uint32_t>(*v));
  if (auto v = reader.StringList("approver_groups")) set.groups(*std::move(v));
  if (auto v = reader.Integer("uses", 1, 1000)) set.uses(static_cast<uint32_t>(*v));
}

}  // namespace

ApprovalSettings ApprovalsConfig::For(std::string_view scope, std::string_view rule) const {
  ApprovalSettings s = defaults;
  for (const ApprovalRuleConfig& r : rules) {
    if (!RuleMatches(r.rule, rule) || (!r.scope.empty() && r.scope != scope)) continue;
    if (r.mode) s.mode = *r.mode;
    if (r.timeout) s.timeout = *r.timeout;
    if (r.approvers) s.approvers = *r.approvers;
    if (r.approver_groups) s.approver_groups = *r.approver_groups;
    if (r.uses) s.uses = *r.uses;
    break;
  }
  return s;
}

void ParseApprovalsConfig(const toml::node* node,
                          const std::function<std::string(std::string_view)>& resolve,
                          const TomlProblemSink& sink, ApprovalsConfig* out) {
  if (node == nullptr) return;
  const toml::table* table = node->as_table();
  if (table == nullptr) {
    sink(node->source(), "approvals",
         Cat("expected a table ([approvals]), got ", TomlTypeName(*node)));
    return;
  }
  out->enabled = true;
  TomlTableReader reader(
      *table, "approvals",
      {"store", "approve_url", "mode", "timeout", "approvers", "approver_groups", "uses", "rule"},
      sink);
  if (auto v = reader.RequiredString("store", "the SQLite file that keeps approval requests")) {
    out->store = resolve(*v);
  }
  if (auto v = reader.NonEmptyString("approve_url")) out->approve_url = *v;
  struct {
    ApprovalSettings* s;
    void mode(ApprovalMode m) { s->mode = m; }
    void timeout(absl::Duration d) { s->timeout = d; }
    void approvers(uint32_t n) { s->approvers = n; }
    void groups(std::vector<std::string> g) { s->approver_groups = std::move(g); }
    void uses(uint32_t n) { s->uses = n; }
  } defaults{&out->defaults};
  ReadSettings(reader, defaults);
  if (const toml::node* rules = reader.Get("rule")) {
    ForEachTomlTable(
        *rules, "approvals.rule", sink, [&](const toml::table& t, const std::string& path, size_t) {
          TomlTableReader r(
              t, path, {"rule", "scope", "mode", "timeout", "approvers", "approver_groups", "uses"},
              sink);
          ApprovalRuleConfig rule;
          if (auto v = r.RequiredString("rule", "the policy rule it applies to")) {
            rule.rule = *v;
          }
          if (auto v = r.NonEmptyString("scope")) rule.scope = *v;
          struct {
            ApprovalRuleConfig* c;
            void mode(ApprovalMode m) { c->mode = m; }
            void timeout(absl::Duration d) { c->timeout = d; }
            void approvers(uint32_t n) { c->approvers = n; }
            void groups(std::vector<std::string> g) { c->approver_groups = std::move(g); }
            void uses(uint32_t n) { c->uses = n; }
          } set{&rule};
          ReadSettings(r, set);
          out->rules.push_back(std::move(rule));
        });
  }
}

}  // namespace pgb::approvals
