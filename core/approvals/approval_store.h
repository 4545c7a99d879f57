// ApprovalStore is the control store of approval requests and their
// decisions (issue 18): the embedded default, one SQLite file that needs no
// setup and survives restarts. It runs on a thread of its own and is never
// touched by a shard's ring: a shard submits a request and gets its outcome
// back through a callback the store's thread calls (the session's side posts
// it to its shard, core/approvals/session_holds.h); approvers' commands (the
// admin socket, the HTTP API) call the synchronous methods from the control
// plane's threads, which wait for the store's thread.
//
// Decisions follow the request's rule: `approvers` distinct people must
// approve (one deny ends it), nobody approves their own request, and when the
// rule names approver groups the approver must be in one of them. A request
// nobody decided by its deadline expires; one whose session went away is
// withdrawn; pending requests found at start belong to a process that ended,
// and are withdrawn then (nothing runs later by surprise).
//
//   PGB_ASSIGN_OR_RETURN(auto store, ApprovalStore::Open("/var/lib/pgbastion/approvals.db"));
//   store->Submit(request, [](const ApprovalEvent& e) { post e to the session's shard });
//   absl::StatusOr<ApprovalRecord> r = store->Decide(id, approver, /*approve=*/true, "ok");
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

struct sqlite3;

namespace pgb::approvals {

enum class ApprovalStatus : uint8_t { kPending, kApproved, kDenied, kExpired, kWithdrawn };
const char* ApprovalStatusName(ApprovalStatus status);  // "pending", "approved", ...

// How a statement that needs approval is treated (per rule, [approvals]).
enum class ApprovalMode : uint8_t {
  kHold,   // held on the wire until decided
  kRetry,  // refused at once with the request id; runs when sent again once approved
};

// What a session asks to have approved.
struct ApprovalRequest {
  std::string id;  // drawn by the session (32 hex digits)
  ApprovalMode mode = ApprovalMode::kHold;
  std::string subject;  // who asks: Identity::subject
  std::string issuer;
  std::string target;
  std::string scope;
  std::string rule;       // the policy rule that asked for approval
  std::string reason;     // the rule's reason
  std::string statement;  // the statement as sent (capped by the session)
  std::string binding;    // hex SHA-256 of what an approval binds to (approvals/binding.h)
  std::vector<std::string> approver_groups;   // empty: any approver
  uint32_t approvers = 1;                     // distinct approvals needed
  uint32_t uses = 1;                          // retry mode: runs an approval allows
  absl::Duration timeout = absl::Minutes(5);  // deciding; in retry mode also the approval's life
  uint64_t session_id = 0;
};

struct ApprovalVote {
  std::string approver;
  bool approve = false;
  std::string reason;
  int64_t at_us = 0;
};

struct ApprovalRecord {
  ApprovalRequest request;
  ApprovalStatus status = ApprovalStatus::kPending;
  int64_t created_us = 0;
  int64_t expires_us = 0;  // pending: decided by then; approved (retry): usable until then
  int64_t decided_us = 0;
  std::string decided_by;  // approvers, comma-separated; or why it ended
  std::string decision_reason;
  uint32_t uses_left = 0;
  std::vector<ApprovalVote> votes;
};

// What the store tells the session that submitted a request.
struct ApprovalEvent {
  enum class Kind : uint8_t {
    kCreated,   // stored: the client may be told how to approve
    kApproved,  // run it (retry mode: an earlier approval was used)
    kDenied,    // `by` and `reason` say who and why
    kExpired,
    kRetryLater,  // retry mode: no approval yet; the request was stored
    kFailed,      // the store could not take it: fail closed (`reason`)
  };
  Kind kind = Kind::kFailed;
  std::string id;
  std::string by;
  std::string reason;
};
using ApprovalNotify = std::function<void(const ApprovalEvent&)>;

// An approver's identity as the command or the API established it.
struct Approver {
  std::string name;
  std::vector<std::string> groups;
  bool any_group = false;  // the local operator (admin socket): group rules do not apply
};

// One record as JSON (the admin socket's and the HTTP API's answers).
std::string ApprovalJson(const ApprovalRecord& record);
// The HTTP status an error of the store's methods maps to (404, 409, 403, 503).
int ApprovalHttpStatus(const absl::Status& status);

class ApprovalStore {
 public:
  // Opens (creating) the SQLite file and starts the store's thread.
  static absl::StatusOr<std::unique_ptr<ApprovalStore>> Open(const std::string& path);
  ~ApprovalStore();
  ApprovalStore(const ApprovalStore&) = delete;
  ApprovalStore& operator=(const ApprovalStore&) = delete;
  void Stop();  // idempotent; pending requests are withdrawn

  // Thread-safe, never blocks on the database. `notify` is called on the
  // store's thread (it must not block): kCreated then one decision, or
  // kFailed; in retry mode kApproved or kRetryLater (or kFailed).
  void Submit(ApprovalRequest request, ApprovalNotify notify);
  // The session that held `id` is gone or cancelled: it ends as withdrawn.
  void Withdraw(std::string id, std::string why);

  // Synchronous (control-plane threads). Errors: NotFound (unknown id),
  // FailedPrecondition (decided already), PermissionDenied (own request,
  // not in an approver group, voted already), Unavailable (store down).
  absl::StatusOr<ApprovalRecord> Decide(const std::string& id, const Approver& approver,
                                        bool approve, const std::string& reason);
  absl::StatusOr<ApprovalRecord> Show(const std::string& id);
  // Newest first; `status` empty: all.
  absl::StatusOr<std::vector<ApprovalRecord>> List(const std::string& status, size_t limit,
                                                   size_t offset);

 private:
  explicit ApprovalStore(sqlite3* db);
  void Run();
  // Runs `job` on the store's thread and waits (Unavailable after 5 s).
  absl::Status Call(std::function<void()> job);
  void Post(std::function<void()> job);
  // On the store's thread.
  void DoSubmit(ApprovalRequest request, ApprovalNotify notify);
  absl::StatusOr<ApprovalRecord> DoDecide(const std::string& id, const Approver& approver,
                                          bool approve, const std::string& reason);
  void DoExpire(int64_t now_us);
  absl::StatusOr<ApprovalRecord> Load(const std::string& id);
  absl::Status Finish(const std::string& id, ApprovalStatus status, const std::string& by,
                      const std::string& reason, int64_t expires_us, uint32_t uses_left);
  void Tell(const std::string& id, ApprovalEvent event);

  sqlite3* db_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread thread_;
  // On the store's thread: the sessions waiting for a decision, by id, and
  // the nearest deadline of a pending request.
  std::map<std::string, ApprovalNotify> waiting_;
  int64_t next_expiry_us_ = 0;
};

}  // namespace pgb::approvals
