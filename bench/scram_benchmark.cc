// SCRAM-SHA-256 costs. The client's PBKDF2 (4096 iterations, PostgreSQL's
// default) dominates a full exchange; the server's share (what the gateway
// pays per client login) is a few HMACs and is measured on its own.
#include <string>

#include "benchmark/benchmark.h"
#include "proto/scram.h"

namespace pgb::proto {
namespace {

ScramVerifier Verifier() {
  absl::StatusOr<std::string> text = MakeScramVerifier("correct horse battery staple");
  absl::StatusOr<ScramVerifier> v = ParseScramVerifier(text.value());
  return v.value();
}

// Client and server end to end, both sides in this process.
void BM_ScramExchangeEndToEnd(benchmark::State& state) {
  const ScramVerifier verifier = Verifier();
  for (auto _ : state) {
    ScramServer server(&verifier, "alice");
    ScramClient client("correct horse battery staple");
    absl::StatusOr<std::string> server_first = server.HandleClientFirst(client.ClientFirst());
    absl::StatusOr<std::string> client_final = client.HandleServerFirst(server_first.value());
    absl::StatusOr<std::string> server_final = server.HandleClientFinal(client_final.value());
    if (!client.HandleServerFinal(server_final.value()).ok())
      state.SkipWithError("exchange failed");
  }
}
BENCHMARK(BM_ScramExchangeEndToEnd)->Unit(benchmark::kMicrosecond);

// The server's side only: replays one recorded client (fixed nonces).
void BM_ScramServerSide(benchmark::State& state) {
  const ScramVerifier verifier = Verifier();
  ScramClient client = ScramClient::ForTest("correct horse battery staple", "clientnonce");
  const std::string client_first = client.ClientFirst();
  ScramServer recorder = ScramServer::ForTest(&verifier, "alice", "servernonce");
  const std::string client_final =
      client.HandleServerFirst(recorder.HandleClientFirst(client_first).value()).value();
  for (auto _ : state) {
    ScramServer server = ScramServer::ForTest(&verifier, "alice", "servernonce");
    benchmark::DoNotOptimize(server.HandleClientFirst(client_first));
    absl::StatusOr<std::string> final_message = server.HandleClientFinal(client_final);
    if (!final_message.ok()) state.SkipWithError("proof rejected");
    benchmark::DoNotOptimize(final_message);
  }
}
BENCHMARK(BM_ScramServerSide)->Unit(benchmark::kMicrosecond);

// The gateway's client side when logging in to PostgreSQL: ClientFirst plus
// HandleServerFirst (PBKDF2), at the iteration counts given.
void BM_ScramClientFirstAndServerFirst(benchmark::State& state) {
  const std::string server_first =
      "r=clientnonceservernonce,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=" + std::to_string(state.range(0));
  for (auto _ : state) {
    ScramClient client = ScramClient::ForTest("correct horse battery staple", "clientnonce");
    benchmark::DoNotOptimize(client.ClientFirst());
    absl::StatusOr<std::string> client_final = client.HandleServerFirst(server_first);
    if (!client_final.ok()) state.SkipWithError("server-first rejected");
    benchmark::DoNotOptimize(client_final);
  }
}
BENCHMARK(BM_ScramClientFirstAndServerFirst)->Arg(4096)->Arg(1)->Unit(benchmark::kMicrosecond);

// ClientFirst alone with a fresh random nonce (RAND_bytes + base64).
void BM_ScramClientFirst(benchmark::State& state) {
  for (auto _ : state) {
    ScramClient client("pw");
    benchmark::DoNotOptimize(client.ClientFirst());
  }
}
BENCHMARK(BM_ScramClientFirst);

}  // namespace
}  // namespace pgb::proto
