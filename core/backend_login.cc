#include "core/backend_login.h"

#include <utility>

#include "base/log.h"
#include "base/str_cat.h"
#include "proto/error_status.h"
#include "proto/md5_password.h"
#include "proto/messages.h"
#include "proto/protocol.h"

namespace pgb {

namespace sqlstate = proto::sqlstate;

BackendLogin::BackendLogin(const TargetConfig& target, proto::ScramClientKeyCache* scram_cache,
                           std::string log_prefix, const DatabaseLogin* login)
    : target_(target),
      scram_cache_(scram_cache),
      log_prefix_(std::move(log_prefix)),
      user_(login != nullptr ? login->user : target.user),
      password_(login != nullptr ? login->password : target.password) {}

absl::Status BackendLogin::CouldNotLogIn() const {
  return proto::ErrorStatus(sqlstate::kConnectionFailure,
                            Cat("the gateway could not log in to target \"", target_.name, "\""),
                            "", "The operator can find the reason in the gateway log.");
}

absl::StatusOr<bool> BackendLogin::OnMessage(char type, std::string_view body, std::string_view raw,
                                             std::string& to_database) {
  switch (type) {
    case proto::kPqMsg_AuthenticationRequest:
      return OnAuthenticationRequest(body, to_database);
    case proto::kPqMsg_ErrorResponse: {
      absl::StatusOr<proto::ErrorFields> fields = proto::ParseErrorFields(body);
      const std::string code = fields.ok() ? fields->sqlstate : "";
      PGB_LOG(kWarning) << log_prefix_ << ": the database refused the login: "
                        << (fields.ok() ? fields->message : "(unparsable error)") << " [" << code
                        << "]";
      // Load-shedding conditions are the client's business (it may retry);
      // everything else (bad credentials, missing database) is the operator's
      // and stays in the log.
      if (code == sqlstate::kTooManyConnections || code == "57P03") {
        return proto::ErrorStatus(code, fields->message);
      }
      // Once authenticated, a bad value or an unknown name among the client's
      // own startup settings (core/startup_parameters.h), which the policy
      // allowed: the client's business, answered as PostgreSQL answers it.
      if (authenticated_ && (code == "22023" || code == "42704" || code == "55P02")) {
        return proto::ErrorStatus(code, fields->message, fields->detail, fields->hint);
      }
      return CouldNotLogIn();
    }
    case proto::kPqMsg_ParameterStatus:
    case proto::kPqMsg_NoticeResponse:
      if (!authenticated_ && type == proto::kPqMsg_ParameterStatus) break;
      for_client_.append(raw);
      return false;
    case proto::kPqMsg_BackendKeyData: {
      absl::StatusOr<std::pair<int32_t, int32_t>> key = proto::ParseBackendKeyData(body);
      if (!key.ok()) break;
      backend_pid_ = key->first;
      backend_key_ = key->second;
      return false;
    }
    case proto::kPqMsg_NegotiateProtocolVersion:
      return false;  // we ask for plain 3.0; nothing to adjust
    case proto::kPqMsg_ReadyForQuery:
      if (!authenticated_) break;
      return true;
    default:
      break;
  }
  PGB_LOG(kWarning) << log_prefix_ << ": unexpected message '" << std::string(1, type)
                    << "' from the database during login";
  return proto::ErrorStatus(sqlstate::kProtocolViolation,
                            "the database sent an unexpected message during login");
}

absl::StatusOr<bool> BackendLogin::OnAuthenticationRequest(std::string_view body,
                                                           std::string& to_database) {
  absl::StatusOr<proto::AuthenticationRequest> req = proto::ParseAuthenticationRequest(body);
  if (!req.ok()) {
    return proto::ErrorStatus(sqlstate::kProtocolViolation,
                              "the database sent an invalid authentication request");
  }
  const std::string& password = password_.Reveal();
  switch (req->code) {
    case proto::kAuthReqOk:
      if (scram_) {
        // A server that skips SASLFinal has not proven it knows the verifier.
        return proto::ErrorStatus(
            sqlstate::kConnectionFailure,
            Cat("target \"", target_.name, "\" ended SCRAM authentication without proof"));
      }
      authenticated_ = true;
      proto::AppendAuthenticationOk(for_client_);
      return false;
    case proto::kAuthReqPassword:
    case proto::kAuthReqMd5:
      if (password.empty()) break;
      if (req->code == proto::kAuthReqPassword) {
        proto::AppendPasswordMessage(to_database, password);
      } else {
        proto::AppendPasswordMessage(to_database,
                                     proto::Md5PasswordResponse(user_, password, req->md5_salt));
      }
      return false;
    case proto::kAuthReqSasl: {
      bool has_scram = false;
      for (std::string_view mech : req->sasl_mechanisms) {
        if (mech == "SCRAM-SHA-256") has_scram = true;
      }
      if (!has_scram || password.empty()) break;
      scram_ = std::make_unique<proto::ScramClient>(password, scram_cache_);
      proto::AppendSaslInitialResponse(to_database, "SCRAM-SHA-256", scram_->ClientFirst());
      return false;
    }
    case proto::kAuthReqSaslContinue: {
      if (!scram_) break;
      absl::StatusOr<std::string> final_message = scram_->HandleServerFirst(req->sasl_data);
      if (!final_message.ok()) {
        PGB_LOG(kWarning) << log_prefix_ << ": SCRAM with the database failed: "
                          << final_message.status().message();
        return proto::ErrorStatus(
            sqlstate::kConnectionFailure,
            Cat("the gateway could not log in to target \"", target_.name, "\""));
      }
      proto::AppendSaslResponse(to_database, *final_message);
      return false;
    }
    case proto::kAuthReqSaslFinal: {
      if (!scram_) break;
      absl::Status verified = scram_->HandleServerFinal(req->sasl_data);
      scram_.reset();
      if (!verified.ok()) {
        PGB_LOG(kWarning) << log_prefix_
                          << ": the database failed SCRAM server proof: " << verified.message();
        return proto::ErrorStatus(sqlstate::kConnectionFailure,
                                  Cat("target \"", target_.name,
                                      "\" could not prove its identity (SCRAM server signature)"));
      }
      return false;
    }
    default:
      break;
  }
  PGB_LOG(kWarning) << log_prefix_ << ": the database asked for authentication method " << req->code
                    << (password.empty() ? " and no password is configured for the target"
                                         : ", which the gateway cannot answer");
  return CouldNotLogIn();
}

}  // namespace pgb
