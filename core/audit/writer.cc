#include "core/audit/writer.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>

#include "base/log.h"
#include "base/str_cat.h"
#include "base/thread_name.h"
#include "core/audit/file_sink.h"
#include "core/audit/http_sink.h"
#include "core/audit/postgres_sink.h"
#include "core/audit/spill.h"
#include "core/audit/syslog_sink.h"
#include "policy/sql_analysis.h"

namespace pgb::audit {
namespace {

constexpr size_t kBatchPerRing = 256;  // records taken from one ring per round
// Unless the rings keep it busy, the writer works in rounds: shards never wake
// it (that would cost a syscall per record), and a round's records go to the
// sinks as one batch (one write, one wake-up of each sink), so a record waits
// up to a round before it is written. Each round costs two wake-ups, which
// are expensive on virtual machines: at 13,000 statements a second, 1 ms
// rounds cost the writer and the file sink 6-7 us of CPU per record, 5 ms
// rounds 3-4 us (polling every 100 us had cost several context switches per
// record). A round is as long as the smallest ring can ride out below its
// refusal mark (3/4 full) at kPeakRecordsPerSecond from one shard: 5 ms with
// the default 4096 slots, never below 1 ms (what 64 slots get).
constexpr int64_t kPeakRecordsPerSecond = 150'000;
constexpr std::chrono::microseconds kLongestRound{5000};
constexpr std::chrono::microseconds kShortestRound{1000};

std::chrono::microseconds RoundFor(uint32_t ring_slots) {
  const std::chrono::microseconds fits{int64_t{ring_slots} * 3 / 4 * 1'000'000 /
                                       kPeakRecordsPerSecond};
  return std::clamp(fits, kShortestRound, kLongestRound);
}
constexpr size_t kMaxQueuedBytes = 64 << 20;  // per sink, before the writer waits
constexpr size_t kSpillChunkBytes = 1 << 20;  // redelivered per Deliver call
constexpr absl::Duration kStopGrace = absl::Seconds(5);
constexpr size_t kInitialBatchBytes = 256 << 10;
constexpr size_t kPooledBatches = 16;             // kept for reuse; more are freed
constexpr size_t kPooledBatchMaxBytes = 8 << 20;  // a burst's larger buffers are freed

size_t CountLines(std::string_view text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

// "seq" of one of our lines, or 0.
uint64_t LineSeq(std::string_view line) {
  constexpr std::string_view kKey = "\"seq\":";
  const size_t at = line.find(kKey);
  if (at == std::string_view::npos) return 0;
  uint64_t seq = 0;
  const char* begin = line.data() + at + kKey.size();
  std::from_chars(begin, line.data() + line.size(), seq);
  return seq;
}

absl::StatusOr<std::unique_ptr<AuditSink>> MakeSink(const AuditSinkConfig& config) {
  switch (config.type) {
    case AuditSinkType::kFile: {
      absl::StatusOr<std::unique_ptr<FileSink>> sink = FileSink::Open(config.name, config.file);
      if (!sink.ok()) return sink.status();
      return std::unique_ptr<AuditSink>(std::move(*sink));
    }
    case AuditSinkType::kSyslog:
      return std::unique_ptr<AuditSink>(new SyslogSink(config.name, config.syslog));
    case AuditSinkType::kHttp: {
      absl::StatusOr<std::unique_ptr<HttpSink>> sink = HttpSink::Create(config.name, config.http);
      if (!sink.ok()) return sink.status();
      return std::unique_ptr<AuditSink>(std::move(*sink));
    }
    case AuditSinkType::kPostgres: {
      absl::StatusOr<std::unique_ptr<PostgresSink>> sink =
          PostgresSink::Create(config.name, config.postgres);
      if (!sink.ok()) return sink.status();
      return std::unique_ptr<AuditSink>(std::move(*sink));
    }
  }
  return absl::InvalidArgumentError("unknown sink type");
}

uint64_t ThreadCpuMicros() {
  timespec ts;
  if (::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

}  // namespace

// A round's lines, as the writer hands them to every sink. A plain byte
// buffer rather than a std::string: the writer reserves room for a record's
// worst case (RecordJsonBound, a few KiB) and writes the line in place, and
// a string would zero that room first on every record.
class LineBatch {
 public:
  explicit LineBatch(size_t capacity) : bytes_(new char[capacity]), capacity_(capacity) {}

  // Room for `n` bytes at the end: write them, then Commit.
  char* Room(size_t n) {
    if (capacity_ - size_ < n) Grow(size_ + n);
    return bytes_.get() + size_;
  }
  void Commit(const char* end) { size_ = static_cast<size_t>(end - bytes_.get()); }
  void Append(std::string_view text) {
    char* room = Room(text.size());
    std::memcpy(room, text.data(), text.size());
    Commit(room + text.size());
  }
  void Clear() { size_ = 0; }

  std::string_view view() const { return {bytes_.get(), size_}; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }

 private:
  void Grow(size_t at_least) {
    const size_t capacity = std::max(at_least, 2 * capacity_);
    std::unique_ptr<char[]> bytes(new char[capacity]);
    std::memcpy(bytes.get(), bytes_.get(), size_);
    bytes_ = std::move(bytes);
    capacity_ = capacity;
  }

  std::unique_ptr<char[]> bytes_;
  size_t size_ = 0;
  size_t capacity_;
};

// Batches the sinks are done with, for the writer's next rounds: a fresh
// buffer each round (a few milliseconds) cost a page fault on each of its
// pages, about as much as formatting the records in it.
class BatchPool {
 public:
  std::unique_ptr<LineBatch> Take() {
    std::lock_guard lock(mu_);
    if (free_.empty()) return std::make_unique<LineBatch>(kInitialBatchBytes);
    std::unique_ptr<LineBatch> out = std::move(free_.back());
    free_.pop_back();
    return out;
  }
  void Give(std::unique_ptr<LineBatch> batch) {
    if (batch->capacity() > kPooledBatchMaxBytes) return;
    batch->Clear();
    std::lock_guard lock(mu_);
    if (free_.size() < kPooledBatches) free_.push_back(std::move(batch));
  }

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<LineBatch>> free_;
};

// One sink's delivery thread: batches from the writer, delivered directly
// while the sink takes them and its spill is empty; otherwise appended to the
// spill and redelivered from it, oldest first, with exponential backoff.
class SinkRunner {
 public:
  SinkRunner(std::unique_ptr<AuditSink> sink, std::unique_ptr<SpillQueue> spill, bool fail_open,
             absl::Duration backoff_initial, absl::Duration backoff_max)
      : sink_(std::move(sink)),
        spill_(std::move(spill)),
        fail_open_(fail_open),
        backoff_initial_(backoff_initial),
        backoff_max_(backoff_max) {
    spilled_bytes_.store(spill_->pending_bytes(), std::memory_order_relaxed);
  }

  void Start() {
    thread_ = std::thread([this] {
      NameThisThread(Cat("pgb-sink-", sink_->name()));
      Run();
    });
  }

  // Waits while the sink already holds kMaxQueuedBytes (backpressure).
  // While the trail stops (`stop` set) it does not wait, so that shutdown
  // cannot hang on a dead sink; the runner's own stop deadline bounds it.
  void Enqueue(std::shared_ptr<const LineBatch> lines, const std::atomic<bool>& stop) {
    std::unique_lock lock(mu_);
    while (queued_bytes_ >= kMaxQueuedBytes && !stopping_ &&
           !stop.load(std::memory_order_acquire)) {
      space_.wait_for(lock, std::chrono::milliseconds(100));
    }
    queued_bytes_ += lines->size();
    queue_.push_back(std::move(lines));
    wake_.notify_one();
  }

  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      stop_deadline_ = absl::Now() + kStopGrace;
    }
    wake_.notify_one();
    space_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  std::string_view name() const { return sink_->name(); }
  bool healthy() const { return healthy_.load(std::memory_order_relaxed); }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  uint64_t spilled_bytes() const { return spilled_bytes_.load(std::memory_order_relaxed); }
  uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }

 private:
  void Run() {
    std::deque<std::shared_ptr<const LineBatch>> pending;  // taken, not yet delivered or spilled
    absl::Duration backoff = backoff_initial_;
    absl::Time next_retry = absl::InfinitePast();   // next delivery attempt
    absl::Time spill_retry = absl::InfinitePast();  // next append to a full spill
    absl::Time last_tick = absl::Now();
    bool down = false;  // logged once per outage
    for (;;) {
      bool stopping;
      absl::Time deadline;
      {
        std::unique_lock lock(mu_);
        const auto idle = [&] { return queue_.empty() && !stopping_; };
        if (idle()) {
          const absl::Duration wait =
              spill_->empty() && pending.empty()
                  ? absl::Milliseconds(100)
                  : std::clamp(next_retry - absl::Now(), absl::Milliseconds(1),
                               absl::Milliseconds(100));
          wake_.wait_for(lock, absl::ToChronoNanoseconds(wait), [&] { return !idle(); });
        }
        while (!queue_.empty()) {
          pending.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        stopping = stopping_;
        deadline = stop_deadline_;
      }
      const absl::Time now = absl::Now();

      // New batches: straight to the sink while nothing older waits in the
      // spill; otherwise behind it, in the spill.
      while (!pending.empty() && now >= spill_retry) {
        const std::string_view lines = pending.front()->view();
        if (spill_->empty() && now >= next_retry) {
          absl::Status status = sink_->Deliver(lines);
          if (status.ok()) {
            Done(lines.size());
            pending.pop_front();
            healthy_.store(true, std::memory_order_relaxed);
            if (down) {
              PGB_LOG(kInfo) << "audit: sink " << sink_->name() << " is delivering again";
              down = false;
            }
            continue;
          }
          errors_.fetch_add(1, std::memory_order_relaxed);  // this sink's thread only
          if (!down) {
            PGB_LOG(kWarning) << "audit: sink " << sink_->name() << " failed (" << status.message()
                              << "); spilling to disk and retrying";
            down = true;
          }
          next_retry = now + backoff;
          backoff = std::min(backoff * 2, backoff_max_);
        }
        absl::Status spilled = spill_->Append(lines);
        if (spilled.ok()) {
          Done(lines.size());
          pending.pop_front();
          healthy_.store(true, std::memory_order_relaxed);
          continue;
        }
        if (fail_open_) {
          dropped_.fetch_add(CountLines(lines), std::memory_order_relaxed);
          PGB_LOG(kError) << "audit: sink " << sink_->name() << ": cannot spill ("
                          << spilled.message() << "); fail-open: dropping " << CountLines(lines)
                          << " records";
          Done(lines.size());
          pending.pop_front();
          continue;
        }
        if (healthy_.exchange(false, std::memory_order_relaxed)) {
          PGB_LOG(kError) << "audit: sink " << sink_->name() << ": cannot spill ("
                          << spilled.message() << "); fail-closed: refusing new statements";
        }
        spill_retry = now + absl::Milliseconds(50);
        break;  // keep the batch; try again soon
      }

      // Redeliver from the spill, oldest first.
      if (!spill_->empty() && absl::Now() >= next_retry) {
        for (;;) {
          absl::StatusOr<std::string> chunk = spill_->Peek(kSpillChunkBytes);
          if (!chunk.ok()) {
            PGB_LOG(kError) << "audit: sink " << sink_->name() << ": " << chunk.status().message();
            next_retry = absl::Now() + backoff;
            break;
          }
          if (chunk->empty()) break;
          absl::Status status = sink_->Deliver(*chunk);
          if (!status.ok()) {
            next_retry = absl::Now() + backoff;
            backoff = std::min(backoff * 2, backoff_max_);
            break;
          }
          if (absl::Status consumed = spill_->Consume(chunk->size()); !consumed.ok()) {
            PGB_LOG(kError) << "audit: sink " << sink_->name() << ": " << consumed.message();
          }
          backoff = backoff_initial_;
          if (stopping && !pending.empty()) break;
        }
        if (spill_->empty() && down) {
          PGB_LOG(kInfo) << "audit: sink " << sink_->name() << " caught up with its spill";
          down = false;
          next_retry = absl::InfinitePast();
        }
      }
      spilled_bytes_.store(spill_->pending_bytes(), std::memory_order_relaxed);

      if (absl::Now() - last_tick >= absl::Milliseconds(100)) {
        last_tick = absl::Now();
        if (absl::Status status = sink_->Tick(last_tick); !status.ok()) {
          PGB_LOG(kWarning) << "audit: sink " << sink_->name() << ": " << status.message();
        }
      }

      if (stopping) {
        bool queue_empty;
        {
          std::lock_guard lock(mu_);
          queue_empty = queue_.empty();
        }
        if (queue_empty && pending.empty()) break;
        if (absl::Now() >= deadline) {
          size_t lost = 0;
          for (const auto& batch : pending) lost += CountLines(batch->view());
          PGB_LOG(kError) << "audit: sink " << sink_->name() << ": stopping with " << lost
                          << " records neither delivered nor spilled";
          dropped_.fetch_add(lost, std::memory_order_relaxed);
          break;
        }
      }
    }
    if (absl::Status status = sink_->Close(); !status.ok()) {
      PGB_LOG(kError) << "audit: sink " << sink_->name() << ": " << status.message();
    }
  }

  void Done(size_t bytes) {
    std::lock_guard lock(mu_);
    queued_bytes_ -= bytes;
    space_.notify_all();
  }

  std::unique_ptr<AuditSink> sink_;
  std::unique_ptr<SpillQueue> spill_;
  const bool fail_open_;
  const absl::Duration backoff_initial_;
  const absl::Duration backoff_max_;
  std::thread thread_;

  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable space_;
  std::deque<std::shared_ptr<const LineBatch>> queue_;
  size_t queued_bytes_ = 0;
  bool stopping_ = false;
  absl::Time stop_deadline_ = absl::InfiniteFuture();

  std::atomic<bool> healthy_{true};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> spilled_bytes_{0};
  std::atomic<uint64_t> errors_{0};  // failed deliveries
};

absl::StatusOr<std::unique_ptr<AuditTrail>> AuditTrail::Start(
    const AuditConfig& config, int shards, std::vector<std::unique_ptr<AuditSink>> extra_sinks) {
  if (shards < 1 || shards > 65535) return absl::InvalidArgumentError("audit: bad shard count");
  if (config.ring_slots < 2 || (config.ring_slots & (config.ring_slots - 1)) != 0) {
    return absl::InvalidArgumentError("audit.ring_slots must be a power of two");
  }
  std::unique_ptr<AuditTrail> trail(new AuditTrail(config));
  absl::StatusOr<AuditSigningKey> key = AuditSigningKey::LoadFile(config.signing_key);
  if (!key.ok()) {
    return absl::Status(key.status().code(),
                        "audit.signing_key: " + std::string(key.status().message()));
  }
  trail->key_ = std::make_unique<AuditSigningKey>(*std::move(key));
  trail->serialize_ = {config.statement_text, config.parameters};

  // Sinks, each with its spill queue in <spill_dir>/<name>.
  std::vector<std::unique_ptr<AuditSink>> sinks;
  const FileSinkConfig* chain_file = nullptr;
  for (const AuditSinkConfig& sink_config : config.sinks) {
    absl::StatusOr<std::unique_ptr<AuditSink>> sink = MakeSink(sink_config);
    if (!sink.ok()) {
      return absl::Status(sink.status().code(), "audit sink " + sink_config.name + ": " +
                                                    std::string(sink.status().message()));
    }
    if (sink_config.type == AuditSinkType::kFile && chain_file == nullptr) {
      chain_file = &sink_config.file;
    }
    sinks.push_back(*std::move(sink));
  }
  for (auto& sink : extra_sinks) sinks.push_back(std::move(sink));
  if (sinks.empty()) return absl::InvalidArgumentError("audit: no [[audit.sink]] configured");
  for (auto& sink : sinks) {
    absl::Duration initial = absl::Milliseconds(100), max = absl::Seconds(5);
    for (const AuditSinkConfig& c : config.sinks) {
      if (c.name == sink->name() && c.type == AuditSinkType::kHttp) {
        initial = c.http.retry_initial;
        max = c.http.retry_max;
      }
    }
    absl::StatusOr<std::unique_ptr<SpillQueue>> spill = SpillQueue::Open(
        config.spill_dir + "/" + std::string(sink->name()), config.spill_max_bytes);
    if (!spill.ok()) return spill.status();
    trail->sinks_.push_back(std::make_unique<SinkRunner>(
        std::move(sink), *std::move(spill), config.mode == AuditMode::kFailOpen, initial, max));
  }

  // Continue the chain: the newer of the file sink's last line and the
  // chain state the writer keeps in the spill directory.
  uint64_t last_seq = 0;
  std::string last_hash(kGenesisPrev);
  if (chain_file != nullptr) {
    absl::StatusOr<std::optional<std::string>> line = FileSink::LastLine(chain_file->path);
    if (!line.ok()) return line.status();
    if (line->has_value()) {
      last_seq = LineSeq(**line);
      if (last_seq == 0) {
        return absl::DataLossError("audit: the last line of " + chain_file->path +
                                   " is not an audit record; cannot continue the chain");
      }
      last_hash = std::string(View(HashLine(**line)));
    }
  }
  const std::string state_path = config.spill_dir + "/chain.state";
  trail->chain_state_fd_ = ::open(state_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (trail->chain_state_fd_ < 0) {
    return absl::UnavailableError("audit: cannot open " + state_path + ": " + std::strerror(errno));
  }
  char state[128] = {};
  if (::pread(trail->chain_state_fd_, state, sizeof(state) - 1, 0) > 0) {
    unsigned long long seq = 0;
    char hash[65] = {};
    if (std::sscanf(state, "%llu %64s", &seq, hash) == 2 && std::strlen(hash) == 64 &&
        seq > last_seq) {
      last_seq = seq;
      last_hash = hash;
    }
  }
  trail->next_seq_ = last_seq + 1;
  std::copy(last_hash.begin(), last_hash.end(), trail->prev_.begin());

  for (int i = 0; i < shards; ++i) {
    trail->shards_.push_back(std::unique_ptr<AuditShard>(
        new AuditShard(static_cast<uint16_t>(i), config.ring_slots, &trail->healthy_,
                       config.mode == AuditMode::kFailOpen, config.parameters)));
  }
  trail->dropped_reported_.assign(trail->shards_.size() + trail->sinks_.size(), 0);
  trail->last_checkpoint_us_ = AuditClockMicros();
  for (auto& runner : trail->sinks_) runner->Start();
  trail->writer_ = std::thread([t = trail.get()] {
    NameThisThread("pgb-audit");
    t->Run();
  });
  return trail;
}

AuditTrail::AuditTrail(const AuditConfig& config)
    : config_(config), batch_pool_(std::make_shared<BatchPool>()), batch_(batch_pool_->Take()) {}

AuditTrail::~AuditTrail() {
  Stop();
  if (chain_state_fd_ >= 0) ::close(chain_state_fd_);
}

void AuditTrail::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stop_.store(true, std::memory_order_release);
  if (writer_.joinable()) writer_.join();
  for (auto& runner : sinks_) runner->Stop();
}

AuditMetrics AuditTrail::metrics() const {
  AuditMetrics m;
  m.records_written = records_written_.load(std::memory_order_relaxed);
  m.checkpoints = checkpoints_.load(std::memory_order_relaxed);
  m.writer_cpu_us = writer_cpu_us_.load(std::memory_order_relaxed);
  for (const auto& shard : shards_) m.records_dropped += shard->dropped();
  for (const auto& runner : sinks_) {
    m.records_dropped += runner->dropped();
    m.spilled_bytes += runner->spilled_bytes();
    m.sink_errors += runner->errors();
  }
  for (const auto& shard : shards_) m.queue_depth += shard->queued();
  m.healthy = healthy();
  return m;
}

void AuditTrail::Chain(size_t line_start) {
  const std::string_view line = batch_->view().substr(line_start, batch_->size() - line_start - 1);
  prev_ = HashLine(line);
  ++next_seq_;
  ++since_checkpoint_;
  ++batch_lines_;
}

size_t AuditTrail::DrainRings(size_t max_per_ring) {
  size_t total = 0;
  std::string normalized_text;
  for (auto& shard : shards_) {
    SpscRing<AuditRecord>& ring = shard->ring_;
    const size_t n = std::min(ring.Available(), max_per_ring);
    for (size_t i = 0; i < n; ++i) {
      const AuditRecord& record = ring.Peek(i);
      // The next slot was filled on the shard's core: start pulling its
      // header (and the start of its arena) while this one is formatted.
      if (i + 1 < n) {
        const char* next = reinterpret_cast<const char*>(&ring.Peek(i + 1));
        for (size_t line = 0; line < 512; line += 64) __builtin_prefetch(next + line);
      }
      const size_t start = batch_->size();
      if (serialize_.statement_text == StatementText::kNormalized &&
          record.Has(AuditField::kStatement) && !record.statement_normalized) {
        NormalizedStatement normalized;
        std::string error;
        if (record.IsTruncated(AuditField::kStatement)) {
          normalized.error = "statement too long to normalize (truncated)";
        } else {
          const std::string sql(record.Get(AuditField::kStatement));
          absl::StatusOr<std::string> result = policy::NormalizeSql(sql);
          if (!result.ok()) {
            error = "cannot normalize: " + std::string(result.status().message());
            normalized.error = error;
          } else {
            normalized_text = *std::move(result);
            normalized.text = normalized_text;
          }
        }
        batch_->Commit(WriteRecordJson(record, serialize_, next_seq_, View(prev_),
                                       batch_->Room(RecordJsonBound(record, &normalized)),
                                       &normalized));
      } else {
        batch_->Commit(WriteRecordJson(record, serialize_, next_seq_, View(prev_),
                                       batch_->Room(RecordJsonBound(record))));
      }
      Chain(start);
      if (since_checkpoint_ >= config_.checkpoint_every) AddCheckpoint(false);
    }
    ring.Release(n);
    total += n;
  }
  return total;
}

void AuditTrail::AddDroppedRecords() {
  const auto report = [&](size_t index, uint64_t now_dropped, const std::string& source) {
    if (now_dropped == dropped_reported_[index]) return;
    const size_t start = batch_->size();
    line_.clear();
    AppendDroppedJson(next_seq_, AuditClockMicros(), now_dropped - dropped_reported_[index], source,
                      View(prev_), &line_);
    batch_->Append(line_);
    Chain(start);
    dropped_reported_[index] = now_dropped;
  };
  for (size_t i = 0; i < shards_.size(); ++i) {
    report(i, shards_[i]->dropped(), "ring:" + std::to_string(i));
  }
  for (size_t i = 0; i < sinks_.size(); ++i) {
    report(shards_.size() + i, sinks_[i]->dropped(), "sink:" + std::string(sinks_[i]->name()));
  }
}

void AuditTrail::AddCheckpoint(bool final) {
  const size_t start = batch_->size();
  const int64_t now = AuditClockMicros();
  line_.clear();
  absl::Status status =
      AppendCheckpointJson(*key_, next_seq_, now, since_checkpoint_, final, View(prev_), &line_);
  if (!status.ok()) {
    PGB_LOG(kError) << "audit: cannot sign a checkpoint: " << status.message();
    return;
  }
  batch_->Append(line_);
  Chain(start);
  since_checkpoint_ = 0;
  last_checkpoint_us_ = now;
  checkpoints_.fetch_add(1, std::memory_order_relaxed);
}

void AuditTrail::SaveChainState() {
  // Fixed width, so a shorter value never leaves old digits behind.
  char state[128];
  const int n = std::snprintf(state, sizeof(state), "%020llu %.*s\n",
                              static_cast<unsigned long long>(next_seq_ - 1),
                              static_cast<int>(prev_.size()), prev_.data());
  if (::pwrite(chain_state_fd_, state, static_cast<size_t>(n), 0) != n) {
    PGB_LOG(kWarning) << "audit: cannot write chain state: " << std::strerror(errno);
  }
}

void AuditTrail::Dispatch() {
  if (batch_->size() == 0) return;
  SaveChainState();
  // The last sink done with the batch gives it back for reuse.
  std::shared_ptr<const LineBatch> lines(batch_.release(), [pool = batch_pool_](LineBatch* done) {
    pool->Give(std::unique_ptr<LineBatch>(done));
  });
  batch_ = batch_pool_->Take();
  records_written_.fetch_add(batch_lines_, std::memory_order_relaxed);
  batch_lines_ = 0;
  for (auto& runner : sinks_) runner->Enqueue(lines, stop_);
}

void AuditTrail::UpdateHealth() {
  bool healthy = true;
  for (const auto& runner : sinks_) healthy = healthy && runner->healthy();
  healthy_.store(healthy, std::memory_order_relaxed);
}

void AuditTrail::Run() {
  const int64_t interval_us = absl::ToInt64Microseconds(config_.checkpoint_interval);
  const std::chrono::microseconds round = RoundFor(config_.ring_slots);
  while (!stop_.load(std::memory_order_acquire)) {
    const size_t n = DrainRings(kBatchPerRing);
    AddDroppedRecords();
    if (since_checkpoint_ >= config_.checkpoint_every ||
        (since_checkpoint_ > 0 && AuditClockMicros() - last_checkpoint_us_ >= interval_us)) {
      AddCheckpoint(false);
    }
    Dispatch();
    UpdateHealth();
    writer_cpu_us_.store(ThreadCpuMicros(), std::memory_order_relaxed);
    if (n < kBatchPerRing) std::this_thread::sleep_for(round);
  }
  // Shutdown: everything the shards committed, then a final checkpoint.
  while (DrainRings(kBatchPerRing) > 0) {
  }
  AddDroppedRecords();
  AddCheckpoint(true);
  Dispatch();
  writer_cpu_us_.store(ThreadCpuMicros(), std::memory_order_relaxed);
}

}  // namespace pgb::audit
