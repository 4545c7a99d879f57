#include "core/recording/format.h"

#include <openssl/evp.h>
#include <zstd.h>

#include <cstring>

#include "base/str_cat.h"

namespace pgb::recording {

namespace {

void PutU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

bool KnownKind(uint8_t kind) {
  switch (kind & ~kContinues) {
    case kHeader:
    case kFromClient:
    case kToClient:
    case kRows:
    case kGap:
    case kTruncated:
    case kEnd:
      return true;
    default:
      return false;
  }
}

}  // namespace

void AppendEventHeader(std::string& out, uint8_t kind, int64_t unix_us, uint32_t size) {
  char h[kEventHeaderBytes];
  h[0] = static_cast<char>(kind);
  const uint64_t t = static_cast<uint64_t>(unix_us);
  for (int i = 0; i < 8; ++i) h[1 + i] = static_cast<char>((t >> (8 * i)) & 0xff);
  PutU32(h + 9, size);
  out.append(h, sizeof(h));
}

void PatchEventHeader(std::string& out, size_t offset, uint8_t kind, uint32_t size) {
  out[offset] = static_cast<char>(kind);
  PutU32(out.data() + offset + 9, size);
}

RecordingReader::RecordingReader(std::string_view file) : file_(file) {
  if (file_.size() < kMagic.size() || file_.substr(0, kMagic.size()) != kMagic) {
    status_ = absl::InvalidArgumentError("not a pgbastion session recording (bad magic)");
    done_ = true;
    return;
  }
  offset_ = kMagic.size();
  dctx_ = ZSTD_createDCtx();
}

RecordingReader::~RecordingReader() { ZSTD_freeDCtx(static_cast<ZSTD_DCtx*>(dctx_)); }

bool RecordingReader::NextChunk() {
  if (offset_ == file_.size()) {  // the end of the file: of the recording too?
    if (!saw_end_) interrupted_ = true;
    return false;
  }
  if (file_.size() - offset_ < 4) {
    interrupted_ = true;
    return false;
  }
  const uint32_t size = GetU32(file_.data() + offset_);
  if (size == 0 || size > kMaxChunkBytes) {
    status_ = absl::DataLossError(Cat("chunk ", chunks_ + 1, " at offset ", offset_,
                                      " has an impossible size (", size, " bytes)"));
    return false;
  }
  if (file_.size() - offset_ - 4 < size) {
    interrupted_ = true;  // the writer was stopped while writing this chunk
    return false;
  }
  const char* frame = file_.data() + offset_ + 4;
  const unsigned long long content = ZSTD_getFrameContentSize(frame, size);
  if (content == ZSTD_CONTENTSIZE_ERROR || content == ZSTD_CONTENTSIZE_UNKNOWN ||
      content > kMaxChunkBytes || ZSTD_findFrameCompressedSize(frame, size) != size) {
    status_ = absl::DataLossError(
        Cat("chunk ", chunks_ + 1, " at offset ", offset_, " is not a whole zstd frame"));
    return false;
  }
  content_.resize(content);
  const size_t n = ZSTD_decompressDCtx(static_cast<ZSTD_DCtx*>(dctx_), content_.data(),
                                       content_.size(), frame, size);
  if (ZSTD_isError(n) || n != content) {
    status_ = absl::DataLossError(
        Cat("chunk ", chunks_ + 1, " at offset ", offset_,
            " does not decompress: ", ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short content"));
    return false;
  }
  offset_ += 4 + size;
  content_offset_ = 0;
  ++chunks_;
  content_bytes_ += n;
  return true;
}

std::optional<Event> RecordingReader::NextPiece() {
  while (content_offset_ == content_.size()) {
    if (done_ || !NextChunk()) {
      done_ = true;
      return std::nullopt;
    }
  }
  const size_t left = content_.size() - content_offset_;
  const char* p = content_.data() + content_offset_;
  if (left < kEventHeaderBytes || GetU32(p + 9) > left - kEventHeaderBytes ||
      !KnownKind(static_cast<uint8_t>(p[0]))) {
    status_ = absl::DataLossError(
        Cat("chunk ", chunks_, " holds a malformed event at byte ", content_offset_));
    done_ = true;
    return std::nullopt;
  }
  Event e;
  e.kind = static_cast<uint8_t>(p[0]);
  e.unix_us = static_cast<int64_t>(GetU64(p + 1));
  const uint32_t size = GetU32(p + 9);
  e.payload.assign(p + kEventHeaderBytes, size);
  content_offset_ += kEventHeaderBytes + size;
  if (e.kind == kEnd) saw_end_ = true;
  return e;
}

std::optional<Event> RecordingReader::Next() {
  for (;;) {
    std::optional<Event> e = NextPiece();
    if (!e) {
      // A message whose last piece never came: the writer stopped first.
      if (status_.ok() && (partial_[0].has_value() || partial_[1].has_value())) {
        interrupted_ = true;
      }
      return e;
    }
    const uint8_t kind = e->kind & ~kContinues;
    if (kind != kFromClient && kind != kToClient) {
      // A gap, truncation or end: a message cut short by it is dropped.
      partial_[0].reset();
      partial_[1].reset();
      return e;
    }
    std::optional<Event>& partial = partial_[kind == kFromClient ? 0 : 1];
    const bool more = (e->kind & kContinues) != 0;
    if (partial.has_value()) {
      if (partial->payload.size() + e->payload.size() > (uint64_t{1} << 30)) {
        status_ = absl::DataLossError("a recorded message is longer than 1 GiB");
        done_ = true;
        return std::nullopt;
      }
      partial->payload += e->payload;
    } else {
      partial = std::move(e);
    }
    if (more) continue;
    Event whole = std::move(*partial);
    partial.reset();
    whole.kind = kind;
    return whole;
  }
}

ContentHash::ContentHash() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr);
}
ContentHash::~ContentHash() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }
void ContentHash::Update(std::string_view bytes) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), bytes.data(), bytes.size());
}
std::string ContentHash::FinishHex() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), digest, &n);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex(2 * n, '0');
  for (unsigned int i = 0; i < n; ++i) {
    hex[2 * i] = kHex[digest[i] >> 4];
    hex[2 * i + 1] = kHex[digest[i] & 0xf];
  }
  return hex;
}

absl::Status DigestRecording(std::string_view file, ContentDigest* out) {
  RecordingReader reader(file);
  ContentHash hash;
  // The content is hashed chunk by chunk as the reader decompressed it:
  // re-encoding the events would hide a malformed but decodable chunk.
  if (!reader.status().ok()) return reader.status();
  uint64_t hashed_chunks = 0;
  size_t offset = kMagic.size();
  while (reader.Next().has_value()) {
  }
  if (!reader.status().ok()) return reader.status();
  // Second pass over the chunks the reader accepted: hash their content.
  ZSTD_DCtx* dctx = ZSTD_createDCtx();
  std::string content;
  while (hashed_chunks < reader.chunks()) {
    const uint32_t size = GetU32(file.data() + offset);
    const char* frame = file.data() + offset + 4;
    content.resize(ZSTD_getFrameContentSize(frame, size));
    const size_t n = ZSTD_decompressDCtx(dctx, content.data(), content.size(), frame, size);
    hash.Update(std::string_view(content.data(), n));
    offset += 4 + size;
    ++hashed_chunks;
  }
  ZSTD_freeDCtx(dctx);
  out->sha256_hex = hash.FinishHex();
  out->bytes = reader.content_bytes();
  out->interrupted = reader.interrupted();
  return absl::OkStatus();
}

}  // namespace pgb::recording
