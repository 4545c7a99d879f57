// ResultMasking applies a session's column masks (policy/masking.h) to what
// the database sends back, before a byte of it reaches the client:
//
// - Every RowDescription sets the plan for the DataRows that follow it; each
//   DataRow is rewritten by the plan (in the receive buffer when the masked
//   values keep their length). A DataRow with no plan, or one that does not
//   match its plan, ends the session: nothing unmasked goes out.
// - An Execute of the extended protocol has no RowDescription of its own, so
//   the gateway sends a Describe of the portal right before it and drops the
//   answer (RowDescription or NoData) once it has planned from it. Which
//   answer is whose, the session's request pipeline says: the gateway's
//   Describe is a request of its own there, marked as the gateway's.
// - ErrorResponse and NoticeResponse lose the fields that can quote row
//   values (DETAIL, CONTEXT, the internal query): "Key (email)=(...)",
//   "Failing row contains (...)". In what stays (MESSAGE, HINT, ...), and in
//   ParameterStatus values and NOTIFY payloads, the values the session's
//   masks hid recently are overwritten with '*' (core/masked_values.h).
// - COPY out and FunctionCall results cannot be masked: the rules refuse them
//   in a masked scope, and if one comes anyway the session ends.
//
// Masks a reload adds apply from the next message on. Masks a reload removes
// stop applying at once, but the answers to the gateway's Describes already
// sent are still taken out (until the pipeline closes the last of them):
// otherwise the client would get a RowDescription it never asked for.
//
//   masking.UsePolicy(policy, scope);
//   whole Execute (when active): masking.OnExecute(message, pipeline, to_database)
//   backend headers: masking.OnBackendMessage(type, pipeline.answering()); whole
//     messages of the types AddBackendTypes() gathers: OnDescription / OnDataRow /
//     OnErrorOrNotice
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "core/catalog_reader.h"
#include "core/masked_values.h"
#include "core/statement_ledger.h"
#include "policy/masking.h"
#include "policy/rules.h"
#include "proto/frame_tracker.h"
#include "proto/protocol.h"

namespace pgb {

class ResultMasking {
 public:
  // The masks of `scope` (inside `policy`) apply from now on. A null scope
  // (a reload left the identity without one: everything is refused) keeps
  // the masks in force for the answers still to come.
  void UsePolicy(std::shared_ptr<const policy::Policy> policy, const policy::Scope* scope);
  // Columns tagged `pgbastion:mask=` in the target's catalog are masked by
  // name too (null: no catalog).
  void UseCatalog(std::shared_ptr<CatalogReader> catalogs, size_t target) {
    catalogs_ = std::move(catalogs);
    catalog_target_ = target;
  }
  // Masks are in force: Executes get the gateway's Describe.
  bool masks_apply() const { return masks_ != nullptr && !masks_->empty(); }
  // Answers need handling: masks are in force, or a Describe of the
  // gateway's is still outstanding.
  bool active() const { return masks_apply() || own_describes_ > 0; }

  // What the relay must gather while active, on top of what the gate gathers.
  // Client: Execute. Database: RowDescription, NoData, DataRow, ErrorResponse,
  // NoticeResponse, and the answers that cannot be masked (CopyOutResponse,
  // CopyBothResponse, FunctionCallResponse).
  static void AddClientTypes(proto::FrameTracker::Gather& gather);
  static void AddBackendTypes(proto::FrameTracker::Gather& gather, uint32_t max_message_size);

  // A whole Execute while masks apply: appends a Describe of its portal and the
  // Execute itself to `to_database`, and puts the Describe in the pipeline
  // before the Execute's request (the last one).
  [[nodiscard]] absl::Status OnExecute(std::string_view message, SessionPipeline& pipeline,
                                       std::string& to_database);

  // Database -> client, every message header in stream order, with the
  // request it answers (null: none).
  void OnBackendMessage(char type, const SessionPipeline::Request* answering) {
    if (type == proto::kPqMsg_RowDescription || type == proto::kPqMsg_NoData) {
      drop_description_ = answering != nullptr && answering->from_gateway;
    } else if (type == proto::kPqMsg_ReadyForQuery) {
      OnReadyForQuery();
    }
  }

  // The pipeline closed `request` (answered, or skipped).
  void OnClosed(const SessionPipeline::Request& request) {
    if (request.from_gateway && own_describes_ > 0) --own_describes_;
  }

  enum class Outcome : uint8_t {
    kForward,  // relay the message as it is (it may have been rewritten in place)
    kDrop,     // the answer to the gateway's own Describe
    kRebuilt,  // relay rebuilt() instead
  };
  // A whole RowDescription or NoData.
  [[nodiscard]] absl::StatusOr<Outcome> OnDescription(std::string_view message);
  // A whole DataRow, in memory the relay owns: rewritten in place or rebuilt.
  [[nodiscard]] absl::StatusOr<Outcome> OnDataRow(char* message, size_t size);
  // A whole ErrorResponse or NoticeResponse: always rebuilt without the
  // fields that can quote values.
  [[nodiscard]] absl::StatusOr<Outcome> OnErrorOrNotice(std::string_view message);
  // A whole ParameterStatus or NotificationResponse: forwarded, or rebuilt
  // with the masked values it quotes overwritten.
  [[nodiscard]] Outcome OnParameterOrNotification(std::string_view message);
  const std::string& rebuilt() const { return rebuilt_; }
  // Values masked since the last call (for the audit record of the
  // statement whose rows they were).
  uint32_t TakeMaskedValues() { return std::exchange(masked_values_, 0); }

 private:
  void OnReadyForQuery();
  // Remembers the values of `plan_`'s masked columns in a whole DataRow.
  void RememberMaskedValues(std::string_view row);

  std::shared_ptr<const policy::Policy> policy_;
  const std::vector<policy::ColumnMask>* masks_ = nullptr;  // inside *policy_
  bool drop_description_ = false;  // the description being received answers our Describe
  // The plan for the DataRows that follow; its rewrites point into
  // *plan_policy_'s masks, kept alive while it is in force.
  bool plan_known_ = false;
  policy::MaskPlan plan_;
  std::shared_ptr<const policy::Policy> plan_policy_;
  std::string rebuilt_;
  uint32_t masked_values_ = 0;
  uint32_t own_describes_ = 0;  // the gateway's Describes the pipeline has not closed
  std::shared_ptr<CatalogReader> catalogs_;
  size_t catalog_target_ = 0;
  MaskedValueMemory masked_;  // hidden again where messages quote them
};

}  // namespace pgb
