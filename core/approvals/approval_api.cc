#include "core/approvals/approval_api.h"

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "base/json_text.h"
#include "base/log.h"
#include "base/str_cat.h"
#include "httplib.h"
#include "policy/token_verifier.h"
#include "simdjson.h"

namespace pgb::approvals {
namespace {

constexpr size_t kMaxReason = 1000;

std::string ErrorJson(std::string_view message) {
  return Cat("{\"error\":", JsonString(message), "}");
}
std::string ErrorJson(const absl::Status& status) {
  return ErrorJson(std::string(status.message()));
}

std::string ListJson(const std::vector<ApprovalRecord>& records) {
  std::string out = "{\"approvals\":[";
  for (size_t i = 0; i < records.size(); ++i) {
    if (i > 0) out += ',';
    out += ApprovalJson(records[i]);
  }
  out += "]}";
  return out;
}

// An id is 32 hex digits; anything else is unknown without asking the store.
bool WellFormedId(std::string_view id) {
  return id.size() == 32 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

std::string AdminApprovalsAnswer(ApprovalStore* store, std::string_view request,
                                 std::string_view operator_name) {
  if (store == nullptr) {
    return ErrorJson("approvals are not configured on this gateway (no [approvals] table)");
  }
  const size_t space = request.find(' ');
  const std::string_view verb = request.substr(0, space);
  std::string_view rest = space == std::string_view::npos ? "" : request.substr(space + 1);
  std::vector<std::string> words =
      absl::StrSplit(absl::string_view(rest.data(), rest.size()), ' ', absl::SkipEmpty());
  if (verb == "list") {
    std::string status = words.size() > 0 && words[0] != "all" ? words[0] : "";
    size_t limit = 100;
    size_t offset = 0;
    if ((words.size() > 1 && !absl::SimpleAtoi(words[1], &limit)) ||
        (words.size() > 2 && !absl::SimpleAtoi(words[2], &offset))) {
      return ErrorJson("list [STATUS|all] [LIMIT] [OFFSET]: LIMIT and OFFSET are numbers");
    }
    absl::StatusOr<std::vector<ApprovalRecord>> list = store->List(status, limit, offset);
    return list.ok() ? ListJson(*list) : ErrorJson(list.status());
  }
  if (verb == "show" && words.size() == 1) {
    if (!WellFormedId(words[0])) return ErrorJson(Cat("no approval request ", words[0]));
    absl::StatusOr<ApprovalRecord> r = store->Show(words[0]);
    return r.ok() ? Cat("{\"approval\":", ApprovalJson(*r), "}") : ErrorJson(r.status());
  }
  if ((verb == "approve" || verb == "deny") && words.size() >= 2) {
    const std::string id(words[0]);
    if (!WellFormedId(id)) return ErrorJson(Cat("no approval request ", id));
    Approver approver{words[1], {}, /*any_group=*/true};
    // The reason is the rest of the line after the approver.
    std::string reason;
    const size_t at = rest.find(words[1], words[0].size());
    if (at != std::string_view::npos) {
      std::string_view tail = rest.substr(at + words[1].size());
      while (!tail.empty() && tail.front() == ' ') tail.remove_prefix(1);
      reason.assign(tail.substr(0, kMaxReason));
    }
    absl::StatusOr<ApprovalRecord> r = store->Decide(id, approver, verb == "approve", reason);
    PGB_LOG(kInfo) << "admin socket: " << operator_name << " as " << approver.name << " "
                   << (verb == "approve" ? "approved " : "denied ") << id << ": "
                   << (r.ok() ? "done" : std::string(r.status().message()));
    return r.ok() ? Cat("{\"approval\":", ApprovalJson(*r), "}") : ErrorJson(r.status());
  }
  return ErrorJson(
      "unknown approvals request; expected: list [STATUS] [LIMIT] [OFFSET] | show ID | "
      "approve|deny ID APPROVER [REASON]");
}

namespace {

// The caller of an HTTP request, from its bearer token; nullopt after
// answering 401/403 in `res`.
std::optional<Approver> Authenticate(const httplib::Request& req, httplib::Response& res,
                                     const RuntimeStore* runtimes) {
  const auto refuse = [&](int status, std::string_view why) {
    res.status = status;
    if (status == 401) res.set_header("WWW-Authenticate", "Bearer");
    res.set_content(ErrorJson(why), "application/json");
    return std::nullopt;
  };
  const std::string& header = req.get_header_value("Authorization");
  if (header.size() <= 7 || header.substr(0, 7) != "Bearer ") {
    return refuse(401, "a bearer token from a configured issuer is required");
  }
  const std::shared_ptr<const Runtime> runtime = runtimes->Current();
  if (!runtime->keys) return refuse(401, "this gateway has no [[issuer]] to verify tokens");
  policy::TokenVerifier verifier(runtime->keys, 0);
  policy::TokenVerdict verdict =
      verifier.Verify(std::string_view(header).substr(7), "", absl::Now());
  // The user check belongs to a database login, not to this API.
  if (!verdict.ok() && verdict.refusal->check != policy::TokenCheck::kUser) {
    return refuse(401, Cat("token refused: ", verdict.refusal->reason));
  }
  const ApprovalsConfig& config = runtime->config.approvals;
  std::vector<std::string> groups = config.defaults.approver_groups;
  for (const ApprovalRuleConfig& r : config.rules) {
    if (r.approver_groups)
      groups.insert(groups.end(), r.approver_groups->begin(), r.approver_groups->end());
  }
  if (groups.empty()) {
    return refuse(403,
                  "no approver groups are configured ([approvals] approver_groups), so the "
                  "API decides nothing");
  }
  const policy::Identity& who = verdict.identity;
  const bool approver = std::any_of(who.groups.begin(), who.groups.end(), [&](const auto& g) {
    return std::find(groups.begin(), groups.end(), g) != groups.end();
  });
  if (!approver) {
    return refuse(403, Cat(who.subject, " is not in an approver group"));
  }
  return Approver{who.subject, who.groups, false};
}

void Answer(httplib::Response& res, const absl::StatusOr<ApprovalRecord>& r) {
  if (!r.ok()) {
    res.status = ApprovalHttpStatus(r.status());
    res.set_content(ErrorJson(r.status()), "application/json");
    return;
  }
  res.set_content(Cat("{\"approval\":", ApprovalJson(*r), "}"), "application/json");
}

}  // namespace

void AddApprovalRoutes(httplib::Server& server, ApprovalStore* store,
                       const RuntimeStore* runtimes) {
  server.Get("/v1/approvals", [store, runtimes](const httplib::Request& req,
                                                httplib::Response& res) {
    if (!Authenticate(req, res, runtimes)) return;
    size_t limit = 50;
    size_t offset = 0;
    if ((req.has_param("limit") && !absl::SimpleAtoi(req.get_param_value("limit"), &limit)) ||
        (req.has_param("offset") && !absl::SimpleAtoi(req.get_param_value("offset"), &offset))) {
      res.status = 400;
      res.set_content(ErrorJson("limit and offset are numbers"), "application/json");
      return;
    }
    absl::StatusOr<std::vector<ApprovalRecord>> list = store->List(
        req.has_param("status") ? req.get_param_value("status") : "pending", limit, offset);
    if (!list.ok()) {
      res.status = 503;
      res.set_content(ErrorJson(list.status()), "application/json");
      return;
    }
    res.set_content(ListJson(*list), "application/json");
  });
  server.Get(R"(/v1/approvals/([0-9a-f]{32}))",
             [store, runtimes](const httplib::Request& req, httplib::Response& res) {
               if (!Authenticate(req, res, runtimes)) return;
               Answer(res, store->Show(req.matches[1]));
             });
  server.Post(R"(/v1/approvals/([^/]+)/(approve|deny))",
              [store, runtimes](const httplib::Request& req, httplib::Response& res) {
                std::optional<Approver> approver = Authenticate(req, res, runtimes);
                if (!approver) return;
                const std::string id = req.matches[1];
                if (!WellFormedId(id)) {
                  res.status = 404;
                  res.set_content(ErrorJson(Cat("no approval request ", id)), "application/json");
                  return;
                }
                std::string reason;
                if (!req.body.empty()) {
                  simdjson::dom::parser parser;
                  simdjson::dom::element body;
                  std::string_view text;
                  if (req.body.size() > 16 * 1024 ||
                      parser.parse(req.body).get(body) != simdjson::SUCCESS ||
                      (body["reason"].error() != simdjson::NO_SUCH_FIELD &&
                       body["reason"].get(text) != simdjson::SUCCESS)) {
                    res.status = 400;
                    res.set_content(ErrorJson("the body is a JSON object: {\"reason\": \"...\"}"),
                                    "application/json");
                    return;
                  }
                  reason.assign(text.substr(0, kMaxReason));
                }
                const bool approve = req.matches[2] == "approve";
                absl::StatusOr<ApprovalRecord> r = store->Decide(id, *approver, approve, reason);
                PGB_LOG(kInfo) << "approvals API: " << approver->name << " "
                               << (approve ? "approved " : "denied ") << id << ": "
                               << (r.ok() ? "done" : std::string(r.status().message()));
                Answer(res, r);
              });
}

}  // namespace pgb::approvals
