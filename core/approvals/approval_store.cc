#include "core/approvals/approval_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <utility>

#include "absl/strings/str_split.h"
#include "base/json_text.h"
#include "base/log.h"
#include "base/str_cat.h"
#include "base/thread_name.h"

namespace pgb::approvals {
namespace {

int64_t NowMicros() { return absl::ToUnixMicros(absl::Now()); }

constexpr const char* kSchema = R"sql(
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
CREATE TABLE IF NOT EXISTS approval (
  id TEXT PRIMARY KEY,
  mode TEXT NOT NULL,
  status TEXT NOT NULL,
  subject TEXT NOT NULL,
  issuer TEXT NOT NULL,
  target TEXT NOT NULL,
  scope TEXT NOT NULL,
  rule TEXT NOT NULL,
  reason TEXT NOT NULL,
  statement TEXT NOT NULL,
  binding TEXT NOT NULL,
  approver_groups TEXT NOT NULL,
  approvers INTEGER NOT NULL,
  uses INTEGER NOT NULL,
  uses_left INTEGER NOT NULL,
  timeout_ms INTEGER NOT NULL,
  session_id INTEGER NOT NULL,
  created_us INTEGER NOT NULL,
  expires_us INTEGER NOT NULL,
  decided_us INTEGER NOT NULL DEFAULT 0,
  decided_by TEXT NOT NULL DEFAULT '',
  decision_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS approval_status ON approval (status, expires_us);
CREATE INDEX IF NOT EXISTS approval_binding ON approval (binding, status);
CREATE TABLE IF NOT EXISTS approval_vote (
  id TEXT NOT NULL REFERENCES approval (id),
  approver TEXT NOT NULL,
  approve INTEGER NOT NULL,
  reason TEXT NOT NULL,
  at_us INTEGER NOT NULL,
  PRIMARY KEY (id, approver)
);
)sql";

// One prepared statement, finalized on scope exit.
class Query {
 public:
  Query(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) stmt_ = nullptr;
  }
  ~Query() { sqlite3_finalize(stmt_); }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  Query& Text(std::string_view v) {
    sqlite3_bind_text(stmt_, ++bound_, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Query& Int(int64_t v) {
    sqlite3_bind_int64(stmt_, ++bound_, v);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return stmt_ == nullptr ? SQLITE_ERROR : sqlite3_step(stmt_); }
  absl::Status Done() {
    const int rc = Step();
    if (rc == SQLITE_DONE) return absl::OkStatus();
    return absl::UnavailableError(Cat("approval store: ", sqlite3_errmsg(db_)));
  }
  std::string TextAt(int i) const {
    const unsigned char* p = sqlite3_column_text(stmt_, i);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<size_t>(sqlite3_column_bytes(stmt_, i)))
             : std::string();
  }
  int64_t IntAt(int i) const { return sqlite3_column_int64(stmt_, i); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int bound_ = 0;
};

constexpr const char* kColumns =
    "id, mode, status, subject, issuer, target, scope, rule, reason, statement, binding, "
    "approver_groups, approvers, uses, uses_left, timeout_ms, session_id, created_us, expires_us, "
    "decided_us, decided_by, decision_reason";

ApprovalStatus StatusOf(std::string_view name) {
  if (name == "approved") return ApprovalStatus::kApproved;
  if (name == "denied") return ApprovalStatus::kDenied;
  if (name == "expired") return ApprovalStatus::kExpired;
  if (name == "withdrawn") return ApprovalStatus::kWithdrawn;
  return ApprovalStatus::kPending;
}

ApprovalRecord RecordOf(const Query& q) {
  ApprovalRecord r;
  r.request.id = q.TextAt(0);
  r.request.mode = q.TextAt(1) == "retry" ? ApprovalMode::kRetry : ApprovalMode::kHold;
  r.status = StatusOf(q.TextAt(2));
  r.request.subject = q.TextAt(3);
  r.request.issuer = q.TextAt(4);
  r.request.target = q.TextAt(5);
  r.request.scope = q.TextAt(6);
  r.request.rule = q.TextAt(7);
  r.request.reason = q.TextAt(8);
  r.request.statement = q.TextAt(9);
  r.request.binding = q.TextAt(10);
  const std::string groups = q.TextAt(11);
  if (!groups.empty()) r.request.approver_groups = absl::StrSplit(groups, ',');
  r.request.approvers = static_cast<uint32_t>(q.IntAt(12));
  r.request.uses = static_cast<uint32_t>(q.IntAt(13));
  r.uses_left = static_cast<uint32_t>(q.IntAt(14));
  r.request.timeout = absl::Milliseconds(q.IntAt(15));
  r.request.session_id = static_cast<uint64_t>(q.IntAt(16));
  r.created_us = q.IntAt(17);
  r.expires_us = q.IntAt(18);
  r.decided_us = q.IntAt(19);
  r.decided_by = q.TextAt(20);
  r.decision_reason = q.TextAt(21);
  return r;
}

}  // namespace

const char* ApprovalStatusName(ApprovalStatus status) {
  switch (status) {
    case ApprovalStatus::kPending:
      return "pending";
    case ApprovalStatus::kApproved:
      return "approved";
    case ApprovalStatus::kDenied:
      return "denied";
    case ApprovalStatus::kExpired:
      return "expired";
    case ApprovalStatus::kWithdrawn:
      return "withdrawn";
  }
  return "pending";
}

std::string ApprovalJson(const ApprovalRecord& r) {
  const ApprovalRequest& q = r.request;
  std::string out =
      Cat("{\"id\":", JsonString(q.id), ",\"status\":", JsonString(ApprovalStatusName(r.status)),
          ",\"mode\":", JsonString(q.mode == ApprovalMode::kRetry ? "retry" : "hold"),
          ",\"subject\":", JsonString(q.subject), ",\"issuer\":", JsonString(q.issuer),
          ",\"target\":", JsonString(q.target), ",\"scope\":", JsonString(q.scope),
          ",\"rule\":", JsonString(q.rule), ",\"reason\":", JsonString(q.reason),
          ",\"statement\":", JsonString(q.statement), ",\"binding\":", JsonString(q.binding),
          ",\"approvers_required\":", q.approvers, ",\"approver_groups\":[");
  for (size_t i = 0; i < q.approver_groups.size(); ++i) {
    if (i > 0) out += ',';
    AppendJsonString(q.approver_groups[i], &out);
  }
  out += Cat("],\"uses\":", q.uses, ",\"uses_left\":", r.uses_left,
             ",\"timeout_ms\":", absl::ToInt64Milliseconds(q.timeout),
             ",\"session_id\":", q.session_id, ",\"created_unix_us\":", r.created_us,
             ",\"expires_unix_us\":", r.expires_us, ",\"decided_unix_us\":", r.decided_us,
             ",\"decided_by\":", JsonString(r.decided_by),
             ",\"decision_reason\":", JsonString(r.decision_reason), ",\"votes\":[");
  for (size_t i = 0; i < r.votes.size(); ++i) {
    const ApprovalVote& v = r.votes[i];
    out += Cat(i > 0 ? "," : "", "{\"approver\":", JsonString(v.approver),
               ",\"approve\":", v.approve ? "true" : "false", ",\"reason\":", JsonString(v.reason),
               ",\"at_unix_us\":", v.at_us, "}");
  }
  out += "]}";
  return out;
}

int ApprovalHttpStatus(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kFailedPrecondition:
      return 409;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kInvalidArgument:
      return 400;
    default:
      return 503;
  }
}

absl::StatusOr<std::unique_ptr<ApprovalStore>> ApprovalStore::Open(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string why = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::UnavailableError(Cat("approval store ", path, ": ", why));
  }
  sqlite3_busy_timeout(db, 2000);
  char* error = nullptr;
  if (sqlite3_exec(db, kSchema, nullptr, nullptr, &error) != SQLITE_OK) {
    std::string why = error ? error : "unknown error";
    sqlite3_free(error);
    sqlite3_close(db);
    return absl::UnavailableError(Cat("approval store ", path, ": ", why));
  }
  // Requests still pending belong to a process that ended: their sessions
  // are gone, so nothing may run on them later.
  {
    Query q(db,
            "UPDATE approval SET status = 'withdrawn', decided_us = ?, decided_by = 'gateway', "
            "decision_reason = 'the gateway restarted while it was pending' "
            "WHERE status = 'pending'");
    q.Int(NowMicros());
    if (absl::Status s = q.Done(); !s.ok()) {
      sqlite3_close(db);
      return s;
    }
    const int withdrawn = sqlite3_changes(db);
    if (withdrawn > 0) {
      PGB_LOG(kInfo) << "approval store: " << withdrawn
                     << " request(s) pending at the last stop were withdrawn";
    }
  }
  return std::unique_ptr<ApprovalStore>(new ApprovalStore(db));
}

ApprovalStore::ApprovalStore(sqlite3* db) : db_(db) {
  thread_ = std::thread([this] {
    NameThisThread("pgb-approvals");
    Run();
  });
}

ApprovalStore::~ApprovalStore() { Stop(); }

void ApprovalStore::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  sqlite3_close(db_);
  db_ = nullptr;
}

void ApprovalStore::Post(std::function<void()> job) {
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

absl::Status ApprovalStore::Call(std::function<void()> job) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> finished = done->get_future();
  {
    std::lock_guard lock(mu_);
    if (stopping_) return absl::UnavailableError("the approval store is stopping");
    jobs_.push_back([job = std::move(job), done] {
      job();
      done->set_value();
    });
  }
  cv_.notify_one();
  if (finished.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    return absl::UnavailableError("the approval store did not answer within 5 s");
  }
  return absl::OkStatus();
}

void ApprovalStore::Run() {
  std::unique_lock lock(mu_);
  while (true) {
    if (stopping_) break;
    if (jobs_.empty()) {
      if (next_expiry_us_ > 0) {
        const int64_t wait = std::max<int64_t>(0, next_expiry_us_ - NowMicros());
        cv_.wait_for(lock, std::chrono::microseconds(wait) + std::chrono::milliseconds(1));
      } else {
        cv_.wait(lock);
      }
    }
    std::deque<std::function<void()>> jobs;
    jobs.swap(jobs_);
    lock.unlock();
    for (auto& job : jobs) job();
    const int64_t now = NowMicros();
    if (next_expiry_us_ > 0 && now >= next_expiry_us_) DoExpire(now);
    lock.lock();
  }
  lock.unlock();
  // The sessions still waiting are told nothing will run (their shards
  // drop the message once they stop).
  for (auto& [id, notify] : waiting_) {
    Query q(db_,
            "UPDATE approval SET status = 'withdrawn', decided_us = ?, decided_by = 'gateway', "
            "decision_reason = 'the gateway stopped' WHERE id = ? AND status = 'pending'");
    q.Int(NowMicros()).Text(id);
    (void)q.Done();
    notify(ApprovalEvent{ApprovalEvent::Kind::kFailed, id, "", "the gateway is stopping"});
  }
  waiting_.clear();
}

void ApprovalStore::Submit(ApprovalRequest request, ApprovalNotify notify) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      notify(ApprovalEvent{ApprovalEvent::Kind::kFailed, request.id, "",
                           "the approval store is stopping"});
      return;
    }
  }
  Post([this, request = std::move(request), notify = std::move(notify)]() mutable {
    DoSubmit(std::move(request), std::move(notify));
  });
}

void ApprovalStore::Withdraw(std::string id, std::string why) {
  Post([this, id = std::move(id), why = std::move(why)] {
    waiting_.erase(id);
    (void)Finish(id, ApprovalStatus::kWithdrawn, "client", why, 0, 0);
  });
}

void ApprovalStore::DoSubmit(ApprovalRequest request, ApprovalNotify notify) {
  const int64_t now = NowMicros();
  if (request.mode == ApprovalMode::kRetry) {
    // An approval of the same binding that is still usable: one use of it.
    Query find(db_,
               "SELECT id, decided_by FROM approval WHERE binding = ? AND status = 'approved' "
               "AND uses_left > 0 AND expires_us > ? ORDER BY created_us LIMIT 1");
    find.Text(request.binding).Int(now);
    if (find.Step() == SQLITE_ROW) {
      const std::string id = find.TextAt(0);
      const std::string by = find.TextAt(1);
      Query use(db_, "UPDATE approval SET uses_left = uses_left - 1 WHERE id = ?");
      use.Text(id);
      if (absl::Status s = use.Done(); !s.ok()) {
        notify(
            ApprovalEvent{ApprovalEvent::Kind::kFailed, request.id, "", std::string(s.message())});
        return;
      }
      notify(ApprovalEvent{ApprovalEvent::Kind::kApproved, id, by, "an earlier approval"});
      return;
    }
    // One pending request per binding: sending it again before a decision
    // names the same request.
    Query pending(db_, "SELECT id FROM approval WHERE binding = ? AND status = 'pending' LIMIT 1");
    pending.Text(request.binding);
    if (pending.Step() == SQLITE_ROW) {
      notify(ApprovalEvent{ApprovalEvent::Kind::kRetryLater, pending.TextAt(0), "", ""});
      return;
    }
  }
  const int64_t expires = now + absl::ToInt64Microseconds(request.timeout);
  Query insert(db_,
               "INSERT INTO approval (id, mode, status, subject, issuer, target, scope, rule, "
               "reason, statement, binding, approver_groups, approvers, uses, uses_left, "
               "timeout_ms, session_id, created_us, expires_us) "
               "VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  insert.Text(request.id)
      .Text(request.mode == ApprovalMode::kRetry ? "retry" : "hold")
      .Text(request.subject)
      .Text(request.issuer)
      .Text(request.target)
      .Text(request.scope)
      .Text(request.rule)
      .Text(request.reason)
      .Text(request.statement)
      .Text(request.binding)
      .Text(Join(request.approver_groups, ","))
      .Int(request.approvers)
      .Int(request.uses)
      .Int(request.uses)
      .Int(absl::ToInt64Milliseconds(request.timeout))
      .Int(static_cast<int64_t>(request.session_id))
      .Int(now)
      .Int(expires);
  if (absl::Status s = insert.Done(); !s.ok()) {
    PGB_LOG(kWarning) << s.message();
    notify(ApprovalEvent{ApprovalEvent::Kind::kFailed, request.id, "", std::string(s.message())});
    return;
  }
  if (next_expiry_us_ == 0 || expires < next_expiry_us_) next_expiry_us_ = expires;
  if (request.mode == ApprovalMode::kRetry) {
    notify(ApprovalEvent{ApprovalEvent::Kind::kRetryLater, request.id, "", ""});
    return;
  }
  notify(ApprovalEvent{ApprovalEvent::Kind::kCreated, request.id, "", ""});
  waiting_.emplace(request.id, std::move(notify));
}

void ApprovalStore::DoExpire(int64_t now_us) {
  std::vector<std::string> expired;
  {
    Query q(db_, "SELECT id FROM approval WHERE status = 'pending' AND expires_us <= ?");
    q.Int(now_us);
    while (q.Step() == SQLITE_ROW) expired.push_back(q.TextAt(0));
  }
  for (const std::string& id : expired) {
    if (!Finish(id, ApprovalStatus::kExpired, "", "nobody decided in time", 0, 0).ok()) continue;
    Tell(id, ApprovalEvent{ApprovalEvent::Kind::kExpired, id, "", "nobody decided in time"});
  }
  Query next(db_, "SELECT min(expires_us) FROM approval WHERE status = 'pending'");
  next_expiry_us_ = next.Step() == SQLITE_ROW ? next.IntAt(0) : 0;
}

void ApprovalStore::Tell(const std::string& id, ApprovalEvent event) {
  auto it = waiting_.find(id);
  if (it == waiting_.end()) return;
  ApprovalNotify notify = std::move(it->second);
  waiting_.erase(it);
  notify(event);
}

absl::Status ApprovalStore::Finish(const std::string& id, ApprovalStatus status,
                                   const std::string& by, const std::string& reason,
                                   int64_t expires_us, uint32_t uses_left) {
  Query q(db_,
          "UPDATE approval SET status = ?, decided_us = ?, decided_by = ?, decision_reason = ?, "
          "expires_us = CASE WHEN ? > 0 THEN ? ELSE expires_us END, uses_left = ? "
          "WHERE id = ? AND status = 'pending'");
  q.Text(ApprovalStatusName(status))
      .Int(NowMicros())
      .Text(by)
      .Text(reason)
      .Int(expires_us)
      .Int(expires_us)
      .Int(uses_left)
      .Text(id);
  return q.Done();
}

absl::StatusOr<ApprovalRecord> ApprovalStore::Load(const std::string& id) {
  Query q(db_, Cat("SELECT ", kColumns, " FROM approval WHERE id = ?").c_str());
  q.Text(id);
  const int rc = q.Step();
  if (rc == SQLITE_DONE) return absl::NotFoundError(Cat("no approval request ", id));
  if (rc != SQLITE_ROW) {
    return absl::UnavailableError(Cat("approval store: ", sqlite3_errmsg(db_)));
  }
  ApprovalRecord record = RecordOf(q);
  Query votes(db_,
              "SELECT approver, approve, reason, at_us FROM approval_vote WHERE id = ? "
              "ORDER BY at_us");
  votes.Text(id);
  while (votes.Step() == SQLITE_ROW) {
    record.votes.push_back(
        ApprovalVote{votes.TextAt(0), votes.IntAt(1) != 0, votes.TextAt(2), votes.IntAt(3)});
  }
  return record;
}

absl::StatusOr<ApprovalRecord> ApprovalStore::DoDecide(const std::string& id,
                                                       const Approver& approver, bool approve,
                                                       const std::string& reason) {
  absl::StatusOr<ApprovalRecord> loaded = Load(id);
  if (!loaded.ok()) return loaded.status();
  ApprovalRecord& r = *loaded;
  if (r.status != ApprovalStatus::kPending) {
    return absl::FailedPreconditionError(
        Cat("approval request ", id, " is ", ApprovalStatusName(r.status), " already"));
  }
  if (approver.name.empty()) return absl::PermissionDeniedError("the approver has no name");
  if (approver.name == r.request.subject) {
    return absl::PermissionDeniedError(
        Cat("nobody approves their own request: ", approver.name, " asked for ", id));
  }
  if (!approver.any_group && !r.request.approver_groups.empty()) {
    const bool member =
        std::any_of(approver.groups.begin(), approver.groups.end(), [&](const std::string& g) {
          return std::find(r.request.approver_groups.begin(), r.request.approver_groups.end(), g) !=
                 r.request.approver_groups.end();
        });
    if (!member) {
      return absl::PermissionDeniedError(Cat(approver.name,
                                             " is not in an approver group of this request (",
                                             Join(r.request.approver_groups, ", "), ")"));
    }
  }
  for (const ApprovalVote& v : r.votes) {
    if (v.approver == approver.name) {
      return absl::PermissionDeniedError(
          Cat(approver.name, " has decided on ", id, " already; another approver must"));
    }
  }
  const int64_t now = NowMicros();
  Query vote(db_,
             "INSERT INTO approval_vote (id, approver, approve, reason, at_us) VALUES (?, ?, ?, ?, "
             "?)");
  vote.Text(id).Text(approver.name).Int(approve ? 1 : 0).Text(reason).Int(now);
  if (absl::Status s = vote.Done(); !s.ok()) return s;
  r.votes.push_back(ApprovalVote{approver.name, approve, reason, now});
  if (!approve) {
    if (absl::Status s = Finish(id, ApprovalStatus::kDenied, approver.name, reason, 0, 0);
        !s.ok()) {
      return s;
    }
    Tell(id, ApprovalEvent{ApprovalEvent::Kind::kDenied, id, approver.name, reason});
    return Load(id);
  }
  const auto approvals = std::count_if(r.votes.begin(), r.votes.end(),
                                       [](const ApprovalVote& v) { return v.approve; });
  if (static_cast<uint32_t>(approvals) < r.request.approvers) return Load(id);
  std::vector<std::string> names;
  for (const ApprovalVote& v : r.votes) names.push_back(v.approver);
  const std::string by = Join(names, ", ");
  // Retry mode: the approval lives for the rule's timeout from now, for
  // `uses` runs.
  const int64_t lifetime = r.request.mode == ApprovalMode::kRetry
                               ? now + absl::ToInt64Microseconds(r.request.timeout)
                               : 0;
  if (absl::Status s = Finish(id, ApprovalStatus::kApproved, by, reason, lifetime,
                              r.request.mode == ApprovalMode::kRetry ? r.request.uses : 0);
      !s.ok()) {
    return s;
  }
  Tell(id, ApprovalEvent{ApprovalEvent::Kind::kApproved, id, by, reason});
  return Load(id);
}

absl::StatusOr<ApprovalRecord> ApprovalStore::Decide(const std::string& id,
                                                     const Approver& approver, bool approve,
                                                     const std::string& reason) {
  absl::StatusOr<ApprovalRecord> result = absl::UnavailableError("not run");
  if (absl::Status s = Call([&] { result = DoDecide(id, approver, approve, reason); }); !s.ok()) {
    return s;
  }
  return result;
}

absl::StatusOr<ApprovalRecord> ApprovalStore::Show(const std::string& id) {
  absl::StatusOr<ApprovalRecord> result = absl::UnavailableError("not run");
  if (absl::Status s = Call([&] { result = Load(id); }); !s.ok()) return s;
  return result;
}

absl::StatusOr<std::vector<ApprovalRecord>> ApprovalStore::List(const std::string& status,
                                                                size_t limit, size_t offset) {
  absl::StatusOr<std::vector<ApprovalRecord>> result = absl::UnavailableError("not run");
  absl::Status s = Call([&] {
    std::vector<ApprovalRecord> out;
    Query q(db_, Cat("SELECT ", kColumns,
                     " FROM approval WHERE (? = '' OR status = ?) ORDER BY created_us DESC "
                     "LIMIT ? OFFSET ?")
                     .c_str());
    q.Text(status).Text(status).Int(static_cast<int64_t>(std::min<size_t>(limit, 1000)));
    q.Int(static_cast<int64_t>(offset));
    int rc;
    while ((rc = q.Step()) == SQLITE_ROW) out.push_back(RecordOf(q));
    if (rc != SQLITE_DONE) {
      result = absl::UnavailableError(Cat("approval store: ", sqlite3_errmsg(db_)));
      return;
    }
    result = std::move(out);
  });
  if (!s.ok()) return s;
  return result;
}

}  // namespace pgb::approvals
