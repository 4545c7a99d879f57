// SpscRing<T>: a bounded, lock-free, single-producer single-consumer ring of
// fixed-size slots, one per shard for its audit records. The producer (the
// shard) claims a slot, fills it in place and publishes it; the consumer (the
// audit writer thread) reads published slots in order and releases them. No
// allocation after construction, no lock, no syscall.
//
// Memory ordering: the producer's release store of head_ publishes the slot
// contents written before it; the consumer's acquire load of head_ sees them.
// Symmetrically the consumer's release store of tail_ hands the slot back.
// Each side keeps a cached copy of the other side's index and reloads it only
// when the ring looks full (producer) or empty (consumer), so in steady state
// the indices' cache lines do not bounce between cores.
//
//   SpscRing<AuditRecord> ring(4096);         // power of two
//   // producer thread
//   if (AuditRecord* slot = ring.TryClaim()) { fill(*slot); ring.Publish(); }
//   // consumer thread
//   size_t n = ring.Available();
//   for (size_t i = 0; i < n; ++i) use(ring.Peek(i));
//   ring.Release(n);
#pragma once

#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

namespace pgb::audit {

inline constexpr size_t kCacheLine = 64;

template <typename T>
class SpscRing {
 public:
  // `slots` must be a power of two, at least 2.
  explicit SpscRing(size_t slots)
      : mask_(slots - 1),
        slots_(static_cast<T*>(::operator new[](sizeof(T) * slots, std::align_val_t(alignof(T))))) {
    assert(slots >= 2 && (slots & (slots - 1)) == 0);
    for (size_t i = 0; i < slots; ++i) new (&slots_[i]) T();
  }
  ~SpscRing() {
    for (size_t i = 0; i <= mask_; ++i) slots_[i].~T();
    ::operator delete[](slots_, std::align_val_t(alignof(T)));
  }
  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  size_t capacity() const { return mask_ + 1; }

  // --- producer --------------------------------------------------------------
  // The next free slot (as the consumer left it: callers reset what they
  // need), or nullptr when the ring is full. Claiming twice without Publish
  // returns the same slot.
  T* TryClaim() {
    const uint64_t head = producer_.head;
    if (head - producer_.cached_tail > mask_) {
      producer_.cached_tail = tail_.value.load(std::memory_order_acquire);
      if (head - producer_.cached_tail > mask_) return nullptr;
    }
    return &slots_[head & mask_];
  }
  // Makes the claimed slot visible to the consumer.
  void Publish() {
    ++producer_.head;
    head_.value.store(producer_.head, std::memory_order_release);
  }
  // Slots in use as the producer sees them (may overstate: the consumer may
  // have released some since the last reload).
  size_t ProducerSizeApprox() const { return producer_.head - producer_.cached_tail; }
  // Reloads the consumer's index first: exact as of the load.
  size_t ProducerSize() {
    producer_.cached_tail = tail_.value.load(std::memory_order_acquire);
    return producer_.head - producer_.cached_tail;
  }

  // --- consumer --------------------------------------------------------------
  // Number of published slots not yet released.
  size_t Available() {
    consumer_.cached_head = head_.value.load(std::memory_order_acquire);
    return consumer_.cached_head - consumer_.tail;
  }
  // The i-th published slot (i < Available()).
  const T& Peek(size_t i) const { return slots_[(consumer_.tail + i) & mask_]; }
  // The same slot, for a consumer that moves its contents out before Release.
  T& PeekMutable(size_t i) { return slots_[(consumer_.tail + i) & mask_]; }
  // Hands the n oldest slots back to the producer.
  void Release(size_t n) {
    assert(n <= consumer_.cached_head - consumer_.tail);
    consumer_.tail += n;
    tail_.value.store(consumer_.tail, std::memory_order_release);
  }

  // Any thread: an estimate for metrics.
  size_t SizeApprox() const {
    return head_.value.load(std::memory_order_relaxed) -
           tail_.value.load(std::memory_order_relaxed);
  }

 private:
  struct alignas(kCacheLine) Index {
    std::atomic<uint64_t> value{0};
  };
  struct alignas(kCacheLine) ProducerSide {
    uint64_t head = 0;
    uint64_t cached_tail = 0;
  };
  struct alignas(kCacheLine) ConsumerSide {
    uint64_t tail = 0;
    uint64_t cached_head = 0;
  };

  const size_t mask_;
  T* const slots_;
  Index head_;  // written by the producer
  Index tail_;  // written by the consumer
  ProducerSide producer_;
  ConsumerSide consumer_;
};

}  // namespace pgb::audit
