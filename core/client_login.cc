#include "core/client_login.h"

#include <openssl/crypto.h>

#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "base/log.h"
#include "base/str_cat.h"
#include "core/unix_listener.h"
#include "policy/jwt.h"
#include "proto/error_status.h"
#include "proto/protocol.h"
#include "proto/startup.h"
#include "proto/wire.h"

namespace pgb {
namespace {

namespace sqlstate = proto::sqlstate;
using proto::Direction;

// Login-phase messages are small; anything bigger is refused (PostgreSQL caps
// authentication messages at PG_MAX_AUTH_TOKEN_LENGTH, 65535).
constexpr uint32_t kMaxLoginMessage = 65535;

}  // namespace

ClientLogin::ClientLogin(const Runtime& runtime, const ListenerRuntime& listener,
                         policy::TokenVerifier* verifier, Channel& channel,
                         std::string session_name, std::optional<uid_t> peer_uid)
    : runtime_(runtime),
      listener_(listener),
      verifier_(verifier),
      channel_(channel),
      session_name_(std::move(session_name)),
      peer_uid_(peer_uid) {}

std::string ClientLogin::Describe() const {
  return user_name_.empty() ? session_name_ : Cat(session_name_, " user=", LogSafe(user_name_));
}

absl::StatusOr<ClientLogin::Step> ClientLogin::Feed(std::string& staging) {
  while (!staging.empty()) {
    absl::StatusOr<Step> step;
    switch (state_) {
      case State::kStartup:
        step = OnStartupPacket(staging);
        break;
      case State::kSaslInitial:
      case State::kSaslContinue:
        step = OnSaslMessage(staging);
        break;
      case State::kToken:
        step = OnTokenMessage(staging);
        break;
      case State::kTls:
        // Plaintext while a TLS handshake is pending is impossible: bytes are
        // only ever pushed into the TLS stream then.
        return Step::kNeedMore;
      case State::kDone:
        // The client may not send anything while the gateway logs in to the
        // database (libpq never does); hold at most one message's worth.
        if (staging.size() > kMaxLoginMessage) {
          return proto::ErrorStatus(sqlstate::kProtocolViolation,
                                    "unexpected data from the client during login");
        }
        return Step::kNeedMore;
    }
    // kNeedMore after progress (an 'N' answered, a SASL step done) goes on
    // with what is left; before progress it waits for more bytes.
    if (!step.ok() || *step != Step::kNeedMore || state_ == State::kDone) return step;
    if (!progressed_) return step;
    progressed_ = false;
  }
  return Step::kNeedMore;
}

void ClientLogin::OnTlsEstablished() {
  if (state_ == State::kTls) state_ = State::kStartup;
}

absl::StatusOr<ClientLogin::Step> ClientLogin::OnStartupPacket(std::string& staging) {
  const proto::StartupResult r = proto::DecodeStartupPacket(staging);
  if (r.status == proto::DecodeStatus::kNeedMore) return Step::kNeedMore;
  if (r.status == proto::DecodeStatus::kError) {
    if (r.silent) {
      // PostgreSQL only logs these and closes; so do we (the client, an SSL
      // client among them, must not read an answer PostgreSQL never sends).
      PGB_LOG(kInfo) << Describe() << ": bad startup packet, closed without an answer: " << r.error;
      return Step::kQuit;
    }
    PGB_LOG(kInfo) << Describe() << ": bad startup packet: " << r.error;
    return proto::ErrorStatus(r.sqlstate.empty() ? sqlstate::kProtocolViolation : r.sqlstate,
                              r.error);
  }
  const proto::StartupPacket& p = r.packet;
  using Kind = proto::StartupPacket::Kind;
  if (p.kind == Kind::kSslRequest || p.kind == Kind::kGssEncRequest) {
    // One request of each kind, before anything else, as PostgreSQL allows.
    bool& answered = p.kind == Kind::kSslRequest ? ssl_answered_ : gss_answered_;
    if (answered || channel_.Tls() != nullptr) {
      return proto::ErrorStatus(sqlstate::kProtocolViolation,
                                "unsupported frontend protocol: encryption was already negotiated");
    }
    // Bytes after an encryption request, before our answer, would be read as
    // if they had been encrypted (CVE-2021-23214): refuse them. PostgreSQL
    // sends its 'N' first, then the FATAL; so do we. (Before an 'S' we refuse
    // at once: PostgreSQL would first finish a TLS handshake.)
    if (staging.size() != p.total_size) {
      const bool encrypting = p.kind == Kind::kSslRequest && listener_.tls;
      if (!encrypting) channel_.SendToClient("N");
      return proto::ErrorStatus(
          sqlstate::kProtocolViolation,
          p.kind == Kind::kSslRequest ? "received unencrypted data after SSL request"
                                      : "received unencrypted data after GSSAPI encryption request",
          "This could be either a client-software bug or evidence of an attempted "
          "man-in-the-middle attack.");
    }
    staging.clear();
    answered = true;
    if (p.kind == Kind::kSslRequest && listener_.tls) {
      channel_.SendToClient("S");
      if (absl::Status s = channel_.StartTls(); !s.ok()) {
        PGB_LOG(kError) << Describe() << ": cannot start TLS: " << s.message();
        return Step::kQuit;
      }
      state_ = State::kTls;
      return Step::kTlsStarted;
    }
    channel_.SendToClient("N");
    progressed_ = true;
    return Step::kNeedMore;
  }
  if (p.kind == Kind::kCancelRequest) {
    cancel_pid_ = p.cancel_pid;
    cancel_key_ = p.cancel_key;
    return Step::kCancel;
  }
  // StartupMessage.
  const proto::TlsStream* tls = channel_.Tls();
  if (listener_.config->tls == ListenerTls::kRequired && tls == nullptr) {
    return proto::ErrorStatus(sqlstate::kInvalidAuthorizationSpecification,
                              "this gateway listener accepts only TLS connections", "",
                              "Connect with sslmode=require or sslmode=verify-full.");
  }
  if (staging.size() != p.total_size) {
    return proto::ErrorStatus(sqlstate::kProtocolViolation,
                              "unexpected data after the startup packet");
  }
  const proto::NegotiationNeed need = proto::CheckProtocolNegotiation(p);
  std::string reply;
  if (need.needed) {
    proto::AppendNegotiateProtocolVersion(reply, need.newest_minor_supported,
                                          need.unrecognized_options);
  }
  absl::StatusOr<ClientStartup> startup = ReadClientStartup(p);
  if (!startup.ok()) {
    for (const auto& [name, value] : p.params) {  // for the audit's failed-login record
      if (name == "user") user_name_ = std::string(value);
    }
    return startup.status();
  }
  startup_ = *std::move(startup);
  user_name_ = startup_.user;
  staging.clear();
  const ListenerConfig& listener = *listener_.config;
  if (listener.Allows(LoginMethod::kCertificate) && tls != nullptr &&
      tls->PeerCertificateVerified()) {
    channel_.SendToClient(std::move(reply));  // NegotiateProtocolVersion, if any
    return AcceptCertificate();
  }
  if (listener.Allows(LoginMethod::kPeer) && peer_uid_.has_value()) {
    const std::optional<std::string> os_user = OsUserName(*peer_uid_);
    if (os_user.has_value() && *os_user == user_name_) {
      channel_.SendToClient(std::move(reply));  // NegotiateProtocolVersion, if any
      return AcceptPeer(*os_user);
    }
    if (listener.auth == std::vector<LoginMethod>{LoginMethod::kPeer}) {
      PGB_LOG(kInfo) << Describe() << ": refused, the connecting process runs as OS user "
                     << (os_user ? LogSafe(*os_user) : Cat("uid ", *peer_uid_));
      return proto::ErrorStatus(
          sqlstate::kInvalidAuthorizationSpecification,
          Cat("peer authentication failed for user \"", user_name_, "\""),
          os_user
              ? Cat("The connecting process runs as OS user \"", *os_user, "\".")
              : Cat("The connecting process runs as uid ", *peer_uid_, ", which has no user name."),
          "Connect with user set to your OS user name.");
    }
  }
  if (listener.auth == std::vector<LoginMethod>{LoginMethod::kCertificate}) {
    return proto::ErrorStatus(sqlstate::kInvalidAuthorizationSpecification,
                              "this gateway listener accepts only logins with a client certificate",
                              "", "Connect with sslmode=require, sslcert and sslkey.");
  }
  user_ = runtime_.FindUser(user_name_);
  if (user_ == nullptr || !listener.Allows(LoginMethod::kPassword)) {
    user_ = nullptr;
    // Not a [[user]] of this listener: the password is a token, if tokens
    // are accepted here. A token is a bearer credential: never in clear over
    // a network (a Unix-domain socket never leaves the host: docs/security.md).
    if (listener.Allows(LoginMethod::kToken) && verifier_ != nullptr) {
      if (tls == nullptr && !listener.local()) {
        return proto::ErrorStatus(sqlstate::kInvalidAuthorizationSpecification,
                                  "token login requires TLS: this connection is not encrypted", "",
                                  "Connect with sslmode=require (or verify-full).");
      }
      proto::AppendAuthenticationCleartextPassword(reply);
      channel_.SendToClient(std::move(reply));
      state_ = State::kToken;
      return Step::kNeedMore;
    }
  }
  // An unknown user runs the same exchange against a made-up verifier and
  // fails at the proof, so user names cannot be probed.
  scram_ = std::make_unique<proto::ScramServer>(user_ ? &user_->verifier : nullptr, user_name_);
  // Over TLS, offer channel binding first, as PostgreSQL does: libpq then
  // binds the login to our certificate (channel_binding=prefer/require).
  if (tls != nullptr && !listener_.tls->server_end_point().empty()) {
    proto::AppendAuthenticationSasl(reply, {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"});
  } else {
    proto::AppendAuthenticationSasl(reply, {"SCRAM-SHA-256"});
  }
  channel_.SendToClient(std::move(reply));
  state_ = State::kSaslInitial;
  return Step::kNeedMore;
}

absl::StatusOr<bool> ClientLogin::NextPasswordMessage(std::string_view staging,
                                                      std::string_view expected,
                                                      proto::MessageView* msg) {
  // Only a PasswordMessage (or Terminate) frames here: any other type is
  // refused at its first byte, as PostgreSQL's recv_password_packet does.
  const proto::MessageResult m =
      proto::DecodeMessage(staging, Direction::kFrontendLogin, kMaxLoginMessage);
  if (m.status == proto::DecodeStatus::kNeedMore) return false;
  if (m.status == proto::DecodeStatus::kError) {
    return proto::ErrorStatus(sqlstate::kProtocolViolation,
                              Cat(m.error, " (expected ", expected, ")"));
  }
  *msg = m.message;
  return true;
}

absl::StatusOr<ClientLogin::Step> ClientLogin::OnSaslMessage(std::string& staging) {
  proto::MessageView msg;
  absl::StatusOr<bool> complete = NextPasswordMessage(staging, "SASL response", &msg);
  if (!complete.ok()) return complete.status();
  if (!*complete) return Step::kNeedMore;
  if (msg.type == proto::kPqMsg_Terminate) return Step::kQuit;
  const absl::Status failed_login =
      proto::ErrorStatus(sqlstate::kInvalidPassword,
                         Cat("password authentication failed for user \"", user_name_, "\""));
  const proto::TlsStream* tls = channel_.Tls();
  if (state_ == State::kSaslInitial) {
    absl::StatusOr<proto::SaslInitialResponse> initial = proto::ParseSaslInitialResponse(msg.body);
    if (!initial.ok()) {
      return proto::ErrorStatus(sqlstate::kProtocolViolation,
                                std::string(initial.status().message()));
    }
    const bool binding_offered = tls != nullptr && !listener_.tls->server_end_point().empty();
    const bool plus = initial->mechanism == "SCRAM-SHA-256-PLUS";
    if (initial->mechanism != "SCRAM-SHA-256" && !(plus && binding_offered)) {
      return proto::ErrorStatus(sqlstate::kProtocolViolation,
                                "client selected an invalid SASL authentication mechanism");
    }
    if (binding_offered) scram_->UseChannelBinding(listener_.tls->server_end_point(), plus);
    absl::StatusOr<std::string> server_first = scram_->HandleClientFirst(initial->data);
    if (!server_first.ok()) {
      PGB_LOG_AT(failure_log_level_)
          << Describe() << ": SCRAM client-first refused: " << server_first.status().message();
      return failed_login;
    }
    std::string reply;
    proto::AppendAuthenticationSaslContinue(reply, *server_first);
    channel_.SendToClient(std::move(reply));
    state_ = State::kSaslContinue;
    staging.erase(0, msg.total_size);
    progressed_ = true;
    return Step::kNeedMore;
  }
  absl::StatusOr<std::string> server_final = scram_->HandleClientFinal(msg.body);
  staging.erase(0, msg.total_size);
  scram_.reset();
  if (!server_final.ok() || user_ == nullptr) {
    PGB_LOG_AT(failure_log_level_) << Describe() << ": authentication failed"
                                   << (user_ == nullptr ? " (no such gateway user)" : "");
    return failed_login;
  }
  std::string reply;
  proto::AppendAuthenticationSaslFinal(reply, *server_final);
  channel_.SendToClient(std::move(reply));
  identity_.method = policy::AuthMethod::kLocalPassword;
  identity_.subject = user_name_;
  identity_.groups = user_->config->groups;
  return Authorize();
}

absl::StatusOr<ClientLogin::Step> ClientLogin::OnTokenMessage(std::string& staging) {
  // The length alone refuses a token far over the verifier's cap, before the
  // gateway buffers it (the 5 bytes: the message's length word and the NUL).
  if (staging.size() >= 5 && staging[0] == proto::kPqMsg_PasswordMessage &&
      proto::LoadBigEndian32(staging.data() + 1) > policy::kMaxTokenSize + 5) {
    PGB_LOG_AT(failure_log_level_)
        << Describe() << ": token refused (format): over " << policy::kMaxTokenSize << " bytes";
    return proto::ErrorStatus(
        sqlstate::kInvalidPassword,
        Cat("token refused (format): token is longer than ", policy::kMaxTokenSize, " bytes"));
  }
  proto::MessageView msg;
  absl::StatusOr<bool> complete = NextPasswordMessage(staging, "password message", &msg);
  if (!complete.ok()) return complete.status();
  if (!*complete) return Step::kNeedMore;
  if (msg.type == proto::kPqMsg_Terminate) return Step::kQuit;
  std::string_view token = msg.body;
  if (!token.empty() && token.back() == '\0') token.remove_suffix(1);
  policy::TokenVerdict verdict = verifier_->Verify(token, user_name_, absl::Now());
  OPENSSL_cleanse(staging.data(), msg.total_size);
  staging.erase(0, msg.total_size);
  if (!verdict.ok()) {
    const policy::TokenRefusal& refusal = *verdict.refusal;
    const std::string check(policy::TokenCheckName(refusal.check));
    PGB_LOG_AT(failure_log_level_)
        << Describe() << ": token refused (" << check << ")"
        << (verdict.issuer_name.empty() ? "" : " issuer=" + verdict.issuer_name) << ": "
        << refusal.reason;
    return proto::ErrorStatus(
        refusal.sqlstate(), Cat("token refused (", check, "): ", refusal.reason), "",
        refusal.retry_later() ? "The gateway is fetching the issuer's keys; retry shortly." : "");
  }
  identity_ = std::move(verdict.identity);
  if (identity_.expires_at_unix != 0) {
    absl::Duration grace = absl::ZeroDuration();
    for (const policy::IssuerConfig& issuer : runtime_.config.issuers) {
      if (issuer.name == verdict.issuer_name) grace = issuer.session_grace;
    }
    identity_ends_unix_ = identity_.expires_at_unix + absl::ToInt64Seconds(grace);
  }
  // The user name is the subject's from here on (user_match = "ignore" may
  // have let any startup user through). AuthenticationOk goes to the client
  // once the database has accepted the gateway, as after SCRAM.
  user_name_ = identity_.subject;
  return Authorize();
}

// As PostgreSQL's peer authentication: the kernel says which OS user the
// connecting process runs as, and the startup user is that name. No groups:
// scopes name peer identities by subject (sources = ["peer"]).
absl::StatusOr<ClientLogin::Step> ClientLogin::AcceptPeer(std::string os_user) {
  identity_.method = policy::AuthMethod::kPeer;
  identity_.subject = std::move(os_user);
  user_name_ = identity_.subject;
  return Authorize();
}

// As PostgreSQL's cert authentication: the certificate is the proof. Its
// subject is the first SAN URI (a SPIFFE ID, say), else the subject CN; its
// groups are the subject's OUs; it is good until notAfter.
absl::StatusOr<ClientLogin::Step> ClientLogin::AcceptCertificate() {
  const proto::TlsStream& tls = *channel_.Tls();
  std::string subject;
  for (const std::string& name : tls.PeerCertificateAltNames()) {
    if (name.starts_with("URI:")) {
      subject = name.substr(4);
      break;
    }
  }
  if (subject.empty()) {
    std::vector<std::string> cn = tls.PeerCertificateSubjectField("CN");
    if (!cn.empty()) subject = std::move(cn.front());
  }
  if (subject.empty()) {
    return proto::ErrorStatus(sqlstate::kInvalidAuthorizationSpecification,
                              "the client certificate names no subject (no SAN URI, no CN)");
  }
  if (listener_.config->certificate_user_must_match && user_name_ != subject) {
    PGB_LOG(kInfo) << Describe() << ": refused, certificate subject " << LogSafe(subject)
                   << " is not the startup user";
    return proto::ErrorStatus(sqlstate::kInvalidAuthorizationSpecification,
                              Cat("certificate authentication failed for user \"", user_name_,
                                  "\": the client certificate is for \"", subject, "\""),
                              "", "Connect with user set to the certificate's subject.");
  }
  identity_.method = policy::AuthMethod::kCertificate;
  identity_.subject = std::move(subject);
  identity_.groups = tls.PeerCertificateSubjectField("OU");
  identity_.expires_at_unix = tls.PeerCertificateNotAfterUnix();
  identity_ends_unix_ = identity_.expires_at_unix;
  user_name_ = identity_.subject;
  return Authorize();
}

absl::StatusOr<ClientLogin::Step> ClientLogin::Authorize() {
  target_ = runtime_.FindTarget(startup_.database);
  if (target_ == nullptr) {
    return proto::ErrorStatus(sqlstate::kInvalidCatalogName,
                              Cat("target \"", startup_.database, "\" does not exist"), "",
                              "Use the name of a configured target as the database name.");
  }
  if (user_ != nullptr && !Runtime::Allows(*user_, *target_)) {
    return proto::ErrorStatus(
        sqlstate::kInsufficientPrivilege,
        Cat("user \"", user_name_, "\" may not use target \"", startup_.database, "\""));
  }
  // Deny by default: an identity that no scope covers for this target does
  // not get a database connection at all.
  policy_ = runtime_.config.policy;
  scope_ = policy_->MatchScope(identity_, target_->config->name);
  if (scope_ == nullptr) {
    const policy::Decision d = policy::Policy::NoScope(identity_, target_->config->name);
    PGB_LOG(kInfo) << Describe() << ": refused, " << d.reason;
    return proto::ErrorStatus(sqlstate::kInsufficientPrivilege, policy::DecisionMessage(d), "",
                              d.hint);
  }
  state_ = State::kDone;
  return Step::kAuthenticated;
}

}  // namespace pgb
