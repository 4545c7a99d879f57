// Fuzzes the startup-phase decoder (proto/startup.h): the first bytes an
// unauthenticated client sends. Invariants checked on every input:
//   - kOk: 8 <= total_size <= min(input size, 10004); parameter views lie in
//     the packet; names unique and non-empty; "user" present and non-empty;
//     CheckProtocolNegotiation's option views are "_pq_." names of the packet;
//     the packet alone decodes the same, and one byte less is kNeedMore.
//   - kNeedMore: only for inputs shorter than kMaxStartupPacketLength.
//   - kError: text and one of the three SQLSTATEs PostgreSQL uses here;
//     silent (PostgreSQL sends nothing) exactly when the length word is out
//     of range or a CancelRequest's length is not 16, both 08P01.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string_view>

#include "proto/protocol.h"
#include "proto/startup.h"
#include "proto/wire.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using pgb::proto::DecodeStatus;
using pgb::proto::StartupPacket;
using pgb::proto::StartupResult;

bool Within(std::string_view inner, std::string_view outer) {
  return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}

void CheckOk(std::string_view input, const StartupResult& r) {
  const StartupPacket& p = r.packet;
  FUZZ_CHECK(p.total_size >= 8);
  FUZZ_CHECK(p.total_size <= input.size());
  FUZZ_CHECK(p.total_size <= pgb::proto::kMaxStartupPacketLength);
  const std::string_view packet = input.substr(0, p.total_size);
  switch (p.kind) {
    case StartupPacket::Kind::kSslRequest:
    case StartupPacket::Kind::kGssEncRequest:
      FUZZ_CHECK(p.total_size == 8);
      FUZZ_CHECK(p.params.empty());
      break;
    case StartupPacket::Kind::kCancelRequest:
      FUZZ_CHECK(p.total_size == 16);
      FUZZ_CHECK(p.params.empty());
      break;
    case StartupPacket::Kind::kStartup: {
      FUZZ_CHECK((static_cast<uint32_t>(p.protocol_version) >> 16) == 3);
      std::set<std::string_view> names;
      bool has_user = false;
      for (const auto& [name, value] : p.params) {
        FUZZ_CHECK(!name.empty());
        FUZZ_CHECK(Within(name, packet.substr(8)));
        FUZZ_CHECK(Within(value, packet.substr(8)));
        FUZZ_CHECK(name.find('\0') == std::string_view::npos);
        FUZZ_CHECK(value.find('\0') == std::string_view::npos);
        FUZZ_CHECK(names.insert(name).second);
        if (name == "user") has_user = !value.empty();
      }
      FUZZ_CHECK(has_user);
      break;
    }
  }
  const pgb::proto::NegotiationNeed need = pgb::proto::CheckProtocolNegotiation(p);
  FUZZ_CHECK(need.newest_minor_supported == 0);
  for (std::string_view option : need.unrecognized_options) {
    FUZZ_CHECK(option.starts_with("_pq_."));
    FUZZ_CHECK(Within(option, packet));
  }
  if (p.kind != StartupPacket::Kind::kStartup) {
    FUZZ_CHECK(!need.needed);
  } else {
    const bool minor_above = (static_cast<uint32_t>(p.protocol_version) & 0xffff) != 0;
    FUZZ_CHECK(need.needed == (minor_above || !need.unrecognized_options.empty()));
  }

  // Trailing bytes do not matter; one byte short of the packet is "need more".
  const StartupResult alone = pgb::proto::DecodeStartupPacket(packet);
  FUZZ_CHECK(alone.status == DecodeStatus::kOk);
  FUZZ_CHECK(alone.packet.total_size == p.total_size);
  FUZZ_CHECK(alone.packet.params.size() == p.params.size());
  const StartupResult short_one =
      pgb::proto::DecodeStartupPacket(packet.substr(0, packet.size() - 1));
  FUZZ_CHECK(short_one.status == DecodeStatus::kNeedMore);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const StartupResult r = pgb::proto::DecodeStartupPacket(input);
  switch (r.status) {
    case DecodeStatus::kNeedMore:
      FUZZ_CHECK(size < pgb::proto::kMaxStartupPacketLength);
      FUZZ_CHECK(r.error.empty());
      break;
    case DecodeStatus::kError: {
      FUZZ_CHECK(!r.error.empty());
      FUZZ_CHECK(r.sqlstate == "08P01" || r.sqlstate == "0A000" || r.sqlstate == "28000");
      FUZZ_CHECK(size >= 4);
      const uint32_t length = pgb::proto::LoadBigEndian32(input.data());
      const bool length_out_of_range = length < 8 || length > pgb::proto::kMaxStartupPacketLength;
      const bool bad_cancel = !length_out_of_range && size >= 8 &&
                              static_cast<int32_t>(pgb::proto::LoadBigEndian32(input.data() + 4)) ==
                                  pgb::proto::kCancelRequestCode &&
                              length != 16;
      FUZZ_CHECK(r.silent == (length_out_of_range || bad_cancel));
      if (r.silent) FUZZ_CHECK(r.sqlstate == "08P01");
      break;
    }
    case DecodeStatus::kOk:
      CheckOk(input, r);
      break;
  }
  return 0;
}
