// How approvers reach the approval store (core/approvals/approval_store.h)
// through the control plane (core/control_plane.h), on its threads:
//
//   the admin socket (`pgbastion approvals ...`), one request line each:
//     approvals list [STATUS|all] [LIMIT] [OFFSET]   {"approvals":[...]}
//     approvals show ID                              {"approval":{...}}
//     approvals approve|deny ID APPROVER [REASON]    {"approval":{...}}
//   The admin socket is the local operator's (root or the service's user):
//   it names the approver (APPROVER, `--as`), and group rules do not apply.
//
//   the HTTP API (docs/approvals.md, docs/approvals.openapi.yaml), each call
//   with "Authorization: Bearer <token>" from a configured [[issuer]] whose
//   claims put the caller in an approver group:
//     GET  /v1/approvals?status=pending&limit=50&offset=0
//     GET  /v1/approvals/{id}
//     POST /v1/approvals/{id}/approve   {"reason": "..."}
//     POST /v1/approvals/{id}/deny      {"reason": "..."}
//   Errors are JSON {"error": "..."} with 401 (no, bad or expired token),
//   403 (not an approver, own request, voted already), 404 (unknown id),
//   409 (decided already), 503 (store unavailable).
#pragma once

#include <string>
#include <string_view>

#include "core/approvals/approval_store.h"
#include "core/runtime.h"

namespace httplib {
class Server;
}

namespace pgb::approvals {

// The JSON answer to an admin socket line that starts with "approvals "
// (`request` is the rest); `operator_name` is who is on the socket.
std::string AdminApprovalsAnswer(ApprovalStore* store, std::string_view request,
                                 std::string_view operator_name);

// Adds the /v1/approvals routes to the control plane's server.
void AddApprovalRoutes(httplib::Server& server, ApprovalStore* store, const RuntimeStore* runtimes);

}  // namespace pgb::approvals
