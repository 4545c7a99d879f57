#include "tools/bench/connection.h"

#include <utility>
#include <vector>

#include "base/str_cat.h"
#include "proto/frame.h"
#include "proto/md5_password.h"
#include "proto/protocol.h"

namespace pgb::bench {

namespace {
constexpr int32_t kProtocol30 = 3 << 16;

std::string AuthMethodName(int32_t code) {
  switch (code) {
    case proto::kAuthReqMd5:
      return "MD5";
    case proto::kAuthReqSasl:
      return "SASL (SCRAM-SHA-256)";
    default:
      return Cat("method ", code);
  }
}
}  // namespace

BenchConnection::BenchConnection(std::string_view user, std::string_view dbname,
                                 const Credential* credential, TransactionBuilder* tx,
                                 proto::ScramClientKeyCache* scram_cache)
    : user_(user), dbname_(dbname), credential_(credential), tx_(tx), scram_cache_(scram_cache) {}

void BenchConnection::Start(std::string& out) {
  state_ = State::kAuth;
  scram_.reset();
  proto::AppendStartupMessage(
      out, kProtocol30,
      {{"user", user_}, {"database", dbname_}, {"application_name", "pgbastion-bench"}});
}

void BenchConnection::BeginTransaction(std::string& out) {
  state_ = State::kInTransaction;
  txn_sqlstate_.clear();
  tx_->AppendTransaction(out);
}

absl::Status BenchConnection::OnAuthRequest(std::string_view body, std::string& out) {
  absl::StatusOr<proto::AuthenticationRequest> req = proto::ParseAuthenticationRequest(body);
  if (!req.ok()) return req.status();
  const std::string& password = credential_->secret;
  if (credential_->kind == Credential::Kind::kToken && req->code != proto::kAuthReqOk &&
      req->code != proto::kAuthReqPassword) {
    return absl::FailedPreconditionError(
        Cat("the server asked for ", AuthMethodName(req->code),
            " authentication, not a token: it takes no token for user \"", user_,
            "\" (a gateway asks for one, as a cleartext password, only over TLS and only for "
            "users that are not [[user]] entries)"));
  }
  switch (req->code) {
    case proto::kAuthReqOk:
      state_ = State::kAwaitReady;
      return absl::OkStatus();
    case proto::kAuthReqPassword:
      proto::AppendPasswordMessage(out, password);
      return absl::OkStatus();
    case proto::kAuthReqMd5: {
      const std::string reply = proto::Md5PasswordResponse(user_, password, req->md5_salt);
      if (reply.empty()) return absl::InternalError("MD5 is unavailable in this OpenSSL");
      proto::AppendPasswordMessage(out, reply);
      return absl::OkStatus();
    }
    case proto::kAuthReqSasl: {
      bool offered = false;
      for (std::string_view m : req->sasl_mechanisms) offered |= m == proto::kScramSha256Mechanism;
      if (!offered) return absl::UnimplementedError("server offers no SCRAM-SHA-256");
      scram_.emplace(password, scram_cache_);
      const std::string first = scram_->ClientFirst();
      proto::AppendSaslInitialResponse(out, proto::kScramSha256Mechanism, first);
      return absl::OkStatus();
    }
    case proto::kAuthReqSaslContinue: {
      if (!scram_) return absl::InvalidArgumentError("SASLContinue before SASL");
      absl::StatusOr<std::string> final_msg = scram_->HandleServerFirst(req->sasl_data);
      if (!final_msg.ok()) return final_msg.status();
      proto::AppendSaslResponse(out, *final_msg);
      return absl::OkStatus();
    }
    case proto::kAuthReqSaslFinal:
      if (!scram_) return absl::InvalidArgumentError("SASLFinal before SASL");
      return scram_->HandleServerFinal(req->sasl_data);
    default:
      return absl::UnimplementedError(Cat("authentication request ", req->code));
  }
}

absl::StatusOr<FeedResult> BenchConnection::Feed(std::string_view in, std::string& out) {
  FeedResult result;
  for (;;) {
    const proto::MessageResult m = proto::DecodeMessage(
        in.substr(result.consumed), proto::Direction::kBackend, kMaxBackendMessage);
    if (m.status == proto::DecodeStatus::kNeedMore) return result;
    if (m.status == proto::DecodeStatus::kError) {
      return absl::DataLossError(Cat("bad message from server: ", m.error));
    }
    result.consumed += m.message.total_size;
    const std::string_view body = m.message.body;
    switch (m.message.type) {
      case proto::kPqMsg_AuthenticationRequest:
        if (state_ != State::kAuth) return absl::DataLossError("unexpected authentication request");
        if (absl::Status s = OnAuthRequest(body, out); !s.ok()) return s;
        break;
      case proto::kPqMsg_ErrorResponse: {
        absl::StatusOr<proto::ErrorFields> fields = proto::ParseErrorFields(body);
        if (!fields.ok()) return fields.status();
        if (state_ == State::kAuth || state_ == State::kAwaitReady || state_ == State::kPreparing) {
          fatal_error_ = *std::move(fields);
          return absl::UnauthenticatedError(Cat(fatal_error_->severity, " ", fatal_error_->sqlstate,
                                                ": ", fatal_error_->message));
        }
        if (txn_sqlstate_.empty()) txn_sqlstate_ = fields->sqlstate;
        break;
      }
      case proto::kPqMsg_ReadyForQuery:
        switch (state_) {
          case State::kAuth:
            return absl::DataLossError("ReadyForQuery before authentication finished");
          case State::kAwaitReady:
            if (tx_->needs_prepare()) {
              state_ = State::kPreparing;
              tx_->AppendPrepare(out);
              break;
            }
            state_ = State::kIdle;
            result.ready = true;
            break;
          case State::kPreparing:
            state_ = State::kIdle;
            result.ready = true;
            break;
          case State::kIdle:
            return absl::DataLossError("ReadyForQuery while idle");
          case State::kInTransaction:
            state_ = State::kIdle;
            result.ready = true;
            result.txn_done = true;
            result.txn_sqlstate = std::move(txn_sqlstate_);
            txn_sqlstate_.clear();
            // One transaction per Feed call, so the caller times each.
            return result;
        }
        break;
      default:
        // Rows, CopyData, ParameterStatus, BackendKeyData, notices: counted
        // by nothing, only consumed.
        break;
    }
  }
}

}  // namespace pgb::bench
