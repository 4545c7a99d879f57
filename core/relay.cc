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
             policy::AnalysisCache& cache, Limits limits, SessionAudit& audit, RelaySink& sink)
    : sink_(sink),
      limits_(limits),
      gate_(std::move(policy), scope, std::move(identity), std::move(target), std::move(role),
            cache, limits.max_statement_size, audit, pipeline_) {
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
    if (!rewritten.empty()) sink_.Send(to, std::move(rewritten));
    if (buffer_id >= 0) sink_.Recycle(buffer_id);
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

}  // namespace pgb
