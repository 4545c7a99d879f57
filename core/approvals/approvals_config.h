// [approvals]: where approval requests are kept and how a statement that
// needs approval is treated (issue 18; docs/approvals.md). Without the table
// a statement whose decision is `approval` is refused, as before.
//
//   [approvals]
//   store = "/var/lib/pgbastion/approvals.db"   # SQLite, created if absent
//   mode = "hold"            # or "retry"
//   timeout = "5m"           # hold: how long a person has to decide
//   approvers = 1            # distinct approvals needed
//   approver_groups = ["dba"]
//   approve_url = "https://gw.example.com:9432/v1/approvals"   # shown to the client
//   [[approvals.rule]]       # overrides, the first that matches wins
//   rule = "profile.read-write.destructive"   # exact, or a prefix ending in '*'
//   scope = "agents"         # optional
//   approvers = 2
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "base/toml_table.h"
#include "core/approvals/approval_store.h"
#include "toml++/toml.h"

namespace pgb::approvals {

// What applies to one held statement.
struct ApprovalSettings {
  ApprovalMode mode = ApprovalMode::kHold;
  absl::Duration timeout = absl::Minutes(5);
  uint32_t approvers = 1;
  std::vector<std::string> approver_groups;
  uint32_t uses = 1;
};

struct ApprovalRuleConfig {
  std::string rule;   // exact, or a prefix ending in '*'
  std::string scope;  // empty: any scope
  std::optional<ApprovalMode> mode;
  std::optional<absl::Duration> timeout;
  std::optional<uint32_t> approvers;
  std::optional<std::vector<std::string>> approver_groups;
  std::optional<uint32_t> uses;
};

struct ApprovalsConfig {
  bool enabled = false;  // an [approvals] table exists
  std::string store;     // the SQLite file
  std::string approve_url;
  ApprovalSettings defaults;
  std::vector<ApprovalRuleConfig> rules;

  // The settings for a statement held by `rule` in `scope`.
  ApprovalSettings For(std::string_view scope, std::string_view rule) const;
};

// Parses the [approvals] node (nullptr if absent) into `out`.
void ParseApprovalsConfig(const toml::node* node,
                          const std::function<std::string(std::string_view)>& resolve,
                          const TomlProblemSink& sink, ApprovalsConfig* out);

}  // namespace pgb::approvals
