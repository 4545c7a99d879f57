#include "core/result_masking.h"

#include <utility>

#include "base/str_cat.h"
#include "proto/data_row_rewrite.h"
#include "proto/frame.h"
#include "proto/messages.h"
#include "proto/wire.h"

namespace pgb {
namespace {

// ErrorResponse/NoticeResponse fields that can quote values of rows:
// DETAIL ("Key (email)=(...) already exists", "Failing row contains (...)"),
// CONTEXT (COPY lines, function arguments), the internal query and its
// position.
constexpr std::string_view kValueFields = "DWqp";

void Set(proto::FrameTracker::Gather& gather, char type) {
  gather.types.set(static_cast<unsigned char>(type));
}

}  // namespace

void ResultMasking::UsePolicy(std::shared_ptr<const policy::Policy> policy,
                              const policy::Scope* scope) {
  if (scope == nullptr) return;
  masks_ = &scope->masks;
  policy_ = std::move(policy);
}

void ResultMasking::AddClientTypes(proto::FrameTracker::Gather& gather) {
  Set(gather, proto::kPqMsg_Execute);
}

void ResultMasking::AddBackendTypes(proto::FrameTracker::Gather& gather,
                                    uint32_t max_message_size) {
  for (char type :
       {proto::kPqMsg_RowDescription, proto::kPqMsg_NoData, proto::kPqMsg_DataRow,
        proto::kPqMsg_ErrorResponse, proto::kPqMsg_NoticeResponse, proto::kPqMsg_CopyOutResponse,
        proto::kPqMsg_CopyBothResponse, proto::kPqMsg_FunctionCallResponse,
        proto::kPqMsg_ParameterStatus, proto::kPqMsg_NotificationResponse}) {
    Set(gather, type);
  }
  // A DataRow must be rewritten whole, however long; the frame cap still applies.
  gather.max_size = max_message_size + 1;
}

absl::Status ResultMasking::OnExecute(std::string_view message, SessionPipeline& pipeline,
                                      std::string& to_database) {
  absl::StatusOr<std::string_view> portal =
      proto::ParseExecutePortal(message.substr(proto::kHeaderLength));
  if (!portal.ok()) return portal.status();
  proto::AppendDescribe(to_database, 'P', *portal);
  pipeline.InsertBeforeLast(proto::RequestKind::kDescribe, proto::kPqMsg_Describe,
                            /*from_gateway=*/true);
  ++own_describes_;
  to_database.append(message);
  return absl::OkStatus();
}

void ResultMasking::OnReadyForQuery() {
  plan_known_ = false;
  plan_policy_ = nullptr;
  // An idle session stays small: give back what a long row took.
  if (rebuilt_.capacity() > 64 * 1024) std::string().swap(rebuilt_);
}

absl::StatusOr<ResultMasking::Outcome> ResultMasking::OnDescription(std::string_view message) {
  if (message[0] == proto::kPqMsg_NoData) {
    plan_ = policy::MaskPlan();
  } else {
    absl::StatusOr<std::vector<proto::ResultField>> fields = proto::ParseRowDescription(message);
    if (!fields.ok()) return fields.status();
    static const std::vector<policy::ColumnMask> kNoMasks;
    const std::shared_ptr<const policy::RelationCatalog> catalog =
        catalogs_ && masks_apply() ? catalogs_->Snapshot(catalog_target_) : nullptr;
    plan_ = policy::MaskPlan::For(masks_ != nullptr ? *masks_ : kNoMasks, *fields, catalog.get());
  }
  plan_known_ = true;
  plan_policy_ = policy_;
  return drop_description_ ? Outcome::kDrop : Outcome::kForward;
}

absl::StatusOr<ResultMasking::Outcome> ResultMasking::OnDataRow(char* message, size_t size) {
  if (!plan_known_) return absl::InternalError("a DataRow came without a RowDescription");
  if (!plan_.masks_anything()) return Outcome::kForward;
  RememberMaskedValues(std::string_view(message, size));
  rebuilt_.clear();
  absl::StatusOr<proto::RowRewrite> rewrite =
      proto::RewriteDataRow(plan_.columns(), message, size, rebuilt_);
  if (!rewrite.ok()) return rewrite.status();
  masked_values_ += rewrite->masked_values;
  return rewrite->how == proto::RowRewrite::kRebuilt ? Outcome::kRebuilt : Outcome::kForward;
}

absl::StatusOr<ResultMasking::Outcome> ResultMasking::OnErrorOrNotice(std::string_view message) {
  rebuilt_.clear();
  if (!proto::AppendWithoutErrorFields(message, kValueFields, rebuilt_)) {
    return absl::InvalidArgumentError(Cat("malformed ", message[0] == proto::kPqMsg_NoticeResponse
                                                            ? "NoticeResponse"
                                                            : "ErrorResponse"));
  }
  ScrubMessage(masked_, rebuilt_.data(), rebuilt_.size());
  return Outcome::kRebuilt;
}

ResultMasking::Outcome ResultMasking::OnParameterOrNotification(std::string_view message) {
  rebuilt_.assign(message);
  if (ScrubMessage(masked_, rebuilt_.data(), rebuilt_.size()) == 0) return Outcome::kForward;
  return Outcome::kRebuilt;
}

// DataRow: header, Int16 column count, then per column Int32 length (-1:
// NULL) and the value's bytes. A row that does not parse is refused by
// RewriteDataRow right after; here it is only read as far as it goes.
void ResultMasking::RememberMaskedValues(std::string_view row) {
  const std::vector<proto::ColumnRewrite>& columns = plan_.columns();
  size_t at = proto::kHeaderLength + 2;
  for (size_t i = 0; i < columns.size() && at + 4 <= row.size(); ++i) {
    const auto length = static_cast<int32_t>(proto::LoadBigEndian32(row.data() + at));
    at += 4;
    if (length < 0) continue;
    if (static_cast<size_t>(length) > row.size() - at) return;
    if (columns[i].action != proto::ValueRewrite::kPass) {
      masked_.Remember(row.substr(at, static_cast<size_t>(length)));
    }
    at += static_cast<size_t>(length);
  }
}

}  // namespace pgb
