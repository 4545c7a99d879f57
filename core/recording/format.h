// The session recording format (docs/recording.md is the reference for other
// tools). A recording is one file per session:
//
//   file    := magic chunk*
//   magic   := "PGBREC\r\n" "\x01" "\0\0\0"          (12 bytes; 0x01 = version 1)
//   chunk   := u32le frame_size, zstd frame (frame_size bytes, content checksum on)
//
// The chunks' decompressed bytes, concatenated, are the recording's content:
// a sequence of events, each whole within one chunk:
//
//   event   := u8 kind, i64le unix_us, u32le size, payload (size bytes)
//
// The first event is kHeader (a JSON object: session, identity, scope, target,
// role, gateway version, start time, mode). kFromClient / kToClient carry one
// PostgreSQL protocol message (type byte, length, body) as it passed the
// gateway; a message split over chunks is carried by several events, each but
// the last with kind | kContinues. kRows counts DataRows not recorded (mode
// "statements"), kGap / kTruncated / kEnd carry a JSON object.
//
// The disconnect audit record carries the SHA-256 and length of the content
// (not of the file): `pgbastion audit verify --recordings DIR` decompresses
// and compares. A recording cut short by a crash is readable up to its last
// whole chunk; the reader says it ended without kEnd.
//
//   RecordingReader reader(file_bytes);
//   while (auto e = reader.Next()) { ... e->kind, e->unix_us, e->payload ... }
//   if (!reader.status().ok()) { corrupt or foreign }
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace pgb::recording {

inline constexpr std::string_view kMagic("PGBREC\r\n\x01\0\0\0", 12);
inline constexpr size_t kEventHeaderBytes = 13;
// No chunk is larger than this, compressed or not: a reader refuses more.
inline constexpr uint32_t kMaxChunkBytes = 64u << 20;

enum EventKind : uint8_t {
  kHeader = 'H',
  kFromClient = 'F',
  kToClient = 'T',
  kRows = 'N',       // payload: u64le, DataRows sent to the client and not recorded
  kGap = 'G',        // payload: JSON {"lost_bytes":N,"reason":"..."}
  kTruncated = 'X',  // payload: JSON {"limit":N}: nothing follows but kEnd
  kEnd = 'E',        // payload: JSON {"reason":"..."}
};
inline constexpr uint8_t kContinues = 0x80;

// Appends an event header (the payload follows, `size` bytes).
void AppendEventHeader(std::string& out, uint8_t kind, int64_t unix_us, uint32_t size);
// Overwrites the size (and kind) of the event header at `offset` in `out`.
void PatchEventHeader(std::string& out, size_t offset, uint8_t kind, uint32_t size);

struct Event {
  uint8_t kind = 0;  // EventKind, kContinues folded away (Next joins the pieces)
  int64_t unix_us = 0;
  std::string payload;
};

// Reads a recording from memory. Never trusts a length: every one is checked
// against what is left and kMaxChunkBytes.
class RecordingReader {
 public:
  explicit RecordingReader(std::string_view file);
  RecordingReader(const RecordingReader&) = delete;
  RecordingReader& operator=(const RecordingReader&) = delete;
  ~RecordingReader();

  // The next event (messages split across chunks joined), or nullopt at the
  // end or on an error (then status() says which).
  std::optional<Event> Next();
  // OK at a clean end; DataLoss for a corrupt chunk or event, InvalidArgument
  // for a file that is not a recording.
  const absl::Status& status() const { return status_; }
  // The recording ends without its end event: the gateway stopped (a crash)
  // before the session ended, possibly in the middle of a chunk. The events
  // before that were read.
  bool interrupted() const { return interrupted_; }
  // Whole chunks read so far, and their decompressed bytes.
  uint64_t chunks() const { return chunks_; }
  uint64_t content_bytes() const { return content_bytes_; }

 private:
  bool NextChunk();  // decompresses the next chunk into content_
  std::optional<Event> NextPiece();

  std::string_view file_;
  size_t offset_ = 0;
  std::optional<Event> partial_[2];  // a message being joined, from / to the client
  std::string content_;              // the current chunk, decompressed
  size_t content_offset_ = 0;
  absl::Status status_;
  bool interrupted_ = false;
  bool saw_end_ = false;
  bool done_ = false;
  uint64_t chunks_ = 0;
  uint64_t content_bytes_ = 0;
  void* dctx_ = nullptr;  // ZSTD_DCtx
};

// The SHA-256 (lowercase hex) and length of a recording's content, as the
// disconnect audit record carries them; `interrupted` when the file ends in a
// partial chunk. An error: not a recording, or a corrupt chunk.
struct ContentDigest {
  std::string sha256_hex;
  uint64_t bytes = 0;
  bool interrupted = false;
};
absl::Status DigestRecording(std::string_view file, ContentDigest* out);

// Streaming SHA-256 of a recording's content (the shard's side and the
// reader's share it, so both hash the same bytes the same way).
class ContentHash {
 public:
  ContentHash();
  ~ContentHash();
  ContentHash(const ContentHash&) = delete;
  ContentHash& operator=(const ContentHash&) = delete;
  void Update(std::string_view bytes);
  // Lowercase hex; the hash cannot be updated afterwards.
  std::string FinishHex();

 private:
  void* ctx_;  // EVP_MD_CTX
};

}  // namespace pgb::recording
