// One benchmark thread: its own io_uring (core/ring.h), its share of the
// connections, its own histogram and error counts. Nothing is shared with other
// threads but the read-mostly RunControl (stop flag, transaction budget), the
// immutable TLS context and each worker's relaxed progress counter.
//
// With TLS each connection sends an SSLRequest, expects the single byte 'S',
// then runs a proto::TlsStream over memory buffers: the ring receives
// ciphertext into the slot's landing buffer, the stream decrypts it into the
// same receive buffer the plaintext path uses, and what the protocol state
// machine appends is encrypted just before each send. The sockets stay on
// io_uring; OpenSSL never sees a file descriptor.
//
//   RunControl control(...);
//   BenchWorker w(options, control, address, address_len, n_clients, credential, tls_context);
//   std::thread t([&] { w.Run(); });
//   ... control.stop = true; t.join(); report from w.stats()
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/ring.h"
#include "proto/scram.h"
#include "proto/tls.h"
#include "tools/bench/connection.h"
#include "tools/bench/histogram.h"
#include "tools/bench/options.h"
#include "tools/bench/workload.h"

namespace pgb::bench {

using Clock = std::chrono::steady_clock;

struct RunControl {
  Clock::time_point measure_start;  // end of the warm-up
  Clock::time_point deadline;       // Clock::time_point::max() with --transactions
  std::atomic<bool> stop{false};    // Ctrl-C, a fatal error, or all done
  bool limited = false;             // --transactions: start only with a unit of budget
  std::atomic<int64_t> budget{0};   // transactions left to start (goes below 0 at the end)
  std::mutex fatal_mu;
  std::string fatal;  // first fatal error (guarded by fatal_mu)

  void Fail(std::string message) {
    {
      std::lock_guard<std::mutex> lock(fatal_mu);
      if (fatal.empty()) fatal = std::move(message);
    }
    stop.store(true, std::memory_order_relaxed);
  }
};

struct WorkerStats {
  LatencyHistogram histogram;             // measured transactions only
  std::map<std::string, int64_t> errors;  // SQLSTATE (or "connection") -> count
  int64_t transactions = 0;               // measured, including ones that failed
  int64_t warmup_transactions = 0;
  Clock::time_point last_completion{};
};

class BenchWorker {
 public:
  // tls_context: null for --sslmode disable; else shared by all workers and
  // must outlive them.
  BenchWorker(const BenchOptions& options, RunControl& control, const sockaddr_storage& address,
              socklen_t address_len, int clients, Credential credential,
              const proto::TlsContext* tls_context);
  ~BenchWorker();
  BenchWorker(const BenchWorker&) = delete;
  BenchWorker& operator=(const BenchWorker&) = delete;

  // Runs until the deadline, the budget, a stop, or a fatal error.
  void Run();
  const WorkerStats& stats() const { return stats_; }
  // Completed measured transactions so far; read by the progress thread.
  int64_t progress() const { return progress_.load(std::memory_order_relaxed); }

 private:
  struct Slot;
  void Connect(Slot& s);
  void Close(Slot& s);
  void Flush(Slot& s);
  void PostRecv(Slot& s);
  void OnCompletion(uint64_t user_data, int res);
  void OnReceived(Slot& s);
  // TLS: the answer to the SSLRequest, then ciphertext for the stream.
  void OnCiphertext(Slot& s, std::string_view bytes);
  void OnSslResponse(Slot& s, std::string_view bytes);
  void OnReady(Slot& s, bool txn_done);
  [[nodiscard]] bool Claim(Slot& s);
  void Finish(Slot& s, bool reconnect);
  void AbortAll();
  void Fail(Slot& s, std::string why);

  const BenchOptions& options_;
  RunControl& control_;
  sockaddr_storage address_;
  socklen_t address_len_;
  Credential credential_;
  const proto::TlsContext* tls_context_;
  proto::ScramClientKeyCache scram_cache_;
  // Declared before ring_ so the ring (and any receive still in flight into a
  // slot's buffer) goes away first.
  std::vector<std::unique_ptr<Slot>> slots_;
  Ring ring_;
  int active_ = 0;  // slots not finished
  WorkerStats stats_;
  std::atomic<int64_t> progress_{0};
};

}  // namespace pgb::bench
