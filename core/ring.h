// One io_uring instance per shard, plus the shard's provided-buffer ring.
//
// A Ring is created and used by exactly one thread (IORING_SETUP_SINGLE_ISSUER,
// with DEFER_TASKRUN where the kernel has it), so nothing here locks. Every
// submission carries a UserData that packs the operation, a slot index and the
// slot's generation, as liburing's examples/proxy.c does; one completion switch
// in the shard dispatches on it.
//
// BufferRing is the provided-buffer ring (IORING_REGISTER_PBUF_RING) receives
// pick their buffer from when data arrives, so an idle connection holds no
// receive buffer. liburing 2.3 has no io_uring_setup_buf_ring; the setup is here.
//
//   Ring ring;
//   PGB_RETURN_IF_ERROR(ring.Init(4096));
//   io_uring_sqe* sqe = ring.GetSqe();
//   io_uring_prep_recv(sqe, fd, nullptr, 0, 0);
//   ring.SelectBuffer(sqe);
//   io_uring_sqe_set_data64(sqe, UserData::Make(Op::kClientRecv, slot, gen));
#pragma once

#include <liburing.h>

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace pgb {

// What a completion belongs to.
enum class Op : uint8_t {
  kNone = 0,
  kAccept,      // multishot accept on listener `slot`
  kClientRecv,  // session slot
  kClientSend,
  kBackendRecv,
  kBackendSend,
  kBackendConnect,
  kLoginDelay,     // a throttled login's wait (core/login_throttle.h)
  kCancelConnect,  // a CancelRequest relay connection, slot in the cancel table
  kCancelSend,
  kTick,          // the shard's periodic timer
  kWake,          // the shard's eventfd (shutdown, reload)
  kShardMessage,  // a message from another shard (msg_ring); payload is a pointer
  kMessageSent,   // our msg_ring submission completed; payload is the pointer
  kIgnore,        // cancellations and the like
};

// Packs op (8 bits), generation (24 bits), slot (32 bits) into io_uring's 64-bit
// user_data. kShardMessage/kMessageSent carry a pointer (low 56 bits) instead.
struct UserData {
  static uint64_t Make(Op op, uint32_t slot, uint32_t generation) {
    return (uint64_t{static_cast<uint8_t>(op)} << 56) | (uint64_t{generation & 0xffffff} << 32) |
           slot;
  }
  static uint64_t MakePointer(Op op, const void* p) {
    return (uint64_t{static_cast<uint8_t>(op)} << 56) | reinterpret_cast<uintptr_t>(p);
  }
  static Op OpOf(uint64_t v) { return static_cast<Op>(v >> 56); }
  static uint32_t SlotOf(uint64_t v) { return static_cast<uint32_t>(v); }
  static uint32_t GenerationOf(uint64_t v) { return static_cast<uint32_t>(v >> 32) & 0xffffff; }
  template <typename T>
  static T* PointerOf(uint64_t v) {
    return reinterpret_cast<T*>(static_cast<uintptr_t>(v & ((uint64_t{1} << 56) - 1)));
  }
};

class Ring {
 public:
  Ring() = default;
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // Must be called on the thread that will use the ring.
  [[nodiscard]] absl::Status Init(unsigned entries);

  // A free SQE; submits pending ones first if the submission queue is full.
  io_uring_sqe* GetSqe();
  // Submits everything queued and waits for at least one completion.
  int SubmitAndWait();
  io_uring* raw() { return &ring_; }
  int fd() const { return ring_.ring_fd; }

 private:
  io_uring ring_{};
  bool initialized_ = false;
};

// A provided-buffer ring of `count` buffers of `size` bytes each (count is a
// power of two). Buffer ids are 0..count-1. A buffer handed out by the kernel
// goes back with Recycle once every byte in it has been sent or copied.
class BufferRing {
 public:
  static constexpr uint16_t kGroupId = 0;

  BufferRing() = default;
  ~BufferRing();
  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;

  [[nodiscard]] absl::Status Init(Ring& ring, uint32_t count, uint32_t size);

  char* Data(uint16_t bid) { return base_ + size_t{bid} * size_; }
  uint32_t buffer_size() const { return size_; }
  // Hands the buffer back to the kernel.
  void Recycle(uint16_t bid);
  // Buffers currently owned by us (given out by the kernel, not yet recycled).
  uint32_t outstanding() const { return outstanding_; }
  void NoteTaken() { ++outstanding_; }

 private:
  io_uring* ring_ = nullptr;
  io_uring_buf_ring* br_ = nullptr;
  size_t ring_bytes_ = 0;
  char* base_ = nullptr;
  size_t base_bytes_ = 0;
  uint32_t count_ = 0;
  uint32_t size_ = 0;
  uint32_t outstanding_ = 0;
};

}  // namespace pgb
