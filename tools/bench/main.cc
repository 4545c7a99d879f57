// pgbastion-bench: a PostgreSQL load generator that speaks the v3 protocol
// itself over io_uring, one ring per thread. See BenchUsage() and
// bench/README.md.
#include <netdb.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/str_cat.h"
#include "base/thread_name.h"
#include "proto/tls.h"
#include "tools/bench/options.h"
#include "tools/bench/report.h"
#include "tools/bench/worker.h"

namespace pgb::bench {
namespace {

volatile sig_atomic_t g_interrupted = 0;
extern "C" void OnSignal(int) { g_interrupted = 1; }

absl::Status Resolve(const BenchOptions& o, sockaddr_storage* out, socklen_t* len) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int rc = ::getaddrinfo(o.host.c_str(), o.port.c_str(), &hints, &res);
  if (rc != 0) {
    return absl::UnavailableError(Cat(o.host, ": ", ::gai_strerror(rc)));
  }
  std::memcpy(out, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  ::freeaddrinfo(res);
  return absl::OkStatus();
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

int Main(int argc, char** argv) {
  absl::StatusOr<BenchOptions> parsed = ParseBenchOptions(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "pgbastion-bench: %s\n(try --help)\n",
                 std::string(parsed.status().message()).c_str());
    return 2;
  }
  const BenchOptions& o = *parsed;
  if (o.help) {
    std::fputs(BenchUsage(), stdout);
    return 0;
  }
  Credential credential;
  if (!o.token_env.empty()) {
    const char* token = std::getenv(o.token_env.c_str());
    if (token == nullptr || *token == '\0') {
      std::fprintf(stderr, "pgbastion-bench: --token-env %s: the variable is not set or empty\n",
                   o.token_env.c_str());
      return 2;
    }
    credential = {token, Credential::Kind::kToken};
  } else {
    const char* password = std::getenv(o.password_env.c_str());
    credential = {password ? password : "", Credential::Kind::kPassword};
  }

  // One immutable SSL_CTX for all threads (SSL_new only takes a reference).
  std::shared_ptr<const proto::TlsContext> tls_context;
  if (o.sslmode != SslMode::kDisable) {
    const proto::TlsVerify verify = o.sslmode == SslMode::kVerifyFull
                                        ? proto::TlsVerify::kChainAndHost
                                    : o.sslmode == SslMode::kVerifyCa ? proto::TlsVerify::kChain
                                                                      : proto::TlsVerify::kNone;
    absl::StatusOr<std::shared_ptr<const proto::TlsContext>> made =
        proto::TlsContext::ForClient(verify, o.sslrootcert);
    if (!made.ok()) {
      // A missing or unreadable --sslrootcert: the command line is wrong.
      std::fprintf(stderr, "pgbastion-bench: --sslrootcert: %s\n",
                   std::string(made.status().message()).c_str());
      return 2;
    }
    tls_context = *std::move(made);
  }

  sockaddr_storage address{};
  socklen_t address_len = 0;
  if (absl::Status s = Resolve(o, &address, &address_len); !s.ok()) {
    std::fprintf(stderr, "pgbastion-bench: %s\n", std::string(s.message()).c_str());
    return 1;
  }

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  RunControl control;
  const Clock::time_point start = Clock::now();
  control.measure_start = start + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(o.warmup_s));
  if (o.transactions > 0) {
    control.limited = true;
    control.budget = o.transactions;
    control.deadline = Clock::time_point::max() - std::chrono::hours(1);
  } else {
    control.deadline = control.measure_start + std::chrono::duration_cast<Clock::duration>(
                                                   std::chrono::duration<double>(o.duration_s));
  }

  std::vector<std::unique_ptr<BenchWorker>> workers;
  for (int t = 0; t < o.threads; ++t) {
    const int n = o.clients / o.threads + (t < o.clients % o.threads ? 1 : 0);
    workers.push_back(std::make_unique<BenchWorker>(o, control, address, address_len, n, credential,
                                                    tls_context.get()));
  }
  std::atomic<int> running{o.threads};
  std::vector<std::thread> threads;
  for (size_t t = 0; t < workers.size(); ++t) {
    threads.emplace_back([&running, t, worker = workers[t].get()] {
      pgb::NameThisThread(pgb::Cat("bench-", t));
      worker->Run();
      running.fetch_sub(1);
    });
  }

  // The main thread only watches: Ctrl-C, progress lines, the end.
  Clock::time_point next_progress = o.progress_s > 0
                                        ? start + std::chrono::duration_cast<Clock::duration>(
                                                      std::chrono::duration<double>(o.progress_s))
                                        : Clock::time_point::max();
  int64_t last_total = 0;
  Clock::time_point last_time = control.measure_start;
  while (running.load() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (g_interrupted) control.stop = true;
    const Clock::time_point now = Clock::now();
    if (now >= next_progress) {
      int64_t total = 0;
      for (auto& w : workers) total += w->progress();
      const double since = Seconds(now - std::max(last_time, control.measure_start));
      const double overall = Seconds(now - control.measure_start);
      std::fprintf(stderr,
                   "progress: %.1f s, %lld transactions, %.1f tps (last %.1f s: %.1f tps)\n",
                   Seconds(now - start), static_cast<long long>(total),
                   overall > 0 ? static_cast<double>(total) / overall : 0.0, since,
                   since > 0 ? static_cast<double>(total - last_total) / since : 0.0);
      last_total = total;
      last_time = now;
      next_progress +=
          std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.progress_s));
    }
  }
  for (auto& t : threads) t.join();

  WorkerStats merged;
  Clock::time_point last = control.measure_start;
  for (auto& w : workers) {
    const WorkerStats& s = w->stats();
    merged.histogram.Merge(s.histogram);
    for (const auto& [state, n] : s.errors) merged.errors[state] += n;
    merged.transactions += s.transactions;
    merged.warmup_transactions += s.warmup_transactions;
    last = std::max(last, s.last_completion);
  }
  std::string fatal;
  {
    std::lock_guard<std::mutex> lock(control.fatal_mu);
    fatal = control.fatal;
  }
  const BenchReport report =
      MakeReport(o, merged, Seconds(last - control.measure_start), g_interrupted != 0, fatal);
  if (!fatal.empty()) {
    std::fprintf(stderr, "pgbastion-bench: %s\n", fatal.c_str());
    if (o.json) std::fputs(ReportJson(report).c_str(), stdout);
    return 1;
  }
  std::fputs((o.json ? ReportJson(report) : ReportText(report)).c_str(), stdout);
  return 0;
}

}  // namespace
}  // namespace pgb::bench

int main(int argc, char** argv) { return pgb::bench::Main(argc, argv); }
