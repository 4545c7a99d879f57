// Fuzzes both roles of SCRAM-SHA-256 (proto/scram.h) with peer messages
// taken from the input.
//
// Input: byte 0 selects the mode, the rest is split at its first NUL into
// `first` and `second` (`second` may itself hold NULs: a real SCRAM message
// never does, so the split costs no reachable input).
//   mode % 4 == 0  server: HandleClientFirst(first), HandleClientFinal(second),
//                  against a real verifier;
//   mode % 4 == 1  the same against no verifier (unknown user, mock exchange);
//   mode % 4 == 2  client: HandleServerFirst(first), HandleServerFinal(second);
//   mode % 4 == 3  server and client talking, with the client's password and
//                  an edit of its client-final taken from the input: the
//                  server may accept only the right password, unedited.
// Server and client use fixed nonces (ForTest) so that inputs can echo them.
// The client honours the server's iteration count; for speed, inputs asking
// for more than 4096 iterations are skipped (the client itself refuses more
// than kScramMaxIterations).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proto/scram.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace proto = pgb::proto;

constexpr std::string_view kPassword = "pencil";
constexpr std::string_view kClientNonce = "fyko+d2lbbFgONRv9qkxdawL";
constexpr std::string_view kServerNonce = "3rfcNHYJY1ZVvWVs7j";
// The verifier's own count only matters to mode 3's client, which runs PBKDF2.
constexpr int kVerifierIterations = 16;
constexpr int kMaxFuzzIterations = 4096;

const proto::ScramVerifier& Verifier() {
  static const proto::ScramVerifier verifier = [] {
    absl::StatusOr<std::string> text = proto::MakeScramVerifier(kPassword, kVerifierIterations);
    FUZZ_CHECK(text.ok());
    absl::StatusOr<proto::ScramVerifier> parsed = proto::ParseScramVerifier(*text);
    FUZZ_CHECK(parsed.ok());
    return *parsed;
  }();
  return verifier;
}

// True if any attribute "i=<digits>" asks for more than kMaxFuzzIterations.
bool AsksForManyIterations(std::string_view message) {
  for (size_t at = 0; at < message.size(); ++at) {
    if ((at == 0 || message[at - 1] == ',') && message.substr(at, 2) == "i=") {
      std::string_view digits = message.substr(at + 2);
      digits = digits.substr(0, digits.find(','));
      while (!digits.empty() && digits.front() == '0') digits.remove_prefix(1);
      if (digits.size() > 4) return true;
      int value = 0;
      for (char c : digits) {
        if (c < '0' || c > '9') break;
        value = value * 10 + (c - '0');
      }
      if (value > kMaxFuzzIterations) return true;
    }
  }
  return false;
}

void FuzzServer(const proto::ScramVerifier* verifier, std::string_view first,
                std::string_view second) {
  proto::ScramServer server = proto::ScramServer::ForTest(verifier, "alice", kServerNonce);
  absl::StatusOr<std::string> server_first = server.HandleClientFirst(first);
  if (!server_first.ok()) {
    // Out of order afterwards: the exchange is over.
    FUZZ_CHECK(absl::IsFailedPrecondition(server.HandleClientFinal(second).status()));
    return;
  }
  FUZZ_CHECK(server_first->starts_with("r="));
  FUZZ_CHECK(server_first->find(std::string(kServerNonce) + ",s=") != std::string::npos);
  absl::StatusOr<std::string> server_final = server.HandleClientFinal(second);
  // Nobody can produce a valid proof here without the password; an unknown
  // user never succeeds at all.
  FUZZ_CHECK(!server_final.ok());
  FUZZ_CHECK(absl::IsFailedPrecondition(server.HandleClientFirst(first).status()));
}

void FuzzClient(std::string_view first, std::string_view second) {
  if (AsksForManyIterations(first)) return;
  proto::ScramClient client = proto::ScramClient::ForTest(kPassword, kClientNonce);
  const std::string client_first = client.ClientFirst();
  FUZZ_CHECK(client_first == std::string("n,,n=,r=") + std::string(kClientNonce));
  absl::StatusOr<std::string> client_final = client.HandleServerFirst(first);
  if (!client_final.ok()) {
    FUZZ_CHECK(absl::IsFailedPrecondition(client.HandleServerFinal(second)));
    return;
  }
  FUZZ_CHECK(client_final->starts_with("c=biws,r=" + std::string(kClientNonce)));
  FUZZ_CHECK(client_final->find(",p=") != std::string::npos);
  (void)client.HandleServerFinal(second);  // forging the signature is not expected here
  FUZZ_CHECK(absl::IsFailedPrecondition(client.HandleServerFinal(second)));
}

// `first` is the client's password; `second`, if not empty, is an edit of the
// client-final-message: its first byte picks a position, the rest replaces the
// bytes there.
void FuzzExchange(std::string_view password, std::string_view edit) {
  proto::ScramServer server = proto::ScramServer::ForTest(&Verifier(), "alice", kServerNonce);
  proto::ScramClient client = proto::ScramClient::ForTest(password, kClientNonce);
  absl::StatusOr<std::string> server_first = server.HandleClientFirst(client.ClientFirst());
  FUZZ_CHECK(server_first.ok());
  absl::StatusOr<std::string> client_final = client.HandleServerFirst(*server_first);
  FUZZ_CHECK(client_final.ok());
  std::string sent = *client_final;
  if (!edit.empty()) {
    const size_t at = static_cast<unsigned char>(edit[0]) % (sent.size() + 1);
    sent.replace(at, edit.size() - 1, edit.substr(1));
  }
  absl::StatusOr<std::string> server_final = server.HandleClientFinal(sent);
  const bool genuine = password == kPassword && sent == *client_final;
  FUZZ_CHECK(server_final.ok() == genuine);
  if (genuine) FUZZ_CHECK(client.HandleServerFinal(*server_final).ok());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t nul = input.find('\0');
  const std::string_view first = input.substr(0, nul);
  const std::string_view second =
      nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);
  switch (data[0] % 4) {
    case 0:
      FuzzServer(&Verifier(), first, second);
      break;
    case 1:
      FuzzServer(nullptr, first, second);
      break;
    case 2:
      FuzzClient(first, second);
      break;
    case 3:
      FuzzExchange(first, second);
      break;
  }
  return 0;
}
