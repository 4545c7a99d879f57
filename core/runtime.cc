#include "core/runtime.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>

#include "base/http_client.h"
#include "base/log.h"
#include "base/str_cat.h"

namespace pgb {
namespace {

bool ParseIpLiteral(const std::string& text, uint16_t port, sockaddr_storage* out,
                    socklen_t* length) {
  std::memset(out, 0, sizeof(*out));
  auto* v4 = reinterpret_cast<sockaddr_in*>(out);
  if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    *length = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
  if (inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    *length = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

// Resolves once at startup: the data path never blocks on DNS.
absl::Status Resolve(const std::string& host, uint16_t port, sockaddr_storage* out,
                     socklen_t* length) {
  if (ParseIpLiteral(host, port, out, length)) return absl::OkStatus();
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    return absl::InvalidArgumentError(
        Cat("cannot resolve host \"", host, "\": ", gai_strerror(rc)));
  }
  std::memcpy(out, found->ai_addr, found->ai_addrlen);
  *length = found->ai_addrlen;
  freeaddrinfo(found);
  return absl::OkStatus();
}

proto::TlsVerify VerifyFor(BackendTls mode) {
  switch (mode) {
    case BackendTls::kRequire:
      return proto::TlsVerify::kNone;
    case BackendTls::kVerifyCa:
      return proto::TlsVerify::kChain;
    case BackendTls::kVerifyFull:
    case BackendTls::kDisable:
      break;
  }
  return proto::TlsVerify::kChainAndHost;
}

}  // namespace

const TargetRuntime* Runtime::FindTarget(std::string_view name) const {
  for (const TargetRuntime& t : targets) {
    if (t.config->name == name) return &t;
  }
  return nullptr;
}

const UserRuntime* Runtime::FindUser(std::string_view name) const {
  for (const UserRuntime& u : users) {
    if (u.config->name == name) return &u;
  }
  return nullptr;
}

bool Runtime::Allows(const UserRuntime& user, const TargetRuntime& target) {
  if (user.config->targets.empty()) return true;
  for (const std::string& name : user.config->targets) {
    if (name == target.config->name) return true;
  }
  return false;
}

absl::StatusOr<std::shared_ptr<const Runtime>> BuildRuntime(Config config) {
  auto rt = std::make_shared<Runtime>();
  rt->config = std::move(config);
  std::vector<std::string> errors;
  for (size_t i = 0; i < rt->config.listeners.size(); ++i) {
    const ListenerConfig& lc = rt->config.listeners[i];
    ListenerRuntime& l = rt->listeners.emplace_back();
    l.config = &lc;
    if (lc.local()) {
      // Bound once by the gateway (core/unix_listener.h), not by each shard.
      l.address.ss_family = AF_UNIX;
      l.address_length = sizeof(sa_family_t);
    } else if (!ParseIpLiteral(lc.address, lc.port, &l.address, &l.address_length)) {
      errors.push_back(
          Cat("listener[", i, "].address: \"", lc.address, "\" is not an IPv4 or IPv6 address"));
    }
    if (lc.tls != ListenerTls::kDisabled) {
      // A listener that accepts nothing but certificates refuses a handshake
      // without one; otherwise a certificate is checked when presented.
      const proto::TlsClientCertificates clients{
          .ca_file = lc.Allows(LoginMethod::kCertificate) ? lc.tls_client_ca_file : "",
          .required = lc.auth == std::vector<LoginMethod>{LoginMethod::kCertificate}};
      auto tls = proto::TlsContext::ForServer(lc.tls_cert_file, lc.tls_key_file, clients);
      if (!tls.ok()) {
        errors.push_back(Cat("listener[", i, "].tls_cert: ", tls.status().message()));
      } else {
        l.tls = *std::move(tls);
      }
    }
  }
  for (size_t i = 0; i < rt->config.targets.size(); ++i) {
    const TargetConfig& tc = rt->config.targets[i];
    TargetRuntime& t = rt->targets.emplace_back();
    t.config = &tc;
    t.index = i;
    t.scram_keys.resize(static_cast<size_t>(rt->config.ResolvedWorkers()));
    if (tc.local()) {
      // The configuration checked that the path fits.
      auto* un = reinterpret_cast<sockaddr_un*>(&t.address);
      un->sun_family = AF_UNIX;
      const std::string path = Cat(tc.host, "/.s.PGSQL.", tc.port);
      std::memcpy(un->sun_path, path.c_str(), path.size() + 1);
      t.address_length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    } else if (absl::Status s = Resolve(tc.host, tc.port, &t.address, &t.address_length); !s.ok()) {
      errors.push_back(Cat("target[", i, "].host: ", s.message()));
    }
    if (tc.tls != BackendTls::kDisable) {
      auto tls = proto::TlsContext::ForClient(VerifyFor(tc.tls), tc.tls_ca_file);
      if (!tls.ok()) {
        errors.push_back(Cat("target[", i, "].tls_ca: ", tls.status().message()));
      } else {
        t.tls = *std::move(tls);
      }
    }
  }
  for (size_t i = 0; i < rt->config.users.size(); ++i) {
    const UserConfig& uc = rt->config.users[i];
    auto verifier = proto::ParseScramVerifier(uc.scram_verifier);
    if (!verifier.ok()) {
      errors.push_back(Cat("user[", i, "].scram_verifier: ", verifier.status().message()));
      continue;
    }
    rt->users.push_back(UserRuntime{&uc, *std::move(verifier)});
  }
  if (!errors.empty()) return absl::InvalidArgumentError(Join(errors, "\n"));
  if (!rt->config.issuers.empty()) {
    rt->keys = std::make_shared<policy::KeyStore>(rt->config.issuers, &HttpGet);
  }
  bool masks = false;
  for (const policy::Scope& scope : rt->config.policy->scopes()) masks |= !scope.masks.empty();
  if (masks) rt->catalogs = std::make_shared<CatalogReader>(rt->config.targets);
  return std::shared_ptr<const Runtime>(std::move(rt));
}

void StartCatalogReads(const Runtime& runtime) {
  if (runtime.catalogs) runtime.catalogs->Start();
}

void StartKeyRefresh(const Runtime& runtime) {
  if (!runtime.keys) return;
  for (size_t i = 0; i < runtime.keys->size(); ++i) {
    const policy::IssuerConfig& issuer = runtime.keys->issuer(i).config();
    if (absl::Status s = runtime.keys->Refresh(i, absl::Now()); !s.ok()) {
      PGB_LOG(kWarning) << "issuer " << issuer.name << ": keys not loaded, its tokens are refused "
                        << "until they are: " << s.message();
    }
  }
  runtime.keys->StartRefresher();
}

std::string ListenerChanges(const Runtime& current, const Runtime& next) {
  const auto describe = [](const Runtime& rt) {
    std::vector<std::string> parts;
    for (const ListenerRuntime& l : rt.listeners) {
      parts.push_back(l.config->local()
                          ? Cat(l.config->SocketPath(), " mode ", l.config->socket_mode, " group ",
                                l.config->socket_group)
                          : Cat(l.config->Describe(), " tls ", static_cast<int>(l.config->tls)));
    }
    return Join(parts, ", ");
  };
  const std::string before = describe(current);
  const std::string after = describe(next);
  if (before == after && current.config.ResolvedWorkers() == next.config.ResolvedWorkers()) {
    return "";
  }
  return Cat("listeners [", before, "] -> [", after, "], workers ",
             current.config.ResolvedWorkers(), " -> ", next.config.ResolvedWorkers());
}

}  // namespace pgb
