// Relay is a session's steady state, once both logins are done: it frames
// each direction (FrameTracker, fail closed on the first bad header), keeps
// the request pipeline (which answer closes which request), and passes each
// message through the stages in a fixed order:
//
//   client -> relay -> statement gate -> result masking -> database
//   client <- relay <- statement gate <- result masking <- database
//
// Each stage declares which messages it needs whole and which it only peeks
// at; everything else goes on zero-copy, in the receive buffer it arrived in.
// The relay does no I/O: it takes received chunks and hands what goes on to
// a RelaySink (the session's endpoints; a fake one in tests).
//
//   Relay relay(policy, *scope, identity, "app", "app_owner", cache, limits, audit, sink);
//   absl::Status s = relay.Feed(Side::kClient, data, n, buffer_id);
//   if (!s.ok()) { end the session with proto::ErrorFieldsOf(s, "FATAL") }
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "core/approvals/session_holds.h"
#include "core/result_masking.h"
#include "core/session_audit.h"
#include "core/statement_gate.h"
#include "core/statement_ledger.h"
#include "policy/identity.h"
#include "policy/rules.h"
#include "policy/sql_analysis.h"
#include "proto/frame_tracker.h"

namespace pgb {

// The two sockets of a session.
enum class Side : uint8_t { kClient, kBackend };

// Where the relay's output goes.
class RelaySink {
 public:
  virtual ~RelaySink() = default;
  // Received bytes that go on unchanged; `buffer_id` >= 0 hands over the
  // receive buffer that holds them (recycled once sent).
  virtual void Forward(Side to, const char* data, size_t n, int32_t buffer_id) = 0;
  // Bytes the gateway built (a refusal's substitute, a rewritten row, ...).
  virtual void Send(Side to, std::string bytes) = 0;
  // A receive buffer whose bytes went on as copies, or not at all.
  virtual void Recycle(int32_t buffer_id) = 0;
};

class Relay {
 public:
  struct Limits {
    uint32_t max_message_size;    // any message, either direction
    uint32_t max_statement_size;  // a Query or Parse the gate must read whole
  };

  Relay(std::shared_ptr<const policy::Policy> policy, const policy::Scope& scope,
        policy::Identity identity, std::string target, std::string role,
        policy::AnalysisCache& cache, Limits limits, SessionAudit& audit, RelaySink& sink,
        approvals::SessionHolds* holds = nullptr);
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Relays a chunk received from `from` (buffer_id >= 0: the provided buffer
  // holding it, whose ownership passes to the relay). An error means the
  // session must end with a FATAL made from it (proto/error_status.h): the
  // well-formed messages before the failing one went on, nothing after it.
  [[nodiscard]] absl::Status Feed(Side from, const char* data, size_t n, int32_t buffer_id);

  // The client set search_path at startup: names resolve against it too.
  void RememberSearchPath(std::string_view value) { gate_.RememberSearchPath(value); }
  // The target's catalog for the gate's rules and the masks' column tags.
  void UseCatalog(const std::shared_ptr<CatalogReader>& catalogs, size_t target) {
    gate_.UseCatalog(catalogs, target);
    masking_.UseCatalog(catalogs, target);
  }
  // A reload: statements from now on are judged, and answers masked, by
  // `policy` (the scope matched again for `identity`).
  void UsePolicy(std::shared_ptr<const policy::Policy> policy, policy::Identity identity);

  // The session ends (`reason`): statements still awaiting their answer
  // are completed in the audit trail as unknown.
  // Statements still held are recorded as withdrawn.
  void EndSession(std::string_view reason);

  // Whether `side`'s stream is at a message boundary (a message may follow).
  bool AtBoundary(Side side) const {
    return (side == Side::kClient ? client_frames_ : backend_frames_).AtBoundary();
  }
  // Every client message answered (the database's last ReadyForQuery came
  // after the client's last message), both streams at a boundary.
  bool BetweenStatements() const {
    return client_messages_since_ready_ == 0 && AtBoundary(Side::kClient) &&
           AtBoundary(Side::kBackend);
  }
  // ... and no transaction open.
  bool Idle() const {
    return BetweenStatements() && backend_frames_.last_ready_status() == proto::kTxnIdle;
  }
  bool client_terminated() const { return client_terminated_; }
  // The database's stream ended on a whole ErrorResponse (its FATAL: 57P01
  // after pg_terminate_backend, an idle timeout) or a ReadyForQuery: it said
  // what it had to say, and a closed connection needs no word of the
  // gateway's (PostgreSQL's own client would see only the end of the stream).
  bool BackendSaidGoodbye() const {
    return AtBoundary(Side::kBackend) && (last_backend_type_ == proto::kPqMsg_ErrorResponse ||
                                          last_backend_type_ == proto::kPqMsg_ReadyForQuery);
  }
  // Approvals (core/approvals/session_holds.h). A statement the gate held
  // stays here, and every client byte behind it, in order, until its
  // request is decided: approved, it goes on; refused (denied, timed out,
  // cancelled, the store failed), its refusal's substitute goes instead.
  // `event` is the store's answer for hold number `hold`.
  void OnApprovalEvent(uint64_t hold, const approvals::ApprovalEvent& event);
  // A CancelRequest for this session: true if it withdrew the oldest held
  // statement (57014, as PostgreSQL answers a cancelled statement); false:
  // nothing is held, the cancel goes to the database.
  bool CancelHeld();
  bool holding() const { return !held_.empty(); }

  const StatementGate& gate() const { return gate_; }
  StatementGate& gate() { return gate_; }

 private:
  // The stages' gather sets, together.
  const proto::FrameTracker::Gather& ClientGather();
  const proto::FrameTracker::Gather& BackendGather();
  // A whole message the database sent while masking: what goes on.
  absl::StatusOr<ResultMasking::Outcome> MaskBackendMessage(char type, std::string_view message);

  // A piece of the client's stream kept back: bytes, or a held statement.
  struct HeldPiece {
    enum class State : uint8_t { kBytes, kWaiting, kApproved, kRefused };
    State state = State::kBytes;
    std::string bytes;  // the bytes, or the held message
    approvals::HeldStatement held;
    proto::ErrorFields refusal;
    audit::AuditDecision decision = audit::AuditDecision::kRejected;  // once decided
    std::string note;                                                 // approved: by whom, why
  };
  // Keeps client bytes back behind a held statement (up to kMaxHeldBytes).
  static constexpr size_t kMaxHeldBytes = size_t{16} << 20;
  void KeepBack(std::string_view bytes);
  HeldPiece* FindHeld(uint64_t hold);
  void Refuse(HeldPiece& piece, proto::ErrorFields refusal);
  // Sends what the decided front of held_ lets go.
  void ReleaseHeld();
  // Bytes of the gateway's own for the client, sent at the database
  // stream's next message boundary.
  void NoticeToClient(std::string bytes);

  RelaySink& sink_;
  const Limits limits_;
  approvals::SessionHolds* holds_;
  std::deque<HeldPiece> held_;
  size_t held_bytes_ = 0;
  std::string client_notices_;
  SessionPipeline pipeline_;  // before the stages, which keep a reference
  StatementGate gate_;
  ResultMasking masking_;
  proto::FrameTracker client_frames_;
  proto::FrameTracker backend_frames_;
  proto::FrameTracker::Gather client_gather_;
  proto::FrameTracker::Gather backend_gather_;
  uint32_t client_messages_since_ready_ = 0;
  bool client_terminated_ = false;  // the client sent Terminate
  char last_backend_type_ = 0;      // the type of the database's latest message
};

}  // namespace pgb
