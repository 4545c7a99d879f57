// ApprovalStore (core/approvals/approval_store.h) on a real SQLite file:
// decisions by distinct approvers, self-approval and group refusals, a
// second decision, expiry, withdrawal, retry mode's uses, and a reopen.
#include "core/approvals/approval_store.h"

#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "core/approvals/session_holds.h"
#include "gtest/gtest.h"

namespace pgb::approvals {
namespace {

class Events {
 public:
  ApprovalNotify Notify() {
    return [this](const ApprovalEvent& e) {
      std::lock_guard lock(mu_);
      events_.push_back(e);
      cv_.notify_all();
    };
  }
  // The n-th event (0-based), waiting up to 10 s.
  ApprovalEvent Wait(size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(10), [&] { return events_.size() > n; });
    if (events_.size() <= n) return ApprovalEvent{ApprovalEvent::Kind::kFailed, "", "", "timeout"};
    return events_[n];
  }
  size_t size() {
    std::lock_guard lock(mu_);
    return events_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ApprovalEvent> events_;
};

class ApprovalStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/pgb-approvals-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/approvals.db";
  }
  void TearDown() override {
    store_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }
  ApprovalStore& Open() {
    auto opened = ApprovalStore::Open(path_);
    EXPECT_TRUE(opened.ok()) << opened.status();
    store_ = *std::move(opened);
    return *store_;
  }
  static ApprovalRequest Request(std::string subject = "agent") {
    ApprovalRequest r;
    r.id = NewApprovalId();
    r.subject = std::move(subject);
    r.target = "app";
    r.scope = "agents";
    r.rule = "profile.read-write.destructive";
    r.statement = "DELETE FROM items";
    r.binding = ApprovalBinding(r.statement, r.subject, "", r.target, r.scope);
    return r;
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<ApprovalStore> store_;
};

TEST_F(ApprovalStoreTest, TwoDistinctApproversAndNoSelfApproval) {
  ApprovalStore& store = Open();
  Events events;
  ApprovalRequest r = Request();
  r.approvers = 2;
  const std::string id = r.id;
  store.Submit(r, events.Notify());
  EXPECT_EQ(events.Wait(0).kind, ApprovalEvent::Kind::kCreated);
  EXPECT_EQ(store.Decide(id, Approver{"agent", {}, true}, true, "").status().code(),
            absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(store.Decide(id, Approver{"alice", {}, true}, true, "ok").ok());
  EXPECT_EQ(events.size(), 1u);  // one approval of two
  EXPECT_EQ(store.Decide(id, Approver{"alice", {}, true}, true, "").status().code(),
            absl::StatusCode::kPermissionDenied);
  absl::StatusOr<ApprovalRecord> done = store.Decide(id, Approver{"carol", {}, true}, true, "");
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->status, ApprovalStatus::kApproved);
  EXPECT_EQ(done->decided_by, "alice, carol");
  ApprovalEvent approved = events.Wait(1);
  EXPECT_EQ(approved.kind, ApprovalEvent::Kind::kApproved);
  EXPECT_EQ(store.Decide(id, Approver{"dora", {}, true}, false, "").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store.Decide(NewApprovalId(), Approver{"dora", {}, true}, true, "").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ApprovalStoreTest, ApproverGroups) {
  ApprovalStore& store = Open();
  Events events;
  ApprovalRequest r = Request();
  r.approver_groups = {"dba"};
  store.Submit(r, events.Notify());
  events.Wait(0);
  EXPECT_EQ(store.Decide(r.id, Approver{"eve", {"dev"}, false}, true, "").status().code(),
            absl::StatusCode::kPermissionDenied);
  absl::StatusOr<ApprovalRecord> denied =
      store.Decide(r.id, Approver{"dan", {"dba"}, false}, false, "not now");
  ASSERT_TRUE(denied.ok());
  ApprovalEvent e = events.Wait(1);
  EXPECT_EQ(e.kind, ApprovalEvent::Kind::kDenied);
  EXPECT_EQ(e.by, "dan");
  EXPECT_EQ(e.reason, "not now");
}

TEST_F(ApprovalStoreTest, ExpiresWithdrawsAndSurvivesReopen) {
  Events events;
  Events open_events;  // outlives the store: Stop tells the waiting sessions
  std::string expired_id;
  std::string pending_id;
  {
    ApprovalStore& store = Open();
    ApprovalRequest quick = Request();
    quick.timeout = absl::Milliseconds(300);
    expired_id = quick.id;
    store.Submit(quick, events.Notify());
    EXPECT_EQ(events.Wait(0).kind, ApprovalEvent::Kind::kCreated);
    EXPECT_EQ(events.Wait(1).kind, ApprovalEvent::Kind::kExpired);
    ApprovalRequest open = Request();
    pending_id = open.id;
    store.Submit(open, open_events.Notify());
    absl::StatusOr<ApprovalRecord> shown;
    for (int i = 0; i < 100; ++i) {
      shown = store.Show(pending_id);
      if (shown.ok()) break;
      usleep(10000);
    }
    ASSERT_TRUE(shown.ok());
    store.Stop();
    EXPECT_EQ(open_events.Wait(1).kind, ApprovalEvent::Kind::kFailed);  // stopping
  }
  ApprovalStore& again = Open();
  absl::StatusOr<ApprovalRecord> expired = again.Show(expired_id);
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(expired->status, ApprovalStatus::kExpired);
  absl::StatusOr<ApprovalRecord> withdrawn = again.Show(pending_id);
  ASSERT_TRUE(withdrawn.ok());
  EXPECT_EQ(withdrawn->status, ApprovalStatus::kWithdrawn);
  absl::StatusOr<std::vector<ApprovalRecord>> all = again.List("", 10, 0);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
}

TEST_F(ApprovalStoreTest, RetryModeUsesAnApprovalOnce) {
  ApprovalStore& store = Open();
  Events first;
  ApprovalRequest r = Request();
  r.mode = ApprovalMode::kRetry;
  store.Submit(r, first.Notify());
  ApprovalEvent later = first.Wait(0);
  ASSERT_EQ(later.kind, ApprovalEvent::Kind::kRetryLater);
  ASSERT_TRUE(store.Decide(later.id, Approver{"alice", {}, true}, true, "").ok());
  Events second;
  ApprovalRequest again = Request();
  again.mode = ApprovalMode::kRetry;
  store.Submit(again, second.Notify());
  EXPECT_EQ(second.Wait(0).kind, ApprovalEvent::Kind::kApproved);
  Events third;
  ApprovalRequest once_more = Request();
  once_more.mode = ApprovalMode::kRetry;
  store.Submit(once_more, third.Notify());
  EXPECT_EQ(third.Wait(0).kind, ApprovalEvent::Kind::kRetryLater);  // the one use is spent
  // Another identity's statement is bound differently.
  Events other;
  ApprovalRequest someone = Request("other");
  someone.mode = ApprovalMode::kRetry;
  EXPECT_NE(someone.binding, r.binding);
}

TEST(ApprovalBindingTest, EndsTrimmedButTextMatters) {
  EXPECT_EQ(ApprovalBinding("\n DELETE FROM items \n", "a", "", "app", "s"),
            ApprovalBinding("DELETE FROM items", "a", "", "app", "s"));
  // Inside, whitespace may be data (a string literal).
  EXPECT_NE(ApprovalBinding("SELECT 'a  b'", "a", "", "app", "s"),
            ApprovalBinding("SELECT 'a b'", "a", "", "app", "s"));
  EXPECT_NE(ApprovalBinding("DELETE FROM items", "a", "", "app", "s"),
            ApprovalBinding("DELETE FROM other", "a", "", "app", "s"));
  EXPECT_NE(ApprovalBinding("DELETE FROM items", "a", "", "app", "s"),
            ApprovalBinding("DELETE FROM items", "a", "", "app2", "s"));
}

}  // namespace
}  // namespace pgb::approvals
