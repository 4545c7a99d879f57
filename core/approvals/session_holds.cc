#include "core/approvals/session_holds.h"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <utility>

#include "absl/strings/escaping.h"
#include "base/str_cat.h"

namespace pgb::approvals {

std::string ApprovalBinding(std::string_view statement, std::string_view subject,
                            std::string_view issuer, std::string_view target,
                            std::string_view scope, std::string_view parameters) {
  // Only the ends are trimmed (a tool's trailing newline or semicolon
  // spacing): whitespace inside could be inside a string literal, where it
  // is data. Each part is length-prefixed: no two different tuples hash the
  // same input.
  const size_t first = statement.find_first_not_of(" \t\r\n");
  const std::string_view text =
      first == std::string_view::npos
          ? std::string_view()
          : statement.substr(first, statement.find_last_not_of(" \t\r\n") - first + 1);
  std::string input;
  for (std::string_view part : {text, subject, issuer, target, scope, parameters}) {
    input += Cat(part.size(), ":");
    input.append(part);
  }
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

std::string NewApprovalId() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) return {};
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

namespace {

std::string HowToApprove(const std::string& id, const ApprovalsConfig& config) {
  std::string how = Cat("Approve with: pgbastion approvals approve ", id,
                        " --reason TEXT (or: pgbastion approvals deny ", id, " --reason TEXT)");
  if (!config.approve_url.empty()) {
    std::string_view base = config.approve_url;
    while (!base.empty() && base.back() == '/') base.remove_suffix(1);
    how += Cat("; HTTP: POST ", base, "/", id, "/approve");
  }
  return how;
}

}  // namespace

proto::ErrorFields HoldNotice(const HeldStatement& held, const ApprovalsConfig& config) {
  const ApprovalSettings& s = held.settings;
  std::string who = s.approvers == 1 ? "one approver" : Cat(s.approvers, " distinct approvers");
  if (!s.approver_groups.empty()) {
    who += Cat(" from ", s.approver_groups.size() == 1 ? "group " : "groups ");
    for (size_t i = 0; i < s.approver_groups.size(); ++i) {
      who += Cat(i == 0 ? "" : ", ", s.approver_groups[i]);
    }
  }
  return proto::ErrorFields{
      "NOTICE", "00000",
      Cat("statement held for approval: request ", held.id, " (pgbastion rule \"", held.rule,
          "\")"),
      Cat(held.reason, ". It runs once ", who, " approve", s.approvers == 1 ? "s" : "",
          "; it fails if denied or not decided within ", absl::FormatDuration(s.timeout), "."),
      HowToApprove(held.id, config)};
}

proto::ErrorFields HoldRefusal(const HeldStatement& held, const ApprovalEvent& event) {
  using Kind = ApprovalEvent::Kind;
  const std::string id = held.id.empty() ? event.id : held.id;
  switch (event.kind) {
    case Kind::kDenied:
      return proto::ErrorFields{
          "ERROR", "42501",
          Cat("statement denied by ", event.by,
              event.reason.empty() ? std::string() : Cat(": ", event.reason)),
          Cat("Approval request ", id, " (pgbastion rule \"", held.rule, "\") was denied."), ""};
    case Kind::kExpired:
      return proto::ErrorFields{
          "ERROR", kApprovalTimedOut,
          Cat("approval request ", id, " timed out: nobody decided within ",
              absl::FormatDuration(held.settings.timeout), ", so the statement was not run"),
          Cat("pgbastion rule \"", held.rule, "\" holds it for approval."),
          "Ask an approver to watch for it, then send the statement again."};
    case Kind::kRetryLater:
      return proto::ErrorFields{
          "ERROR", "42501",
          Cat("approval required by pgbastion rule \"", held.rule, "\": request ", event.id,
              "; send the statement again once it is approved"),
          Cat(held.reason,
              ". An approval lets the same statement from the same identity on the "
              "same target run ",
              held.settings.uses == 1 ? std::string("once") : Cat(held.settings.uses, " times"),
              " within ", absl::FormatDuration(held.settings.timeout), "."),
          Cat("Approve with: pgbastion approvals approve ", event.id, " --reason TEXT")};
    case Kind::kFailed:
    default:
      return proto::ErrorFields{
          "ERROR", "58000",
          Cat("the approval store is unavailable, so the statement needing approval was not run: ",
              event.reason),
          "", "Retry later; the operator can see why in the gateway's log."};
  }
}

void SessionHolds::Submit(uint64_t hold, ApprovalRequest request) {
  pending_[hold] = request.id;
  Post post = post_;
  store_->Submit(std::move(request),
                 [post, hold](const ApprovalEvent& event) { post(hold, event); });
}

void SessionHolds::Withdraw(uint64_t hold, std::string why) {
  auto it = pending_.find(hold);
  if (it == pending_.end()) return;
  store_->Withdraw(it->second, std::move(why));
  pending_.erase(it);
}

void SessionHolds::WithdrawAll(const std::string& why) {
  for (auto& [hold, id] : pending_) store_->Withdraw(id, why);
  pending_.clear();
}

}  // namespace pgb::approvals
