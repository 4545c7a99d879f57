// Bounds-checked reading and building of protocol message bodies.
//
// Cursor walks a message body (after the 5-byte header) the way PgBouncer's
// mbuf does: every read checks the remaining length first and reports failure
// instead of reading past the end. MessageWriter appends one complete message
// (type, length, body) to a caller's byte string and fills in the length.
//
//   Cursor body(view.body);
//   std::string_view name; int32_t code;
//   if (!body.ReadCString(&name) || !body.ReadInt32(&code)) return Malformed();
//
//   std::string out;
//   MessageWriter(out, kPqMsg_ReadyForQuery).Byte('I');  // length set on destruction
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace pgb::proto {

inline uint32_t LoadBigEndian32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}
inline uint16_t LoadBigEndian16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>((u[0] << 8) | u[1]);
}
inline void StoreBigEndian32(char* p, uint32_t v) {
  p[0] = static_cast<char>(v >> 24);
  p[1] = static_cast<char>(v >> 16);
  p[2] = static_cast<char>(v >> 8);
  p[3] = static_cast<char>(v);
}

class Cursor {
 public:
  explicit Cursor(std::string_view bytes) : rest_(bytes) {}

  [[nodiscard]] bool ReadByte(char* out) {
    if (rest_.empty()) return false;
    *out = rest_[0];
    rest_.remove_prefix(1);
    return true;
  }
  [[nodiscard]] bool ReadInt16(int16_t* out) {
    if (rest_.size() < 2) return false;
    *out = static_cast<int16_t>(LoadBigEndian16(rest_.data()));
    rest_.remove_prefix(2);
    return true;
  }
  // Counts (parameters, formats, fields, columns) are unsigned 16-bit on the
  // wire: PostgreSQL reads them with pq_getmsgint(msg, 2), 0..65535. Reading
  // them as int16_t would refuse everything above 32767.
  [[nodiscard]] bool ReadUint16(uint16_t* out) {
    if (rest_.size() < 2) return false;
    *out = LoadBigEndian16(rest_.data());
    rest_.remove_prefix(2);
    return true;
  }
  [[nodiscard]] bool ReadInt32(int32_t* out) {
    if (rest_.size() < 4) return false;
    *out = static_cast<int32_t>(LoadBigEndian32(rest_.data()));
    rest_.remove_prefix(4);
    return true;
  }
  // A NUL-terminated string; the view excludes the terminator.
  [[nodiscard]] bool ReadCString(std::string_view* out) {
    const size_t nul = rest_.find('\0');
    if (nul == std::string_view::npos) return false;
    *out = rest_.substr(0, nul);
    rest_.remove_prefix(nul + 1);
    return true;
  }
  [[nodiscard]] bool ReadBytes(size_t n, std::string_view* out) {
    if (rest_.size() < n) return false;
    *out = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return true;
  }
  bool AtEnd() const { return rest_.empty(); }
  std::string_view Rest() const { return rest_; }

 private:
  std::string_view rest_;
};

class MessageWriter {
 public:
  // Starts a regular message of `type`.
  MessageWriter(std::string& out, char type) : out_(out), start_(out.size()) {
    out_.push_back(type);
    out_.append(4, '\0');
    length_at_ = start_ + 1;
  }
  // Starts an untyped startup-phase packet (StartupMessage, CancelRequest, ...).
  struct Untyped {};
  MessageWriter(std::string& out, Untyped) : out_(out), start_(out.size()) {
    out_.append(4, '\0');
    length_at_ = start_;
  }
  ~MessageWriter() {
    StoreBigEndian32(out_.data() + length_at_, static_cast<uint32_t>(out_.size() - length_at_));
  }
  MessageWriter(const MessageWriter&) = delete;
  MessageWriter& operator=(const MessageWriter&) = delete;

  MessageWriter& Byte(char c) {
    out_.push_back(c);
    return *this;
  }
  MessageWriter& Int16(int16_t v) {
    out_.push_back(static_cast<char>((static_cast<uint16_t>(v) >> 8) & 0xff));
    out_.push_back(static_cast<char>(v & 0xff));
    return *this;
  }
  MessageWriter& Int32(int32_t v) {
    char b[4];
    StoreBigEndian32(b, static_cast<uint32_t>(v));
    out_.append(b, 4);
    return *this;
  }
  // Appends s and a NUL terminator. s must not contain NUL.
  MessageWriter& CString(std::string_view s) {
    out_.append(s);
    out_.push_back('\0');
    return *this;
  }
  MessageWriter& Bytes(std::string_view s) {
    out_.append(s);
    return *this;
  }

 private:
  std::string& out_;
  size_t start_;
  size_t length_at_;
};

}  // namespace pgb::proto
