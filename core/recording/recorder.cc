#include "core/recording/recorder.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <ctime>

#include "base/file_read.h"
#include "base/log.h"
#include "base/str_cat.h"
#include "base/thread_name.h"
#include "core/audit/record.h"
#include "core/recording/format.h"

namespace pgb::recording {

namespace {

// Free space below which the recorder stays unhealthy after a failed write.
constexpr uint64_t kHealthyFreeBytes = 16u << 20;
// A file that got no chunk for this long lost its last one (a full queue):
// it is closed so that descriptors do not pile up.
constexpr int64_t kIdleCloseUs = 10 * 60 * 1'000'000LL;

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

struct Recorder::OpenFile {
  uint64_t session_id = 0;
  std::string name;
  int fd = -1;
  off_t size = 0;  // bytes written and good: a failed write is cut back to here
  int64_t last_us = 0;
  bool failed = false;
};

Recorder::Recorder(const RecordingConfig& config) : config_(config) {}

absl::StatusOr<std::unique_ptr<Recorder>> Recorder::Start(const RecordingConfig& config,
                                                          int shards) {
  if (::mkdir(config.directory.c_str(), 0750) != 0 && errno != EEXIST) {
    return ErrnoStatus("cannot create the recordings directory", config.directory);
  }
  struct stat st;
  if (::stat(config.directory.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        Cat("recording.directory \"", config.directory, "\" is not a directory"));
  }
  if (::access(config.directory.c_str(), W_OK) != 0) {
    return ErrnoStatus("cannot write to the recordings directory", config.directory);
  }
  std::unique_ptr<Recorder> r(new Recorder(config));
  for (int i = 0; i < shards; ++i) {
    r->shards_.push_back(
        std::unique_ptr<RecorderShard>(new RecorderShard(r->config_, &r->healthy_)));
  }
  r->cctx_ = ZSTD_createCCtx();
  // Level 1: the recorder must keep up with a shard sending wide results
  // (bench/RESULTS.md: level 3 took the recorder thread past a core there);
  // recordings of rows still shrink about 10x.
  ZSTD_CCtx_setParameter(static_cast<ZSTD_CCtx*>(r->cctx_), ZSTD_c_compressionLevel, 1);
  ZSTD_CCtx_setParameter(static_cast<ZSTD_CCtx*>(r->cctx_), ZSTD_c_checksumFlag, 1);
  ZSTD_CCtx_setParameter(static_cast<ZSTD_CCtx*>(r->cctx_), ZSTD_c_contentSizeFlag, 1);
  r->thread_ = std::thread([p = r.get()] { p->Run(); });
  return r;
}

Recorder::~Recorder() {
  Stop();
  ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(cctx_));
}

RecorderMetrics Recorder::metrics() const {
  RecorderMetrics m;
  m.chunks_written = chunks_written_.load(std::memory_order_relaxed);
  m.bytes_written = bytes_written_.load(std::memory_order_relaxed);
  m.write_errors = write_errors_.load(std::memory_order_relaxed);
  m.files_removed = files_removed_.load(std::memory_order_relaxed);
  m.healthy = healthy_.load(std::memory_order_relaxed);
  return m;
}

void Recorder::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  for (auto& f : files_) {
    if (f->fd >= 0) ::close(f->fd);
  }
  files_.clear();
}

std::string Recorder::FileName(uint64_t session_id, int64_t start_us) {
  const time_t seconds = static_cast<time_t>(start_us / 1'000'000);
  tm utc;
  ::gmtime_r(&seconds, &utc);
  char stamp[32];
  ::strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &utc);
  return Cat(stamp, "-", session_id, ".pgbrec");
}

void Recorder::Run() {
  NameThisThread("pgb-recorder");
  int64_t last_retention_us = 0;
  int64_t last_health_us = 0;
  for (;;) {
    const bool stopping = stop_.load();
    const size_t n = Drain();
    const int64_t now = audit::AuditClockMicros();
    if (now - last_health_us > 1'000'000) {
      last_health_us = now;
      CheckHealth();
      // Files whose last chunk never came.
      for (size_t i = 0; i < files_.size();) {
        if (now - files_[i]->last_us > kIdleCloseUs) {
          PGB_LOG(kWarning) << "recording " << files_[i]->name
                            << ": no data for 10 minutes, closed without its end";
          ::close(files_[i]->fd);
          files_.erase(files_.begin() + static_cast<ptrdiff_t>(i));
        } else {
          ++i;
        }
      }
    }
    if ((config_.retention_max_bytes != 0 || config_.retention_max_age > absl::ZeroDuration()) &&
        now - last_retention_us > 60'000'000) {
      last_retention_us = now;
      std::vector<std::string> open;
      for (const auto& f : files_) open.push_back(f->name);
      files_removed_.fetch_add(ApplyRetention(config_, open, now), std::memory_order_relaxed);
    }
    if (n == 0) {
      if (stopping) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
}

size_t Recorder::Drain() {
  size_t total = 0;
  for (auto& shard : shards_) {
    audit::SpscRing<RecordingChunk>& ring = shard->ring_;
    const size_t n = std::min<size_t>(ring.Available(), 64);
    for (size_t i = 0; i < n; ++i) {
      RecordingChunk& chunk = ring.PeekMutable(i);
      Write(chunk);
      std::string().swap(chunk.bytes);  // the memory goes back now, not when the slot is reused
    }
    ring.Release(n);
    total += n;
  }
  return total;
}

void Recorder::Write(const RecordingChunk& chunk) {
  OpenFile* file = nullptr;
  size_t index = 0;
  for (; index < files_.size(); ++index) {
    if (files_[index]->session_id == chunk.session_id) {
      file = files_[index].get();
      break;
    }
  }
  if (file == nullptr) {
    auto f = std::make_unique<OpenFile>();
    f->session_id = chunk.session_id;
    f->name = FileName(chunk.session_id, chunk.start_us);
    const std::string path = Cat(config_.directory, "/", f->name);
    f->fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (f->fd < 0) {
      // Unhealthy until the directory has room: sessions apply on_overflow.
      PGB_LOG(kError) << "recording " << path << ": "
                      << ErrnoStatus("cannot create", path).message()
                      << "; recordings refuse new data until the directory has room";
      f->failed = true;
      write_errors_.fetch_add(1, std::memory_order_relaxed);
      healthy_.store(false, std::memory_order_relaxed);
    } else {
      struct stat st;
      if (::fstat(f->fd, &st) == 0) f->size = st.st_size;
      if (f->size == 0) {
        if (WriteAll(f->fd, kMagic.data(), kMagic.size())) {
          f->size = static_cast<off_t>(kMagic.size());
        } else {
          f->failed = true;
        }
      }
    }
    files_.push_back(std::move(f));
    index = files_.size() - 1;
    file = files_.back().get();
  }
  file->last_us = audit::AuditClockMicros();
  if (!file->failed && !chunk.bytes.empty()) {
    ZSTD_CCtx* cctx = static_cast<ZSTD_CCtx*>(cctx_);
    frame_.resize(4 + ZSTD_compressBound(chunk.bytes.size()));
    ZSTD_CCtx_reset(cctx, ZSTD_reset_session_only);
    ZSTD_CCtx_setPledgedSrcSize(cctx, chunk.bytes.size());
    ZSTD_outBuffer out{frame_.data() + 4, frame_.size() - 4, 0};
    ZSTD_inBuffer in{chunk.bytes.data(), chunk.bytes.size(), 0};
    size_t left = ZSTD_compressStream2(cctx, &out, &in, ZSTD_e_end);
    if (ZSTD_isError(left) || left != 0) {
      PGB_LOG(kError) << "recording " << file->name << ": compression failed";
      write_errors_.fetch_add(1, std::memory_order_relaxed);
    } else {
      const uint32_t size = static_cast<uint32_t>(out.pos);
      for (int i = 0; i < 4; ++i) frame_[i] = static_cast<char>((size >> (8 * i)) & 0xff);
      if (WriteAll(file->fd, frame_.data(), 4 + out.pos)) {
        file->size += static_cast<off_t>(4 + out.pos);
        chunks_written_.fetch_add(1, std::memory_order_relaxed);
        bytes_written_.fetch_add(4 + out.pos, std::memory_order_relaxed);
      } else {
        // Disk full or worse: the file is cut back to its last whole chunk
        // (readable), the session's audit record will not match it (verify
        // says so), and shards see the recorder unhealthy until there is room.
        const absl::Status why =
            ErrnoStatus("cannot write", Cat(config_.directory, "/", file->name));
        PGB_LOG(kError) << "recording " << file->name << ": " << why.message()
                        << "; recordings refuse new data until the directory has room";
        if (::ftruncate(file->fd, file->size) != 0) file->failed = true;
        write_errors_.fetch_add(1, std::memory_order_relaxed);
        healthy_.store(false, std::memory_order_relaxed);
      }
    }
  }
  if (chunk.last) {
    if (file->fd >= 0) ::close(file->fd);
    files_.erase(files_.begin() + static_cast<ptrdiff_t>(index));
  }
}

void Recorder::CheckHealth() {
  if (healthy_.load(std::memory_order_relaxed)) return;
  struct statvfs vfs;
  if (::statvfs(config_.directory.c_str(), &vfs) == 0 &&
      static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize >= kHealthyFreeBytes) {
    PGB_LOG(kInfo) << "recordings directory has room again; recording resumes";
    healthy_.store(true, std::memory_order_relaxed);
  }
}

uint64_t Recorder::ApplyRetention(const RecordingConfig& config,
                                  const std::vector<std::string>& open, int64_t now_us) {
  struct Entry {
    std::string name;
    uint64_t size;
    int64_t mtime_us;
  };
  std::vector<Entry> entries;
  DIR* dir = ::opendir(config.directory.c_str());
  if (dir == nullptr) return 0;
  while (dirent* d = ::readdir(dir)) {
    const std::string_view name(d->d_name);
    if (name.size() < 8 || name.substr(name.size() - 7) != ".pgbrec") continue;
    struct stat st;
    const std::string path = Cat(config.directory, "/", name);
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    entries.push_back({std::string(name), static_cast<uint64_t>(st.st_size),
                       static_cast<int64_t>(st.st_mtime) * 1'000'000});
  }
  ::closedir(dir);
  // Names start with the session's start time: oldest first.
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.name < b.name; });
  uint64_t total = 0;
  for (const Entry& e : entries) total += e.size;
  const int64_t max_age_us = config.retention_max_age > absl::ZeroDuration()
                                 ? absl::ToInt64Microseconds(config.retention_max_age)
                                 : 0;
  uint64_t removed = 0;
  for (const Entry& e : entries) {
    const bool too_old = max_age_us != 0 && now_us - e.mtime_us > max_age_us;
    const bool too_big = config.retention_max_bytes != 0 && total > config.retention_max_bytes;
    if (!too_old && !too_big) continue;
    if (std::find(open.begin(), open.end(), e.name) != open.end()) continue;
    const std::string path = Cat(config.directory, "/", e.name);
    if (::unlink(path.c_str()) == 0) {
      PGB_LOG(kInfo) << "recording " << e.name << " removed by retention ("
                     << (too_old ? "older than retention_max_age" : "over retention_max_bytes")
                     << ")";
      total -= e.size;
      ++removed;
    }
  }
  return removed;
}

}  // namespace pgb::recording
