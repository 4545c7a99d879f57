// Fuzzes the relay with its stages (request pipeline, statement gate, result
// masking) on arbitrary bytes from both sides: a hostile client and a
// database that answers anything in any order. Invariants: no crash or UB;
// what reaches either side is whole, well-framed messages up to the first
// failure; after a failure the relay is not fed again (as the session ends).
//
// Input: byte 0 picks a scope (bit 0: masks on email); then chunks of
// [direction: low bit 0 client, 1 database][length][bytes].
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/relay.h"
#include "fuzz_check.h"
#include "proto/frame.h"

namespace {

using pgb::Side;

// Records what goes each way; checks framing at the end.
class Sink : public pgb::RelaySink {
 public:
  void Forward(Side to, const char* data, size_t n, int32_t) override { Out(to).append(data, n); }
  void Send(Side to, std::string bytes) override { Out(to) += bytes; }
  void Recycle(int32_t) override {}
  std::string& Out(Side to) { return to == Side::kClient ? to_client : to_database; }
  std::string to_client;
  std::string to_database;
};

// Every message in `stream` decodes; a tail may be cut (the rest of a
// message still being relayed).
void CheckFramed(const std::string& stream, pgb::proto::Direction direction) {
  std::string_view rest = stream;
  while (!rest.empty()) {
    const pgb::proto::MessageResult m =
        pgb::proto::DecodeMessage(rest, direction, pgb::proto::kDefaultMaxMessageLength);
    FUZZ_CHECK(m.status != pgb::proto::DecodeStatus::kError);
    if (m.status == pgb::proto::DecodeStatus::kNeedMore) return;
    rest.remove_prefix(m.message.total_size);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  pgb::policy::Scope scope;
  scope.name = "fuzz";
  scope.subjects = {"*"};
  scope.profile = pgb::policy::Profile::kReadWrite;
  if (data[0] & 1) scope.masks.push_back(pgb::policy::ColumnMask{.column = "email"});
  std::vector<pgb::policy::Scope> scopes;
  scopes.push_back(std::move(scope));
  auto policy = std::make_shared<const pgb::policy::Policy>(std::move(scopes));
  pgb::policy::Identity identity;
  identity.subject = "fuzzer";
  static pgb::policy::AnalysisCache cache(1 << 20);
  pgb::SessionAudit audit(nullptr, sockaddr_storage{});
  Sink sink;
  pgb::Relay relay(policy, *policy->MatchScope(identity, "app"), identity, "app", "owner", cache,
                   pgb::Relay::Limits{1 << 16, 1 << 16}, audit, sink);
  size_t pos = 1;
  std::vector<std::unique_ptr<std::string>> buffers;
  while (pos + 2 <= size) {
    const Side from = (data[pos] & 1) ? Side::kBackend : Side::kClient;
    const size_t n = std::min<size_t>(data[pos + 1], size - pos - 2);
    // The relay may rewrite a row where it lies: give it its own copy.
    buffers.push_back(
        std::make_unique<std::string>(reinterpret_cast<const char*>(data) + pos + 2, n));
    pos += 2 + n;
    if (!relay.Feed(from, buffers.back()->data(), n, -1).ok()) break;
  }
  CheckFramed(sink.to_client, pgb::proto::Direction::kBackend);
  CheckFramed(sink.to_database, pgb::proto::Direction::kFrontend);
  return 0;
}
