#include "core/ring.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "base/str_cat.h"

namespace pgb {

Ring::~Ring() {
  if (initialized_) io_uring_queue_exit(&ring_);
}

absl::Status Ring::Init(unsigned entries) {
  io_uring_params params{};
  // Newest first: DEFER_TASKRUN (6.1+) runs completions only when we wait,
  // which batches work and avoids interrupts; fall back for older kernels.
  const unsigned flag_sets[] = {
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN,
      0,
  };
  int rc = -EINVAL;
  for (unsigned flags : flag_sets) {
    std::memset(&params, 0, sizeof(params));
    params.flags = flags | IORING_SETUP_SUBMIT_ALL;
    params.flags |= IORING_SETUP_CQSIZE;
    params.cq_entries = entries * 4;
    rc = io_uring_queue_init_params(entries, &ring_, &params);
    if (rc == 0) break;
    if (rc != -EINVAL) break;
  }
  if (rc != 0) {
    return absl::InternalError(Cat("io_uring_queue_init failed: ", strerror(-rc)));
  }
  initialized_ = true;
  return absl::OkStatus();
}

io_uring_sqe* Ring::GetSqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (sqe == nullptr) {
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

int Ring::SubmitAndWait() { return io_uring_submit_and_wait(&ring_, 1); }

BufferRing::~BufferRing() {
  if (br_ != nullptr) {
    io_uring_unregister_buf_ring(ring_, kGroupId);
    munmap(br_, ring_bytes_);
  }
  if (base_ != nullptr) munmap(base_, base_bytes_);
}

absl::Status BufferRing::Init(Ring& ring, uint32_t count, uint32_t size) {
  ring_ = ring.raw();
  count_ = count;
  size_ = size;
  ring_bytes_ = sizeof(io_uring_buf) * count;
  void* mem =
      mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) return absl::ResourceExhaustedError("mmap of buffer ring failed");
  br_ = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_ring_init(br_);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uintptr_t>(br_);
  reg.ring_entries = count;
  reg.bgid = kGroupId;
  if (int rc = io_uring_register_buf_ring(ring_, &reg, 0); rc != 0) {
    munmap(br_, ring_bytes_);
    br_ = nullptr;
    return absl::InternalError(Cat("io_uring_register_buf_ring failed: ", strerror(-rc)));
  }
  base_bytes_ = size_t{count} * size;
  // Populated now: the kernel hands the buffers out in turn, so a shard
  // touches all of them soon anyway. Resident from the start, the gateway's
  // memory is what it will be under load (no page faults on first receives,
  // and a resident size that falls back to its start after a storm).
  mem = mmap(nullptr, base_bytes_, PROT_READ | PROT_WRITE,
             MAP_ANONYMOUS | MAP_PRIVATE | MAP_POPULATE, -1, 0);
  if (mem == MAP_FAILED) return absl::ResourceExhaustedError("mmap of receive buffers failed");
  base_ = static_cast<char*>(mem);
  const int mask = io_uring_buf_ring_mask(count);
  for (uint32_t i = 0; i < count; ++i) {
    io_uring_buf_ring_add(br_, Data(static_cast<uint16_t>(i)), size, static_cast<uint16_t>(i), mask,
                          static_cast<int>(i));
  }
  io_uring_buf_ring_advance(br_, static_cast<int>(count));
  return absl::OkStatus();
}

void BufferRing::Recycle(uint16_t bid) {
  io_uring_buf_ring_add(br_, Data(bid), size_, bid, io_uring_buf_ring_mask(count_), 0);
  io_uring_buf_ring_advance(br_, 1);
  --outstanding_;
}

}  // namespace pgb
