// Holds in the relay (core/relay.h, core/approvals/session_holds.h): a
// statement that needs approval, and every client byte behind it, stays in
// the relay until the store decides; then it goes on in order, or its
// refusal's substitute goes in its place. A real ApprovalStore on a
// temporary SQLite file; events are handed to the relay on the test's thread,
// as the shard does. Input is split at every byte offset.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/approvals/approval_store.h"
#include "core/approvals/session_holds.h"
#include "core/relay.h"
#include "gtest/gtest.h"
#include "proto/messages.h"
#include "proto/protocol.h"

namespace pgb {
namespace {

class FakeSink : public RelaySink {
 public:
  void Forward(Side to, const char* data, size_t n, int32_t) override { Out(to).append(data, n); }
  void Send(Side to, std::string bytes) override { Out(to) += bytes; }
  void Recycle(int32_t) override {}
  std::string& Out(Side to) { return to == Side::kClient ? to_client : to_database; }
  std::string to_client;
  std::string to_database;
};

std::string Query(std::string_view sql) {
  std::string s;
  proto::AppendQuery(s, sql);
  return s;
}

// The store's events for one session, as its shard would queue them.
class Mailbox {
 public:
  void Put(uint64_t hold, const approvals::ApprovalEvent& e) {
    std::lock_guard lock(mu_);
    events_.emplace_back(hold, e);
    cv_.notify_all();
  }
  std::pair<uint64_t, approvals::ApprovalEvent> Take() {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(10), [&] { return !events_.empty(); });
    if (events_.empty()) return {0, approvals::ApprovalEvent{}};
    auto e = events_.front();
    events_.pop_front();
    return e;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<uint64_t, approvals::ApprovalEvent>> events_;
};

class RelayHoldTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char dir[] = "/tmp/pgb-relay-hold-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = new std::string(dir);
    auto opened = approvals::ApprovalStore::Open(*dir_ + "/approvals.db");
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = opened->release();
  }
  static void TearDownTestSuite() {
    delete store_;
    std::system(("rm -rf " + *dir_).c_str());
    delete dir_;
  }

  // A read-write scope: DELETE without WHERE needs approval.
  void Start() {
    config_.enabled = true;
    config_.store = *dir_ + "/approvals.db";
    policy::Scope scope;
    scope.name = "agents";
    scope.subjects = {"*"};
    scope.profile = policy::Profile::kReadWrite;
    std::vector<policy::Scope> scopes;
    scopes.push_back(std::move(scope));
    auto policy = std::make_shared<const policy::Policy>(std::move(scopes));
    identity_.subject = "agent-7";
    const policy::Scope* matched = policy->MatchScope(identity_, "app");
    ASSERT_NE(matched, nullptr);
    holds_ = std::make_unique<approvals::SessionHolds>(
        store_, &config_,
        [this](uint64_t hold, const approvals::ApprovalEvent& e) { mailbox_.Put(hold, e); });
    relay_ = std::make_unique<Relay>(policy, *matched, identity_, "app", "app_owner", cache_,
                                     Relay::Limits{1 << 20, 1 << 20}, audit_, sink_, holds_.get());
  }
  // Hands the next event to the relay; returns it.
  approvals::ApprovalEvent Deliver() {
    auto [hold, event] = mailbox_.Take();
    relay_->OnApprovalEvent(hold, event);
    return event;
  }
  void Feed(const std::string& bytes, size_t split) {
    ASSERT_TRUE(relay_->Feed(Side::kClient, bytes.data(), split, -1).ok());
    ASSERT_TRUE(relay_->Feed(Side::kClient, bytes.data() + split, bytes.size() - split, -1).ok());
  }

  static std::string* dir_;
  static approvals::ApprovalStore* store_;
  approvals::ApprovalsConfig config_;
  policy::Identity identity_;
  policy::AnalysisCache cache_{1 << 20};
  SessionAudit audit_{nullptr, sockaddr_storage{}};
  FakeSink sink_;
  Mailbox mailbox_;
  std::unique_ptr<approvals::SessionHolds> holds_;
  std::unique_ptr<Relay> relay_;
};

std::string* RelayHoldTest::dir_ = nullptr;
approvals::ApprovalStore* RelayHoldTest::store_ = nullptr;

TEST_F(RelayHoldTest, WhatFollowsAHeldStatementWaitsAndGoesOnInOrderOnceApproved) {
  const std::string input = Query("SELECT 1") + Query("DELETE FROM t") + Query("SELECT 3");
  for (size_t split = 0; split <= input.size(); ++split) {
    SCOPED_TRACE(split);
    sink_ = FakeSink();
    Start();
    Feed(input, split);
    EXPECT_EQ(sink_.to_database, Query("SELECT 1"));
    EXPECT_TRUE(relay_->holding());
    const approvals::ApprovalEvent created = Deliver();
    ASSERT_EQ(created.kind, approvals::ApprovalEvent::Kind::kCreated);
    // The client is told, in a notice naming the request.
    EXPECT_EQ(sink_.to_client[0], proto::kPqMsg_NoticeResponse);
    EXPECT_NE(sink_.to_client.find(created.id), std::string::npos);
    EXPECT_EQ(sink_.to_database, Query("SELECT 1"));
    ASSERT_TRUE(store_->Decide(created.id, approvals::Approver{"alice", {}, true}, true, "").ok());
    EXPECT_EQ(Deliver().kind, approvals::ApprovalEvent::Kind::kApproved);
    EXPECT_FALSE(relay_->holding());
    EXPECT_EQ(sink_.to_database, input);
  }
}

TEST_F(RelayHoldTest, ADeniedStatementIsReplacedByItsRefusal) {
  Start();
  Feed(Query("DELETE FROM t") + Query("SELECT 3"), 3);
  EXPECT_EQ(sink_.to_database, "");
  const approvals::ApprovalEvent created = Deliver();
  ASSERT_TRUE(store_->Decide(created.id, approvals::Approver{"dora", {}, true}, false, "no").ok());
  EXPECT_EQ(Deliver().kind, approvals::ApprovalEvent::Kind::kDenied);
  // The substitute, then what waited behind it.
  const std::string sent = sink_.to_database;
  ASSERT_EQ(sent[0], proto::kPqMsg_Query);
  EXPECT_NE(sent.find("pgbastion_refused_"), std::string::npos);
  EXPECT_EQ(sent.substr(sent.size() - Query("SELECT 3").size()), Query("SELECT 3"));
  EXPECT_EQ(sent.find("DELETE"), std::string::npos);
}

TEST_F(RelayHoldTest, ACancelWithdrawsTheHeldStatement) {
  Start();
  Feed(Query("DELETE FROM t"), 0);
  const approvals::ApprovalEvent created = Deliver();
  EXPECT_TRUE(relay_->CancelHeld());
  EXPECT_FALSE(relay_->holding());
  EXPECT_NE(sink_.to_database.find("pgbastion_refused_"), std::string::npos);
  EXPECT_FALSE(relay_->CancelHeld());  // nothing held any more: the cancel goes to the database
  for (int i = 0; i < 100; ++i) {
    absl::StatusOr<approvals::ApprovalRecord> r = store_->Show(created.id);
    ASSERT_TRUE(r.ok());
    if (r->status == approvals::ApprovalStatus::kWithdrawn) return;
    usleep(10000);
  }
  FAIL() << "the request was not withdrawn";
}

}  // namespace
}  // namespace pgb
