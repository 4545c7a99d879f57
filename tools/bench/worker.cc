#include "tools/bench/worker.h"

#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "proto/messages.h"

namespace pgb::bench {

namespace {
constexpr size_t kInitialReceiveBuffer = 64 * 1024;
// Once the deadline has passed, connections finish their current transaction;
// a server that does not answer within this is abandoned.
constexpr auto kDrainGrace = std::chrono::seconds(5);
}  // namespace

struct BenchWorker::Slot {
  enum class State { kConnecting, kOpen, kClosing, kFinished };
  Slot(uint32_t i, const BenchOptions& o, std::string_view password,
       proto::ScramClientKeyCache* cache)
      : index(i),
        tx(o.workload, o.protocol, o.scale, 0x9e3779b97f4a7c15ull * (i + 1)),
        conn(o.user, o.dbname, password, &tx, cache) {}

  uint32_t index;
  uint32_t generation = 0;
  int fd = -1;
  State state = State::kFinished;
  bool reconnect_after_close = false;
  TransactionBuilder tx;
  BenchConnection conn;
  std::string in = std::string(kInitialReceiveBuffer, '\0');
  size_t in_start = 0;
  size_t in_end = 0;
  bool recv_in_flight = false;
  std::string out;      // waiting to be sent
  std::string sending;  // owned by the send in flight
  size_t send_offset = 0;
  bool send_in_flight = false;
  Clock::time_point txn_start{};
  bool txn_is_warmup = false;
};

BenchWorker::BenchWorker(const BenchOptions& options, RunControl& control,
                         const sockaddr_storage& address, socklen_t address_len, int clients,
                         std::string password)
    : options_(options),
      control_(control),
      address_(address),
      address_len_(address_len),
      password_(std::move(password)) {
  for (int i = 0; i < clients; ++i) {
    slots_.push_back(
        std::make_unique<Slot>(static_cast<uint32_t>(i), options_, password_, &scram_cache_));
  }
}

BenchWorker::~BenchWorker() {
  for (auto& s : slots_) {
    if (s->fd >= 0) ::close(s->fd);
  }
}

void BenchWorker::Run() {
  const unsigned entries = static_cast<unsigned>(slots_.size()) * 4 + 64;
  if (absl::Status s = ring_.Init(entries); !s.ok()) {
    control_.Fail(absl::StrCat("io_uring: ", s.ToString()));
    return;
  }
  active_ = static_cast<int>(slots_.size());
  for (auto& s : slots_) {
    if (options_.workload == Workload::kChurn && !Claim(*s)) {
      s->state = Slot::State::kFinished;
      --active_;
      continue;
    }
    Connect(*s);
  }
  while (active_ > 0) {
    if (control_.stop.load(std::memory_order_relaxed)) {
      AbortAll();
      return;
    }
    if (Clock::now() > control_.deadline + kDrainGrace) {
      control_.Fail("the server did not finish the last transactions within 5 s of the deadline");
      AbortAll();
      return;
    }
    __kernel_timespec ts{.tv_sec = 0, .tv_nsec = 100'000'000};
    io_uring_cqe* cqe = nullptr;
    int rc = io_uring_submit_and_wait_timeout(ring_.raw(), &cqe, 1, &ts, nullptr);
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
      control_.Fail(absl::StrCat("io_uring_submit_and_wait: ", std::strerror(-rc)));
      AbortAll();
      return;
    }
    unsigned head = 0;
    unsigned seen = 0;
    io_uring_for_each_cqe(ring_.raw(), head, cqe) {
      ++seen;
      OnCompletion(cqe->user_data, cqe->res);
    }
    io_uring_cq_advance(ring_.raw(), seen);
  }
}

void BenchWorker::AbortAll() {
  for (auto& s : slots_) {
    if (s->fd >= 0) {
      ::shutdown(s->fd, SHUT_RDWR);
      ::close(s->fd);
      s->fd = -1;
    }
  }
  active_ = 0;
}

bool BenchWorker::Claim(Slot& s) {
  if (control_.stop.load(std::memory_order_relaxed)) return false;
  const Clock::time_point now = Clock::now();
  if (now >= control_.deadline) return false;
  s.txn_start = now;
  s.txn_is_warmup = now < control_.measure_start;
  if (!s.txn_is_warmup && control_.limited) {
    // --transactions: a transaction starts only with a unit of the budget.
    if (control_.budget.fetch_sub(1, std::memory_order_relaxed) <= 0) return false;
  }
  return true;
}

void BenchWorker::Connect(Slot& s) {
  s.fd = ::socket(address_.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s.fd < 0) {
    control_.Fail(absl::StrCat("socket: ", std::strerror(errno)));
    return;
  }
  const int one = 1;
  (void)::setsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  s.state = Slot::State::kConnecting;
  io_uring_sqe* sqe = ring_.GetSqe();
  io_uring_prep_connect(sqe, s.fd, reinterpret_cast<const sockaddr*>(&address_), address_len_);
  io_uring_sqe_set_data64(sqe, UserData::Make(Op::kBackendConnect, s.index, s.generation));
}

void BenchWorker::Close(Slot& s) {
  if (s.fd >= 0) {
    // shutdown first: it completes a receive still in flight (with 0), which
    // close alone would not.
    ::shutdown(s.fd, SHUT_RDWR);
    ::close(s.fd);
    s.fd = -1;
  }
  ++s.generation;
  s.in_start = s.in_end = 0;
  s.recv_in_flight = false;
  s.out.clear();
  s.send_in_flight = false;
  s.send_offset = 0;
}

void BenchWorker::Finish(Slot& s, bool reconnect) {
  proto::AppendTerminate(s.out);
  s.state = Slot::State::kClosing;
  s.reconnect_after_close = reconnect;
  Flush(s);
}

void BenchWorker::Fail(Slot& s, std::string why) {
  if (s.conn.logged_in() && s.state == Slot::State::kOpen &&
      !control_.stop.load(std::memory_order_relaxed)) {
    // A connection lost mid-run is an error of that transaction; the client
    // logs in again and carries on.
    ++stats_.errors["connection"];
    Close(s);
    if (options_.workload == Workload::kChurn ? Claim(s) : true) {
      Connect(s);
    } else {
      s.state = Slot::State::kFinished;
      --active_;
    }
    return;
  }
  control_.Fail(std::move(why));
}

void BenchWorker::Flush(Slot& s) {
  if (s.send_in_flight || s.out.empty() || s.fd < 0) return;
  std::swap(s.out, s.sending);
  s.out.clear();
  s.send_offset = 0;
  s.send_in_flight = true;
  io_uring_sqe* sqe = ring_.GetSqe();
  io_uring_prep_send(sqe, s.fd, s.sending.data(), s.sending.size(), MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, UserData::Make(Op::kBackendSend, s.index, s.generation));
}

void BenchWorker::PostRecv(Slot& s) {
  if (s.recv_in_flight || s.fd < 0) return;
  if (s.in_end == s.in.size()) {
    if (s.in_start > 0) {
      s.in.erase(0, s.in_start);
      s.in_end -= s.in_start;
      s.in_start = 0;
      s.in.resize(s.in.capacity() > kInitialReceiveBuffer ? s.in.capacity()
                                                          : kInitialReceiveBuffer);
    }
    if (s.in_end == s.in.size()) s.in.resize(s.in.size() * 2);  // a message bigger than the buffer
  }
  s.recv_in_flight = true;
  io_uring_sqe* sqe = ring_.GetSqe();
  io_uring_prep_recv(sqe, s.fd, s.in.data() + s.in_end, s.in.size() - s.in_end, 0);
  io_uring_sqe_set_data64(sqe, UserData::Make(Op::kBackendRecv, s.index, s.generation));
}

void BenchWorker::OnCompletion(uint64_t user_data, int res) {
  const uint32_t index = UserData::SlotOf(user_data);
  if (index >= slots_.size()) return;
  Slot& s = *slots_[index];
  if (UserData::GenerationOf(user_data) != (s.generation & 0xffffff)) return;  // closed since
  if (s.state == Slot::State::kFinished) return;
  switch (UserData::OpOf(user_data)) {
    case Op::kBackendConnect:
      if (res < 0) {
        control_.Fail(absl::StrCat("connect to ", options_.host, ":", options_.port, ": ",
                                   std::strerror(-res)));
        return;
      }
      s.state = Slot::State::kOpen;
      s.conn.Start(s.out);
      Flush(s);
      PostRecv(s);
      return;
    case Op::kBackendSend:
      s.send_in_flight = false;
      if (res < 0) {
        Fail(s, absl::StrCat("send: ", std::strerror(-res)));
        return;
      }
      s.send_offset += static_cast<size_t>(res);
      if (s.send_offset < s.sending.size()) {
        s.send_in_flight = true;
        io_uring_sqe* sqe = ring_.GetSqe();
        io_uring_prep_send(sqe, s.fd, s.sending.data() + s.send_offset,
                           s.sending.size() - s.send_offset, MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, UserData::Make(Op::kBackendSend, s.index, s.generation));
        return;
      }
      s.sending.clear();
      if (!s.out.empty()) {
        Flush(s);
      } else if (s.state == Slot::State::kClosing) {
        Close(s);
        if (s.reconnect_after_close && Claim(s)) {
          Connect(s);
        } else {
          s.state = Slot::State::kFinished;
          --active_;
        }
      }
      return;
    case Op::kBackendRecv:
      s.recv_in_flight = false;
      if (s.state == Slot::State::kClosing) return;  // the server closes after Terminate
      if (res <= 0) {
        Fail(s, res == 0 ? std::string("server closed the connection unexpectedly")
                         : absl::StrCat("recv: ", std::strerror(-res)));
        return;
      }
      s.in_end += static_cast<size_t>(res);
      OnReceived(s);
      if (s.state == Slot::State::kOpen) PostRecv(s);
      return;
    default:
      return;
  }
}

void BenchWorker::OnReceived(Slot& s) {
  for (;;) {
    absl::StatusOr<FeedResult> r =
        s.conn.Feed(std::string_view(s.in).substr(s.in_start, s.in_end - s.in_start), s.out);
    if (!r.ok()) {
      if (s.conn.fatal_error()) {
        const proto::ErrorFields& e = *s.conn.fatal_error();
        control_.Fail(absl::StrCat("server error ", e.sqlstate, ": ", e.severity, ": ", e.message));
      } else {
        Fail(s, std::string(r.status().message()));
      }
      return;
    }
    s.in_start += r->consumed;
    if (r->txn_done) {
      const Clock::time_point now = Clock::now();
      if (s.txn_is_warmup) {
        ++stats_.warmup_transactions;
      } else {
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now - s.txn_start);
        stats_.histogram.Record(static_cast<uint64_t>(us.count()));
        ++stats_.transactions;
        if (!r->txn_sqlstate.empty()) ++stats_.errors[r->txn_sqlstate];
        stats_.last_completion = now;
        progress_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (r->ready) {
      if (options_.workload == Workload::kChurn) {
        if (r->txn_done) {
          Finish(s, /*reconnect=*/true);
          break;
        }
        s.conn.BeginTransaction(s.out);  // the claim was made at connect time
      } else if (Claim(s)) {
        s.conn.BeginTransaction(s.out);
      } else {
        Finish(s, /*reconnect=*/false);
        break;
      }
    }
    if (r->consumed == 0) break;
  }
  if (s.in_start == s.in_end) s.in_start = s.in_end = 0;
  Flush(s);
}

}  // namespace pgb::bench
