// What the shards read while they run: the Config plus everything derived from
// it once at startup (TLS contexts, resolved target addresses, parsed SCRAM
// verifiers). Immutable after BuildRuntime and shared read-only by all shards.
// `check-config` builds one too, so a bad certificate or an unresolvable host
// is reported before the service starts.
//
//   PGB_ASSIGN_OR_RETURN(std::shared_ptr<const Runtime> rt, BuildRuntime(config));
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/config.h"
#include "proto/scram.h"
#include "proto/tls.h"

namespace pgb {

struct ListenerRuntime {
  const ListenerConfig* config;
  sockaddr_storage address{};
  socklen_t address_length = 0;
  std::shared_ptr<const proto::TlsContext> tls;  // null when tls = "disabled"
};

struct TargetRuntime {
  const TargetConfig* config;
  size_t index;  // position in Runtime::targets
  sockaddr_storage address{};
  socklen_t address_length = 0;
  std::shared_ptr<const proto::TlsContext> tls;  // null when tls = "disable"
};

struct UserRuntime {
  const UserConfig* config;
  proto::ScramVerifier verifier;
};

struct Runtime {
  Config config;
  std::vector<ListenerRuntime> listeners;
  std::vector<TargetRuntime> targets;
  std::vector<UserRuntime> users;

  const TargetRuntime* FindTarget(std::string_view name) const;
  const UserRuntime* FindUser(std::string_view name) const;
  // Whether `user` may use `target` (the user's targets list, empty = all).
  static bool Allows(const UserRuntime& user, const TargetRuntime& target);
};

// Takes ownership of config; reports every problem found, one per line.
absl::StatusOr<std::shared_ptr<const Runtime>> BuildRuntime(Config config);

}  // namespace pgb
