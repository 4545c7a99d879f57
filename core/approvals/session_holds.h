// SessionHolds is one session's side of approvals (issue 18): the statements
// its gate held, the requests it submitted for them to the ApprovalStore, and
// the way the store's answers come back to the session's own shard. The
// store's thread calls back; the callback only posts to the shard
// (Shard::Post), whose thread hands the event to the session: nothing here
// blocks a ring.
//
//   SessionHolds holds(store, &config.approvals, post);   // store null: refuse as before
//   const std::string id = holds.Submit(hold_number, std::move(request));
//   ... session: OnApprovalEvent(hold_number, event) on the shard's thread
//   holds.WithdrawAll("the client disconnected");           // the session ends
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "core/approvals/approval_store.h"
#include "core/approvals/approvals_config.h"
#include "proto/messages.h"

namespace pgb::approvals {

// What the statement gate held: a Query or a Parse that waits for a person.
struct HeldStatement {
  uint64_t hold = 0;  // the session's number for it (RequestNote::hold)
  char type = 0;      // kPqMsg_Query or kPqMsg_Parse
  std::string statement_name;
  std::string statement;  // the text the approver sees
  uint64_t fingerprint = 0;
  std::string statement_class;
  std::string rule;
  std::string reason;
  ApprovalSettings settings;
  std::string id;  // the approval request's, once submitted
};

// The hex SHA-256 of what an approval binds to: the statement's text (its
// ends trimmed), the identity (subject and issuer), the target and the scope
// (and `parameters`, a hash of parameter values, where known).
std::string ApprovalBinding(std::string_view statement, std::string_view subject,
                            std::string_view issuer, std::string_view target,
                            std::string_view scope, std::string_view parameters = {});

// SQLSTATE of a held statement nobody decided in time (implementation-defined
// class "PB", pgbastion).
inline constexpr const char* kApprovalTimedOut = "PBA01";

// The NoticeResponse a client gets once its held statement's request is
// stored: the request id, the rule, and how to approve it.
proto::ErrorFields HoldNotice(const HeldStatement& held, const ApprovalsConfig& config);
// The error the client sees in place of a held statement the store's
// `event` refused (denied, expired, retry later, store failure).
proto::ErrorFields HoldRefusal(const HeldStatement& held, const ApprovalEvent& event);

// 32 random hex digits (a request id).
std::string NewApprovalId();

class SessionHolds {
 public:
  // How an event reaches the session: called on the store's thread; posts.
  using Post = std::function<void(uint64_t hold, const ApprovalEvent& event)>;

  SessionHolds(ApprovalStore* store, const ApprovalsConfig* config, Post post)
      : store_(store), config_(config), post_(std::move(post)) {}

  // Whether statements can be held (an [approvals] store is running).
  bool enabled() const { return store_ != nullptr && config_ != nullptr && config_->enabled; }
  const ApprovalsConfig& config() const { return *config_; }
  // A reload: the settings of later holds come from `config`.
  void UseConfig(const ApprovalsConfig* config) { config_ = config; }

  // Submits `request` for hold number `hold`; its events come through Post.
  void Submit(uint64_t hold, ApprovalRequest request);
  // The hold was resolved (decided, or the client cancelled it).
  void Resolved(uint64_t hold) { pending_.erase(hold); }
  // The client cancelled it, or the session is ending: withdrawn in the store.
  void Withdraw(uint64_t hold, std::string why);
  void WithdrawAll(const std::string& why);
  bool waiting() const { return !pending_.empty(); }

 private:
  ApprovalStore* store_;
  const ApprovalsConfig* config_;
  Post post_;
  std::map<uint64_t, std::string> pending_;  // hold number -> request id
};

}  // namespace pgb::approvals
