// Endpoint is one socket of a session on its shard's io_uring ring: a
// receive armed into the shard's provided buffers, and a queue of outgoing
// segments sent with one send or sendmsg at a time. A received buffer that
// goes on unchanged is queued as it is (zero-copy) and recycled once sent;
// bytes the gateway built are queued as owned segments. Once TLS is on, the
// plaintext written goes through the TLS stream and its ciphertext is what
// is queued. It knows nothing of the protocol; the session decides what to
// write and when to read (backpressure: Backlog of the other side).
//
//   Endpoint client(ring, buffers, Op::kClientRecv, Op::kClientSend, slot, generation,
//                   ops_in_flight);
//   client.Attach(fd); client.ArmRecv();
//   client.WriteOwned("N"); client.Flush();
//   on a send completion: client.OnSent(res) ... ; client.Shutdown(false) to close.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "core/ring.h"
#include "proto/tls.h"

namespace pgb {

class Endpoint {
 public:
  // Completions carry `recv_op`/`send_op`, `slot` and `generation`; every
  // operation submitted is counted in `ops_in_flight` (the session's, which
  // may be destroyed only when it is back to zero).
  Endpoint(Ring& ring, BufferRing& buffers, Op recv_op, Op send_op, uint32_t slot,
           uint32_t generation, uint32_t& ops_in_flight);
  ~Endpoint();  // closes the descriptor and releases what is queued
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  void Attach(int fd) { fd_ = fd; }
  int fd() const { return fd_; }
  bool open() const { return fd_ >= 0; }

  // --- receiving -------------------------------------------------------------
  // Arms one receive unless one is armed, the socket is closed, or it is
  // closing after a flush.
  void ArmRecv();
  // A receive completed (the caller counts ops_in_flight down).
  void OnRecvDone() { recv_armed_ = false; }
  // Backpressure: held back until the other side's queue drains.
  void PauseRecv() { recv_paused_ = true; }
  bool recv_paused() const { return recv_paused_; }
  // Login-phase input, small and capped by its reader.
  std::string& staging() { return staging_; }

  // --- sending ---------------------------------------------------------------
  // Queues bytes the gateway built. An error: the TLS stream refused them.
  [[nodiscard]] absl::Status WriteOwned(std::string bytes);
  // Queues received plaintext; `buffer_id` >= 0 hands over its buffer.
  [[nodiscard]] absl::Status WriteReceived(const char* data, size_t n, int32_t buffer_id);
  // Submits a send of what is queued (TLS ciphertext included), unless one is
  // in flight. True when nothing is left and the socket should now close
  // (CloseAfterFlush was asked for).
  [[nodiscard]] bool Flush();
  // A send completed with `res`. Returns the bytes sent; an error (the
  // send failed) as a negative errno; when the socket was closed meanwhile,
  // releases what is queued and returns 0.
  int OnSent(int res);
  // Bytes waiting to be sent, TLS ciphertext included.
  size_t Backlog() const;
  // Close once everything queued is sent; receive no more.
  void CloseAfterFlush() { close_after_flush_ = true; }
  bool closing() const { return close_after_flush_; }

  // --- TLS -------------------------------------------------------------------
  // From now on, bytes written and received pass through `tls`.
  void StartTls(std::unique_ptr<proto::TlsStream> tls) {
    tls_ = std::move(tls);
    tls_active_ = true;
  }
  bool tls_active() const { return tls_active_; }
  proto::TlsStream* tls() const { return tls_.get(); }

  // Sends the FIN now and cancels what is pending (`cancel_connect`: a
  // connect may be in flight). The descriptor stays open until destruction:
  // a cancel by descriptor must find it when it is submitted.
  void Shutdown(bool cancel_connect);

 private:
  // A piece of the outgoing byte stream.
  struct OutSegment {
    const char* data;
    uint32_t length;
    int32_t buffer_id;   // >= 0: a provided buffer to recycle once sent
    std::string* owned;  // or bytes owned by the segment
  };
  void Release(const OutSegment& segment);
  void ReleaseAll();

  Ring& ring_;
  BufferRing& buffers_;
  const Op recv_op_;
  const Op send_op_;
  const uint32_t slot_;
  const uint32_t generation_;
  uint32_t& ops_in_flight_;
  int fd_ = -1;
  int closed_fd_ = -1;  // shut down, closed at destruction
  std::unique_ptr<proto::TlsStream> tls_;
  bool tls_active_ = false;
  bool recv_armed_ = false;
  bool recv_paused_ = false;
  bool send_in_flight_ = false;
  bool close_after_flush_ = false;
  std::vector<OutSegment> out_;
  size_t in_flight_segments_ = 0;
  size_t queued_bytes_ = 0;
  std::string staging_;
  msghdr msg_{};
  std::array<iovec, 16> iov_{};
};

// The host (numeric) and port of an IPv4 or IPv6 socket address; "?" and 0
// for any other family. For logs and the control plane's peers.
struct HostPort {
  std::string host;
  uint16_t port = 0;
};
HostPort HostPortOf(const sockaddr_storage& address);

}  // namespace pgb
