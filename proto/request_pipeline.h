// RequestPipeline is a session's one record of which requests the database
// has been sent and not yet answered, oldest first, and of which answer
// closes which of them. Every stage that needs to know whose answer a
// database message is (the statement gate's refusals, the audit ledger,
// result masking) reads it here; none keeps a queue of its own.
//
// PostgreSQL answers requests strictly in order
// (https://www.postgresql.org/docs/15/protocol-flow.html): ParseComplete,
// BindComplete and CloseComplete close a Parse, Bind and Close; a Describe
// is closed by RowDescription or NoData (after a ParameterDescription for a
// statement); an Execute, and each statement of a simple Query, by
// CommandComplete, EmptyQueryResponse, PortalSuspended or ErrorResponse; a
// ReadyForQuery closes the batch-ending request (Query, Sync, FunctionCall)
// and every request before it that was never answered, because an error
// earlier in the batch made the database skip it. Notices, ParameterStatus
// and notifications belong to no request. An answer that fits no
// outstanding request is an error: the session cannot know whose it is, so
// it must end (fail closed: masking and refusals depend on the pairing).
//
// The pipeline holds the requests in the order the database receives them:
// the relay pushes each client message's request as its header arrives; a
// stage that replaces or adds messages adjusts the last request (a Query's
// statements are inserted before its batch end once the gate has split it;
// masking inserts its own Describe before an Execute). A stage attaches what
// it must know about a request when its answer comes to the request's Note
// (a template parameter, so that this layer knows nothing of the stages).
//
// COPY FROM STDIN: while the database is in copy-in mode it ignores Sync and
// Flush (libpq sends a Sync right behind an extended-protocol COPY's
// Execute, and another after CopyDone). The pipeline drops those Syncs, so
// the ReadyForQuery that follows is paired with the right batch.
//
//   RequestPipeline<Note> pipeline;
//   client header:  pipeline.Push(type);          // nullptr for Flush, CopyData, ...
//   gate, a Query of 2 statements:  pipeline.InsertBeforeLast(RequestKind::kStatement, 'Q') x2
//   backend header: if (absl::Status s = pipeline.OnBackendMessage(type, on_closed); !s.ok()) end;
//                   pipeline.answering() is the request this message answers
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "base/str_cat.h"
#include "proto/protocol.h"

namespace pgb::proto {

// How the database answers a request.
enum class RequestKind : uint8_t {
  kStatement,  // one statement of a simple Query (rows, COPY, then its completion)
  kParse,
  kBind,
  kDescribe,
  kExecute,
  kClose,
  kBatchEnd,  // Query, Sync, FunctionCall: closed by ReadyForQuery
};

// Frontend messages that end a batch: the database answers each with one
// ReadyForQuery (Query and FunctionCall carry their own implicit Sync).
constexpr bool EndsBatch(char type) {
  return type == kPqMsg_Query || type == kPqMsg_Sync || type == kPqMsg_FunctionCall;
}

template <typename Note>
class RequestPipeline {
 public:
  struct Request {
    RequestKind kind = RequestKind::kBatchEnd;
    char type = 0;                  // the frontend message type that carries it
    bool from_gateway = false;      // the gateway's own request: its answer is not relayed
    bool answered = false;          // an answer message arrived (the request may still be open)
    uint32_t copy_ends_before = 0;  // CopyDone/CopyFail the client sent before it
    Note note{};
  };

  // Bounds what one session may have outstanding (a client pipelining
  // without reading, or a Query of very many statements).
  explicit RequestPipeline(size_t max_outstanding = size_t{1} << 17)
      : max_outstanding_(max_outstanding) {}

  // --- client -> database, in the order the database receives them ---------
  // The request a frontend message of `type` makes. Null for messages that
  // are not answered (Flush, CopyData, CopyDone, CopyFail, Terminate) and for
  // a Sync the database will ignore because it is in copy-in mode.
  Request* Push(char type);
  // A request that goes to the database right before the last one pushed (a
  // Query's statements, the gateway's Describe before an Execute).
  Request& InsertBeforeLast(RequestKind kind, char type, bool from_gateway = false);
  // The last request pushed (null when none is outstanding).
  Request* last() { return head_ < requests_.size() ? &requests_.back() : nullptr; }
  // The client sent CopyDone or CopyFail: a copy-in ends.
  void OnClientCopyEnd() { ++client_copy_ends_; }
  // Too much outstanding: the session should end.
  bool overloaded() const { return outstanding() > max_outstanding_; }
  // Room for `n` more requests.
  bool HasRoomFor(size_t n) const { return outstanding() + n <= max_outstanding_; }
  size_t outstanding() const { return requests_.size() - head_; }
  // Every outstanding request, oldest first (at a session's end: those that
  // never got their whole answer).
  template <typename F>
  void ForEachOutstanding(F&& f) {
    for (size_t i = head_; i < requests_.size(); ++i) f(requests_[i]);
  }

  // --- database -> client -----------------------------------------------------
  // Every database message header, in stream order. Requests the previous
  // message closed are removed first: on_closed(Request&) is called for
  // each (for ReadyForQuery, also for those it closes unanswered).
  // Afterwards answering() is the request this message belongs to, until the
  // next call. An error means the message fits no outstanding request.
  template <typename OnClosed>
  [[nodiscard]] absl::Status OnBackendMessage(char type, OnClosed&& on_closed);
  // The request the current database message answers or is part of; null
  // for messages that belong to none (notices, ParameterStatus, a FATAL
  // with nothing outstanding).
  Request* answering() { return answering_ ? &requests_[head_] : nullptr; }
  // Whether the current message is the last of its request's answer.
  bool closes() const { return closes_; }

 private:
  // Removes the front request (closed by the previous message).
  template <typename OnClosed>
  void PopFront(OnClosed& on_closed);

  std::vector<Request> requests_;  // outstanding: [head_, size())
  size_t head_ = 0;
  size_t max_outstanding_;
  bool answering_ = false;  // the current message belongs to requests_[head_]
  bool closes_ = false;     // ... and closes it
  uint32_t client_copy_ends_ = 0;
  // While > client_copy_ends_: the database is in copy-in mode until the
  // client's copy end number copy_in_until_ (Syncs before it are ignored).
  uint32_t copy_in_until_ = 0;
};

// ---------------------------------------------------------------------------

template <typename Note>
typename RequestPipeline<Note>::Request* RequestPipeline<Note>::Push(char type) {
  RequestKind kind;
  switch (type) {
    case kPqMsg_Query:
    case kPqMsg_Sync:
    case kPqMsg_FunctionCall:
      kind = RequestKind::kBatchEnd;
      break;
    case kPqMsg_Parse:
      kind = RequestKind::kParse;
      break;
    case kPqMsg_Bind:
      kind = RequestKind::kBind;
      break;
    case kPqMsg_Describe:
      kind = RequestKind::kDescribe;
      break;
    case kPqMsg_Execute:
      kind = RequestKind::kExecute;
      break;
    case kPqMsg_Close:
      kind = RequestKind::kClose;
      break;
    default:
      return nullptr;
  }
  if (type == kPqMsg_Sync && client_copy_ends_ < copy_in_until_) return nullptr;
  Request& r = requests_.emplace_back();
  r.kind = kind;
  r.type = type;
  r.copy_ends_before = client_copy_ends_;
  return &r;
}

template <typename Note>
typename RequestPipeline<Note>::Request& RequestPipeline<Note>::InsertBeforeLast(
    RequestKind kind, char type, bool from_gateway) {
  Request r;
  r.kind = kind;
  r.type = type;
  r.from_gateway = from_gateway;
  r.copy_ends_before = client_copy_ends_;
  // The last request is the client message being handled now, which the
  // database has not seen: never the one being answered.
  const auto at = requests_.size() > head_ ? requests_.end() - 1 : requests_.end();
  return *requests_.insert(at, std::move(r));
}

template <typename Note>
template <typename OnClosed>
void RequestPipeline<Note>::PopFront(OnClosed& on_closed) {
  on_closed(requests_[head_]);
  requests_[head_] = Request();  // release what its note holds now
  ++head_;
  if (head_ == requests_.size()) {
    requests_.clear();
    head_ = 0;
    // An idle session stays small: give back what a long batch took.
    if (requests_.capacity() > 1024) std::vector<Request>().swap(requests_);
  }
}

template <typename Note>
template <typename OnClosed>
absl::Status RequestPipeline<Note>::OnBackendMessage(char type, OnClosed&& on_closed) {
  if (answering_ && closes_) PopFront(on_closed);
  answering_ = false;
  closes_ = false;
  switch (type) {
    case kPqMsg_NoticeResponse:
    case kPqMsg_ParameterStatus:
    case kPqMsg_NotificationResponse:
      return absl::OkStatus();  // asynchronous: nobody's
    default:
      break;
  }
  if (head_ == requests_.size()) {
    // Nothing outstanding: only a FATAL (termination, timeouts) may come.
    if (type == kPqMsg_ErrorResponse) return absl::OkStatus();
    return absl::InternalError(
        Cat("the database sent a message ('", type, "') that answers no request"));
  }
  Request& front = requests_[head_];
  if (type == kPqMsg_ReadyForQuery) {
    // Closes the batch: everything before its end was answered or skipped.
    while (head_ < requests_.size()) {
      const bool batch_end = requests_[head_].kind == RequestKind::kBatchEnd;
      PopFront(on_closed);
      if (batch_end) return absl::OkStatus();
    }
    return absl::InternalError("the database sent ReadyForQuery with no batch outstanding");
  }
  bool fits = false;
  bool closes = false;
  switch (front.kind) {
    case RequestKind::kStatement:
    case RequestKind::kExecute:
      switch (type) {
        case kPqMsg_RowDescription:  // a Query's statement describes its rows
          fits = front.kind == RequestKind::kStatement;
          break;
        case kPqMsg_DataRow:
        case kPqMsg_CopyOutResponse:
        case kPqMsg_CopyData:
        case kPqMsg_CopyDone:
          fits = true;
          break;
        case kPqMsg_CopyInResponse:
        case kPqMsg_CopyBothResponse: {
          fits = true;
          // Syncs the client sent before ending this copy are ignored.
          const uint32_t end = front.copy_ends_before + 1;
          copy_in_until_ = end;
          for (size_t i = head_ + 1; i < requests_.size();) {
            if (requests_[i].type == kPqMsg_Sync && requests_[i].copy_ends_before < end) {
              requests_.erase(requests_.begin() + static_cast<std::ptrdiff_t>(i));
            } else {
              ++i;
            }
          }
          break;
        }
        case kPqMsg_CommandComplete:
        case kPqMsg_EmptyQueryResponse:
        case kPqMsg_ErrorResponse:
          fits = closes = true;
          break;
        case kPqMsg_PortalSuspended:
          fits = closes = front.kind == RequestKind::kExecute;
          break;
        default:
          break;
      }
      break;
    case RequestKind::kParse:
      fits = closes = type == kPqMsg_ParseComplete || type == kPqMsg_ErrorResponse;
      break;
    case RequestKind::kBind:
      fits = closes = type == kPqMsg_BindComplete || type == kPqMsg_ErrorResponse;
      break;
    case RequestKind::kClose:
      fits = closes = type == kPqMsg_CloseComplete || type == kPqMsg_ErrorResponse;
      break;
    case RequestKind::kDescribe:
      if (type == kPqMsg_ParameterDescription) {
        fits = true;
      } else {
        fits = closes =
            type == kPqMsg_RowDescription || type == kPqMsg_NoData || type == kPqMsg_ErrorResponse;
      }
      break;
    case RequestKind::kBatchEnd:
      // An error of the batch's end itself (a COMMIT at Sync, a failing
      // FunctionCall) or a FunctionCall's result; ReadyForQuery closes it.
      // A simple Query may hold more completions than the analyser counted
      // statements (none for an empty one): they are the Query's.
      fits =
          type == kPqMsg_ErrorResponse || type == kPqMsg_FunctionCallResponse ||
          (front.type == kPqMsg_Query &&
           (type == kPqMsg_CommandComplete || type == kPqMsg_EmptyQueryResponse ||
            type == kPqMsg_RowDescription || type == kPqMsg_DataRow ||
            type == kPqMsg_CopyOutResponse || type == kPqMsg_CopyData || type == kPqMsg_CopyDone));
      break;
  }
  if (!fits) {
    return absl::InternalError(
        Cat("the database sent '", type, "' where the answer to '", front.type, "' was due"));
  }
  front.answered = true;
  answering_ = true;
  closes_ = closes;
  return absl::OkStatus();
}

}  // namespace pgb::proto
