#include "core/relay.h"

#include <utility>

#include "base/str_cat.h"
#include "proto/error_status.h"
#include "proto/protocol.h"

namespace pgb {

namespace sqlstate = proto::sqlstate;
using proto::Direction;

Relay::Relay(std::shared_ptr<const policy::Policy> policy, const policy::Scope& scope,
             policy::Identity identity, std::string target, std::string role,
             policy::AnalysisCache& cache, Limits limits, SessionAudit& audit, RelaySink& sink,
             approvals::SessionHolds* holds)
    : sink_(sink),
      limits_(limits),
      holds_(holds),
      gate_(std::move(policy), scope, std::move(identity), std::move(target), std::move(role),
            cache, limits.max_statement_size, audit, pipeline_, holds) {
  masking_.UsePolicy(gate_.policy(), gate_.scope());
}

void Relay::UsePolicy(std::shared_ptr<const policy::Policy> policy, policy::Identity identity) {
  gate_.UsePolicy(std::move(policy), std::move(identity));
  masking_.UsePolicy(gate_.policy(), gate_.scope());
}

const proto::FrameTracker::Gather& Relay::ClientGather() {
  if (!masking_.active()) return gate_.client_gather();
  client_gather_ = gate_.client_gather();
  ResultMasking::AddClientTypes(client_gather_);
  return client_gather_;
}

const proto::FrameTracker::Gather& Relay::BackendGather() {
  if (!masking_.active()) return gate_.backend_gather();
  backend_gather_ = gate_.backend_gather();
  ResultMasking::AddBackendTypes(backend_gather_, limits_.max_message_size);
  return backend_gather_;
}

absl::StatusOr<ResultMasking::Outcome> Relay::MaskBackendMessage(char type,
                                                                 std::string_view message) {
  switch (type) {
    case proto::kPqMsg_RowDescription:
    case proto::kPqMsg_NoData:
      return masking_.OnDescription(message);
    case proto::kPqMsg_DataRow:
      // The chunk and the tracker's assembly are the relay's own memory: a
      // row whose masked values keep their length is rewritten where it is.
      return masking_.OnDataRow(const_cast<char*>(message.data()), message.size());
    case proto::kPqMsg_ErrorResponse:
    case proto::kPqMsg_NoticeResponse:
      return masking_.OnErrorOrNotice(message);
    case proto::kPqMsg_ParameterStatus:
    case proto::kPqMsg_NotificationResponse:
      return masking_.OnParameterOrNotification(message);
    case proto::kPqMsg_CopyOutResponse:
    case proto::kPqMsg_CopyBothResponse:
      return absl::PermissionDeniedError("COPY out cannot be masked");
    default:  // FunctionCallResponse
      return absl::PermissionDeniedError("a function call's result cannot be masked");
  }
}

absl::Status Relay::Feed(Side from, const char* data, size_t n, int32_t buffer_id) {
  const Side to = from == Side::kClient ? Side::kBackend : Side::kClient;
  // Bytes of this chunk go on zero-copy while everything forwarded is the
  // chunk itself, one contiguous run from its start: pass-through pieces and
  // judged messages that go on unchanged from the buffer they arrived in.
  // Once something else goes on (a refusal's substitute, a rewritten error,
  // a message assembled across chunks), what goes on is built in `rewritten`
  // and the chunk's buffer is recycled at once.
  std::string rewritten;
  bool copying = false;
  size_t run = 0;  // bytes of the chunk forwarded so far, while not copying
  const auto start_copying = [&]() {
    if (copying) return;
    copying = true;
    rewritten.append(data, run);
  };
  const auto forward = [&](const char* p, size_t len) {
    if (!copying && p == data + run) {
      run += len;
      return;
    }
    start_copying();
    rewritten.append(p, len);
  };
  // Behind a held statement, the client's bytes are kept back (copied):
  // `routed` is how much of `rewritten` went where it belongs already.
  size_t routed = 0;
  std::string now_out;
  const auto route = [&]() {
    const std::string_view piece = std::string_view(rewritten).substr(routed);
    if (held_.empty()) {
      now_out.append(piece);
    } else {
      KeepBack(piece);
    }
    routed = rewritten.size();
  };
  if (from == Side::kClient && !held_.empty()) start_copying();
  // The first failure: nothing after the message that caused it goes on.
  absl::Status failure;
  proto::FrameTracker::Scan scan;
  if (from == Side::kClient) {
    scan = client_frames_.Feed(
        data, n, Direction::kFrontend, limits_.max_message_size, ClientGather(),
        [this](char type, uint32_t size) {
          ++client_messages_since_ready_;
          if (type == proto::kPqMsg_Terminate) client_terminated_ = true;
          if (type == proto::kPqMsg_CopyDone || type == proto::kPqMsg_CopyFail) {
            pipeline_.OnClientCopyEnd();
          }
          pipeline_.Push(type);
          gate_.OnClientMessage(size);
        },
        [&](const char* p, size_t len) {
          if (failure.ok()) forward(p, len);
        },
        [&](char type, std::string_view message, bool oversize) {
          if (!failure.ok()) return;
          if (type == proto::kPqMsg_Execute && oversize) {
            failure = proto::ErrorStatus(sqlstate::kProtocolViolation, "Execute message too long");
            return;
          }
          // The gate first: what it refuses is not masked.
          std::string replacement;
          if (!gate_.OnWholeClientMessage(type, message, oversize, replacement)) {
            start_copying();
            rewritten += replacement;
            return;
          }
          if (std::optional<approvals::HeldStatement> held = gate_.TakeHold()) {
            start_copying();
            route();  // what came before it goes on (or waits behind an earlier hold)
            HeldPiece& piece = held_.emplace_back();
            piece.state = HeldPiece::State::kWaiting;
            piece.bytes.assign(message);
            piece.held = *std::move(held);
            held_bytes_ += message.size();
            return;
          }
          if (type == proto::kPqMsg_Execute && masking_.masks_apply()) {
            start_copying();
            if (absl::Status s = masking_.OnExecute(message, pipeline_, rewritten); !s.ok()) {
              failure = proto::ErrorStatus(sqlstate::kProtocolViolation, std::string(s.message()));
            }
            return;
          }
          forward(message.data(), message.size());
        },
        [this](char type, std::string_view prefix) { gate_.OnClientPeek(type, prefix); });
    if (failure.ok() && pipeline_.overloaded()) {
      failure = proto::ErrorStatus(sqlstate::kProtocolViolation,
                                   "too many requests sent without reading their results");
    }
  } else {
    scan = backend_frames_.Feed(
        data, n, Direction::kBackend, limits_.max_message_size, BackendGather(),
        [&](char type, uint32_t size) {
          last_backend_type_ = type;
          if (type == proto::kPqMsg_ReadyForQuery) client_messages_since_ready_ = 0;
          absl::Status placed =
              pipeline_.OnBackendMessage(type, [this](SessionPipeline::Request& r) {
                gate_.OnClosed(r);
                masking_.OnClosed(r);
              });
          if (!placed.ok() && failure.ok()) {
            failure = proto::ErrorStatus(
                sqlstate::kProtocolViolation,
                "the database answered out of order; the gateway ended the session",
                std::string(placed.message()));
          }
          masking_.OnBackendMessage(type, pipeline_.answering());
          if (masking_.active()) gate_.OnMaskedValues(masking_.TakeMaskedValues());
          gate_.OnBackendMessage(type, size);
        },
        [&](const char* p, size_t len) {
          if (failure.ok()) forward(p, len);
        },
        [&](char type, std::string_view message, bool oversize) {
          if (!failure.ok()) return;
          if (oversize) {  // an error longer than the gate reads: dropped
            start_copying();
            return;
          }
          if (!masking_.active()) {  // only the gate gathers: an ErrorResponse
            start_copying();
            gate_.OnBackendError(message, rewritten);
            return;
          }
          absl::StatusOr<ResultMasking::Outcome> outcome = MaskBackendMessage(type, message);
          if (!outcome.ok()) {
            failure = proto::ErrorStatus(
                sqlstate::kInsufficientPrivilege,
                Cat("the gateway cannot mask this result: ", outcome.status().message()), "",
                "The session has masked columns; see the security model in the docs.");
            return;
          }
          switch (*outcome) {
            case ResultMasking::Outcome::kForward:
              forward(message.data(), message.size());
              break;
            case ResultMasking::Outcome::kDrop:
              start_copying();
              break;
            case ResultMasking::Outcome::kRebuilt:
              start_copying();
              if (type == proto::kPqMsg_ErrorResponse) {
                gate_.OnBackendError(masking_.rebuilt(), rewritten);
              } else {
                rewritten += masking_.rebuilt();
              }
              break;
          }
        },
        [this](char type, std::string_view prefix) { gate_.OnBackendPeek(type, prefix); });
  }
  if (!copying && run == n) {
    sink_.Forward(to, data, n, buffer_id);
  } else {
    start_copying();  // the run before a message still being gathered
    if (routed == 0 && held_.empty()) {
      if (!rewritten.empty()) sink_.Send(to, std::move(rewritten));
    } else {
      route();
      if (!now_out.empty()) sink_.Send(to, std::move(now_out));
    }
    if (buffer_id >= 0) sink_.Recycle(buffer_id);
  }
  if (from == Side::kBackend && !client_notices_.empty() && AtBoundary(Side::kBackend)) {
    sink_.Send(Side::kClient, std::exchange(client_notices_, std::string()));
  }
  if (failure.ok() && held_bytes_ > kMaxHeldBytes) {
    failure = proto::ErrorStatus(
        sqlstate::kProgramLimitExceeded,
        Cat("more than ", kMaxHeldBytes >> 20,
            " MiB sent behind a statement held for approval; the gateway ended the session"));
  }
  if (!failure.ok()) return failure;
  if (!scan.error.empty()) {
    // The well-formed messages before the bad one went on; the bad header is
    // at a message boundary, so a FATAL can follow it cleanly.
    if (from == Side::kClient) return proto::ErrorStatus(sqlstate::kProtocolViolation, scan.error);
    return proto::ErrorStatus(sqlstate::kProtocolViolation, "the database sent an invalid message",
                              scan.error);
  }
  return absl::OkStatus();
}

void Relay::EndSession(std::string_view reason) {
  for (HeldPiece& piece : held_) {
    if (piece.state == HeldPiece::State::kWaiting && !piece.held.id.empty()) {
      gate_.RecordHold(piece.held, audit::AuditDecision::kRejected,
                       Cat("withdrawn, the statement did not run: ", reason));
    }
  }
  gate_.OnSessionEnd(reason);
}

void Relay::KeepBack(std::string_view bytes) {
  if (bytes.empty()) return;
  if (held_.back().state != HeldPiece::State::kBytes) held_.emplace_back();
  held_.back().bytes.append(bytes);
  held_bytes_ += bytes.size();
}

Relay::HeldPiece* Relay::FindHeld(uint64_t hold) {
  for (HeldPiece& piece : held_) {
    if (piece.state != HeldPiece::State::kBytes && piece.held.hold == hold) return &piece;
  }
  return nullptr;
}

void Relay::NoticeToClient(std::string bytes) {
  client_notices_ += bytes;
  if (AtBoundary(Side::kBackend)) {
    sink_.Send(Side::kClient, std::exchange(client_notices_, std::string()));
  }
}

void Relay::Refuse(HeldPiece& piece, proto::ErrorFields refusal) {
  piece.state = HeldPiece::State::kRefused;
  piece.refusal = std::move(refusal);
}

void Relay::OnApprovalEvent(uint64_t hold, const approvals::ApprovalEvent& event) {
  HeldPiece* piece = FindHeld(hold);
  if (piece == nullptr || piece->state != HeldPiece::State::kWaiting) return;  // resolved already
  using Kind = approvals::ApprovalEvent::Kind;
  if (event.kind == Kind::kCreated) {
    piece->held.id = event.id;
    gate_.RecordHold(piece->held, audit::AuditDecision::kHold,
                     Cat("held for approval: request ", event.id));
    std::string notice;
    proto::AppendNoticeResponse(notice, approvals::HoldNotice(piece->held, holds_->config()));
    NoticeToClient(std::move(notice));
    return;
  }
  if (holds_ != nullptr) holds_->Resolved(hold);
  if (event.kind == Kind::kApproved) {
    piece->state = HeldPiece::State::kApproved;
    if (!event.id.empty()) piece->held.id = event.id;  // retry mode: the earlier request
    piece->decision = audit::AuditDecision::kApproved;
    piece->note = Cat("approved by ", event.by,
                      event.reason.empty() ? std::string() : Cat(": ", event.reason));
  } else {
    if (!event.id.empty()) piece->held.id = event.id;
    Refuse(*piece, approvals::HoldRefusal(piece->held, event));
    if (event.kind == Kind::kExpired) piece->decision = audit::AuditDecision::kApprovalTimedOut;
  }
  ReleaseHeld();
}

bool Relay::CancelHeld() {
  for (HeldPiece& piece : held_) {
    if (piece.state != HeldPiece::State::kWaiting) continue;
    if (holds_ != nullptr) holds_->Withdraw(piece.held.hold, "cancelled by the client");
    Refuse(piece, proto::ErrorFields{
                      "ERROR", sqlstate::kQueryCanceled, "canceling statement due to user request",
                      piece.held.id.empty() ? std::string()
                                            : Cat("Approval request ", piece.held.id,
                                                  " was withdrawn; the statement did not run."),
                      ""});
    ReleaseHeld();
    return true;
  }
  return false;
}

void Relay::ReleaseHeld() {
  std::string out;
  while (!held_.empty()) {
    HeldPiece& front = held_.front();
    if (front.state == HeldPiece::State::kWaiting) break;
    if (front.state == HeldPiece::State::kRefused) {
      gate_.ResolveHold(front.held, &front.refusal, front.decision, {}, out);
    } else if (front.state == HeldPiece::State::kApproved) {
      gate_.ResolveHold(front.held, nullptr, front.decision, front.note, out);
      out += front.bytes;
    } else {
      out += front.bytes;
    }
    held_bytes_ -= front.bytes.size();
    held_.pop_front();
  }
  if (!out.empty()) sink_.Send(Side::kBackend, std::move(out));
}

}  // namespace pgb
