#include "tools/bench/worker.h"

#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "base/str_cat.h"
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
  Slot(uint32_t i, const BenchOptions& o, const Credential* credential,
       proto::ScramClientKeyCache* cache)
      : index(i),
        tx(o.workload, o.protocol, o.scale, 0x9e3779b97f4a7c15ull * (i + 1)),
        conn(o.user, o.dbname, credential, &tx, cache) {}

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
  // TLS: the SSLRequest is answered by one byte, then the receive lands in
  // `ciphertext` and the stream decrypts into `in`.
  bool awaiting_ssl_response = false;
  std::unique_ptr<proto::TlsStream> tls;
  std::string ciphertext;

  // Makes room at the end of `in` for at least one more byte: drops what has
  // been consumed, then grows (a message bigger than the buffer).
  void MakeRoom() {
    if (in_end < in.size()) return;
    if (in_start > 0) {
      in.erase(0, in_start);
      in_end -= in_start;
      in_start = 0;
      in.resize(in.capacity() > kInitialReceiveBuffer ? in.capacity() : kInitialReceiveBuffer);
    }
    if (in_end == in.size()) in.resize(in.size() * 2);
  }
};

BenchWorker::BenchWorker(const BenchOptions& options, RunControl& control,
                         const sockaddr_storage& address, socklen_t address_len, int clients,
                         Credential credential, const proto::TlsContext* tls_context)
    : options_(options),
      control_(control),
      address_(address),
      address_len_(address_len),
      credential_(std::move(credential)),
      tls_context_(tls_context) {
  for (int i = 0; i < clients; ++i) {
    slots_.push_back(
        std::make_unique<Slot>(static_cast<uint32_t>(i), options_, &credential_, &scram_cache_));
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
    control_.Fail(Cat("io_uring: ", s.ToString()));
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
      control_.Fail(Cat("io_uring_submit_and_wait: ", std::strerror(-rc)));
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
    control_.Fail(Cat("socket: ", std::strerror(errno)));
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
  s.awaiting_ssl_response = false;
  s.tls.reset();
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
  if (s.send_in_flight || s.fd < 0) return;
  if (s.tls != nullptr) {
    // Everything the state machine appended since the last send becomes one
    // run of records; after Terminate, close_notify follows in the same send.
    if (!s.out.empty() && s.tls->handshake_done()) {
      if (absl::Status st = s.tls->WritePlaintext(s.out); !st.ok()) {
        control_.Fail(std::string(st.message()));
        return;
      }
      s.out.clear();
      if (s.state == Slot::State::kClosing) s.tls->Shutdown();
    }
    if (!s.tls->HasPendingCiphertext()) return;
    s.sending.clear();
    s.tls->TakeCiphertext(s.sending);
  } else {
    if (s.out.empty()) return;
    std::swap(s.out, s.sending);
    s.out.clear();
  }
  s.send_offset = 0;
  s.send_in_flight = true;
  io_uring_sqe* sqe = ring_.GetSqe();
  io_uring_prep_send(sqe, s.fd, s.sending.data(), s.sending.size(), MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, UserData::Make(Op::kBackendSend, s.index, s.generation));
}

void BenchWorker::PostRecv(Slot& s) {
  if (s.recv_in_flight || s.fd < 0) return;
  char* into;
  size_t room;
  if (tls_context_ != nullptr) {
    // Every completion hands all of it to the stream, so it starts empty.
    if (s.ciphertext.empty()) s.ciphertext.resize(kInitialReceiveBuffer);
    into = s.ciphertext.data();
    room = s.ciphertext.size();
  } else {
    s.MakeRoom();
    into = s.in.data() + s.in_end;
    room = s.in.size() - s.in_end;
  }
  s.recv_in_flight = true;
  io_uring_sqe* sqe = ring_.GetSqe();
  io_uring_prep_recv(sqe, s.fd, into, room, 0);
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
        control_.Fail(
            Cat("connect to ", options_.host, ":", options_.port, ": ", std::strerror(-res)));
        return;
      }
      s.state = Slot::State::kOpen;
      if (tls_context_ != nullptr) {
        // https://www.postgresql.org/docs/15/protocol-flow.html#id-1.10.6.7.12
        proto::AppendSslRequest(s.out);
        s.awaiting_ssl_response = true;
      } else {
        s.conn.Start(s.out);
      }
      Flush(s);
      PostRecv(s);
      return;
    case Op::kBackendSend:
      s.send_in_flight = false;
      if (res < 0) {
        Fail(s, Cat("send: ", std::strerror(-res)));
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
      if (!s.out.empty() || (s.tls != nullptr && s.tls->HasPendingCiphertext())) {
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
                         : Cat("recv: ", std::strerror(-res)));
        return;
      }
      if (tls_context_ != nullptr) {
        const uint32_t generation = s.generation;
        OnCiphertext(s, std::string_view(s.ciphertext.data(), static_cast<size_t>(res)));
        if (s.generation != generation) return;  // closed (and maybe reconnecting) since
      } else {
        s.in_end += static_cast<size_t>(res);
        OnReceived(s);
      }
      if (s.state == Slot::State::kOpen) PostRecv(s);
      return;
    default:
      return;
  }
}

void BenchWorker::OnSslResponse(Slot& s, std::string_view bytes) {
  if (bytes[0] == 'N') {
    control_.Fail(Cat("the server at ", options_.host, ":", options_.port,
                      " does not accept TLS (it answered the SSLRequest with 'N'); "
                      "use --sslmode disable"));
    return;
  }
  if (bytes[0] != 'S') {
    control_.Fail(bytes[0] == proto::kPqMsg_ErrorResponse
                      ? std::string("the server answered the SSLRequest with an error")
                      : Cat("unexpected answer to the SSLRequest: byte ",
                            static_cast<int>(static_cast<unsigned char>(bytes[0]))));
    return;
  }
  if (bytes.size() > 1) {
    // Bytes after 'S' were not sent in answer to our ClientHello (not sent
    // yet): someone in the path injected them (CVE-2021-23222).
    control_.Fail("the server sent data after accepting TLS, before the handshake");
    return;
  }
  absl::StatusOr<std::unique_ptr<proto::TlsStream>> stream =
      proto::TlsStream::Client(*tls_context_, options_.host);
  if (!stream.ok()) {
    control_.Fail(std::string(stream.status().message()));
    return;
  }
  s.tls = *std::move(stream);
  s.awaiting_ssl_response = false;
  absl::StatusOr<proto::TlsStream::Progress> progress = s.tls->Handshake();  // the ClientHello
  if (!progress.ok()) {
    control_.Fail(std::string(progress.status().message()));
    return;
  }
  Flush(s);
}

void BenchWorker::OnCiphertext(Slot& s, std::string_view bytes) {
  if (s.awaiting_ssl_response) {
    OnSslResponse(s, bytes);
    return;
  }
  const uint32_t generation = s.generation;
  while (!bytes.empty()) {
    // Takes all of it unless a partial record is pending on top of a full
    // read; the rest goes in once the records before it are decrypted below.
    const size_t taken = s.tls->PushCiphertext(bytes);
    bytes.remove_prefix(taken);
    if (!s.tls->handshake_done()) {
      if (taken == 0) {  // a handshake message larger than the stream holds
        control_.Fail("TLS handshake: the server's messages are too large");
        return;
      }
      absl::StatusOr<proto::TlsStream::Progress> progress = s.tls->Handshake();
      if (!progress.ok()) {
        Flush(s);  // the alert, so the server logs why
        control_.Fail(std::string(progress.status().message()));
        return;
      }
      if (*progress == proto::TlsStream::Progress::kWantMore) continue;
      s.conn.Start(s.out);  // goes out with our Finished
    }
    for (;;) {
      s.MakeRoom();
      absl::StatusOr<size_t> n =
          s.tls->ReadPlaintext(s.in.data() + s.in_end, s.in.size() - s.in_end);
      if (!n.ok()) {
        Fail(s, s.tls->eof() ? std::string("server closed the TLS connection unexpectedly")
                             : std::string(n.status().message()));
        return;
      }
      if (*n == 0) break;
      s.in_end += *n;
      OnReceived(s);
      if (s.generation != generation || s.state != Slot::State::kOpen) return;
    }
  }
  Flush(s);
}

void BenchWorker::OnReceived(Slot& s) {
  for (;;) {
    absl::StatusOr<FeedResult> r =
        s.conn.Feed(std::string_view(s.in).substr(s.in_start, s.in_end - s.in_start), s.out);
    if (!r.ok()) {
      if (s.conn.fatal_error()) {
        const proto::ErrorFields& e = *s.conn.fatal_error();
        control_.Fail(Cat("server error ", e.sqlstate, ": ", e.severity, ": ", e.message));
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
