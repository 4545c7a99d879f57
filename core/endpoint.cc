#include "core/endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

namespace pgb {

HostPort HostPortOf(const sockaddr_storage& address) {
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (address.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&address);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
    port = ntohs(a->sin_port);
  } else if (address.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&address);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
    port = ntohs(a->sin6_port);
  }
  return HostPort{host, port};
}

Endpoint::Endpoint(Ring& ring, BufferRing& buffers, Op recv_op, Op send_op, uint32_t slot,
                   uint32_t generation, uint32_t& ops_in_flight)
    : ring_(ring),
      buffers_(buffers),
      recv_op_(recv_op),
      send_op_(send_op),
      slot_(slot),
      generation_(generation),
      ops_in_flight_(ops_in_flight) {}

Endpoint::~Endpoint() {
  if (fd_ >= 0) ::close(fd_);
  if (closed_fd_ >= 0) ::close(closed_fd_);
  ReleaseAll();
}

void Endpoint::ArmRecv() {
  if (fd_ < 0 || recv_armed_ || close_after_flush_) return;
  recv_paused_ = false;
  io_uring_sqe* sqe = ring_.GetSqe();
  io_uring_prep_recv(sqe, fd_, nullptr, 0, 0);
  // We re-arm right after the peer was sent something it must answer first,
  // so data is almost never waiting: go straight to poll, skip the attempt.
  sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = BufferRing::kGroupId;
  io_uring_sqe_set_data64(sqe, UserData::Make(recv_op_, slot_, generation_));
  recv_armed_ = true;
  ++ops_in_flight_;
}

absl::Status Endpoint::WriteOwned(std::string bytes) {
  if (fd_ < 0 || bytes.empty()) return absl::OkStatus();
  if (tls_active_) return tls_->WritePlaintext(bytes);
  // Append to the last owned segment when it is not part of a send in flight.
  if (!out_.empty() && out_.size() > in_flight_segments_ && out_.back().owned != nullptr) {
    OutSegment& last = out_.back();
    const size_t already_sent = static_cast<size_t>(last.data - last.owned->data());
    last.owned->append(bytes);
    last.data = last.owned->data() + already_sent;
    last.length = static_cast<uint32_t>(last.owned->size() - already_sent);
    queued_bytes_ += bytes.size();
    return absl::OkStatus();
  }
  auto* owned = new std::string(std::move(bytes));
  out_.push_back(OutSegment{owned->data(), static_cast<uint32_t>(owned->size()), -1, owned});
  queued_bytes_ += owned->size();
  return absl::OkStatus();
}

absl::Status Endpoint::WriteReceived(const char* data, size_t n, int32_t buffer_id) {
  if (fd_ < 0 || tls_active_) {
    absl::Status written =
        fd_ < 0 ? absl::OkStatus() : tls_->WritePlaintext(std::string_view(data, n));
    if (buffer_id >= 0) buffers_.Recycle(static_cast<uint16_t>(buffer_id));
    return written;
  }
  if (buffer_id < 0) return WriteOwned(std::string(data, n));
  out_.push_back(OutSegment{data, static_cast<uint32_t>(n), buffer_id, nullptr});
  queued_bytes_ += n;
  return absl::OkStatus();
}

size_t Endpoint::Backlog() const {
  size_t pending = queued_bytes_;
  if (tls_active_ && tls_) pending += tls_->PendingCiphertext().size();
  return pending;
}

bool Endpoint::Flush() {
  if (fd_ < 0 || send_in_flight_) return false;
  if (tls_active_ && tls_ && tls_->HasPendingCiphertext()) {
    auto* owned = new std::string;
    tls_->TakeCiphertext(*owned);  // moves the buffer: stays valid while the send is in flight
    out_.push_back(OutSegment{owned->data(), static_cast<uint32_t>(owned->size()), -1, owned});
    queued_bytes_ += owned->size();
  }
  if (out_.empty()) return close_after_flush_;
  const size_t count = std::min(out_.size(), iov_.size());
  for (size_t i = 0; i < count; ++i) {
    iov_[i].iov_base = const_cast<char*>(out_[i].data);
    iov_[i].iov_len = out_[i].length;
  }
  in_flight_segments_ = count;
  io_uring_sqe* sqe = ring_.GetSqe();
  if (count == 1) {
    io_uring_prep_send(sqe, fd_, iov_[0].iov_base, iov_[0].iov_len, MSG_NOSIGNAL);
  } else {
    msg_ = msghdr{};
    msg_.msg_iov = iov_.data();
    msg_.msg_iovlen = count;
    io_uring_prep_sendmsg(sqe, fd_, &msg_, MSG_NOSIGNAL);
  }
  io_uring_sqe_set_data64(sqe, UserData::Make(send_op_, slot_, generation_));
  send_in_flight_ = true;
  ++ops_in_flight_;
  return false;
}

int Endpoint::OnSent(int res) {
  send_in_flight_ = false;
  if (fd_ < 0) {  // closed while the send was in flight: nothing more goes out
    ReleaseAll();
    return 0;
  }
  if (res < 0) return res;
  size_t sent = static_cast<size_t>(res);
  queued_bytes_ -= sent;
  size_t done = 0;
  while (done < in_flight_segments_ && sent >= out_[done].length) {
    sent -= out_[done].length;
    Release(out_[done]);
    ++done;
  }
  if (done < in_flight_segments_ && sent > 0) {
    out_[done].data += sent;
    out_[done].length -= static_cast<uint32_t>(sent);
  }
  out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(done));
  in_flight_segments_ = 0;
  return res;
}

void Endpoint::Shutdown(bool cancel_connect) {
  if (fd_ < 0) return;
  // shutdown() sends the FIN now and completes a pending receive; the cancel
  // catches a pending connect.
  ::shutdown(fd_, SHUT_RDWR);
  if (recv_armed_ || send_in_flight_ || cancel_connect) {
    io_uring_sqe* sqe = ring_.GetSqe();
    io_uring_prep_cancel_fd(sqe, fd_, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, UserData::Make(Op::kIgnore, 0, 0));
  }
  closed_fd_ = fd_;
  fd_ = -1;
  tls_.reset();
  tls_active_ = false;
  if (!send_in_flight_) ReleaseAll();
}

void Endpoint::Release(const OutSegment& segment) {
  if (segment.buffer_id >= 0) buffers_.Recycle(static_cast<uint16_t>(segment.buffer_id));
  delete segment.owned;
}

void Endpoint::ReleaseAll() {
  for (const OutSegment& segment : out_) Release(segment);
  out_.clear();
  queued_bytes_ = 0;
  in_flight_segments_ = 0;
}

}  // namespace pgb
