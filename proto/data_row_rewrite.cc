#include "proto/data_row_rewrite.h"

#include <algorithm>
#include <cstring>

#include "absl/status/status.h"
#include "base/str_cat.h"
#include "proto/frame.h"
#include "proto/protocol.h"
#include "proto/wire.h"

namespace pgb::proto {
namespace {

bool IsUtf8Continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// Characters of UTF-8 text: bytes that are not continuation bytes
// (10xxxxxx), counted eight bytes at a time.
size_t Utf8Characters(const char* p, size_t n) {
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  size_t continuations = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    // Bit 7 set and bit 6 clear, in each byte; then the eight 0/1 bytes are
    // summed by a multiplication (no popcnt in the baseline x86-64 target).
    const uint64_t ones = (w & ~(w << 1) & kHigh) >> 7;
    continuations += static_cast<size_t>((ones * 0x0101010101010101ULL) >> 56);
  }
  for (; i < n; ++i) continuations += IsUtf8Continuation(p[i]) ? 1 : 0;
  return n - continuations;
}

// Where the kept characters of a partial mask start: the last `keep`
// characters, unless the value has no more than that; then every character is
// masked (returns the value's size), or the mask would show all of it.
size_t KeptSuffixStart(std::string_view value, uint32_t keep) {
  size_t start = value.size();
  uint32_t kept = 0;
  while (start > 0 && kept < keep) {
    --start;
    if (!IsUtf8Continuation(value[start])) ++kept;
  }
  return start == 0 ? value.size() : start;
}

// A partial mask of one value: `stars` asterisks, then value[suffix_start..].
struct PartialMask {
  size_t stars = 0;
  size_t suffix_start = 0;
};

PartialMask PartialOf(std::string_view value, uint32_t keep) {
  const size_t start = KeptSuffixStart(value, keep);
  return {Utf8Characters(value.data(), start), start};
}

// The values of a DataRow whose lengths were checked, in order.
class ValueWalk {
 public:
  explicit ValueWalk(char* message) : p_(message + kHeaderLength + 2) {}
  // The next value; length -1 for NULL.
  int32_t Next(char** value) {
    const int32_t length = static_cast<int32_t>(LoadBigEndian32(p_));
    *value = p_ + 4;
    p_ += 4 + (length > 0 ? length : 0);
    return length;
  }

 private:
  char* p_;
};

// Every rewrite keeps its value's length: the row is rewritten where it lies.
void RewriteInPlace(const std::vector<ColumnRewrite>& plan, char* message) {
  ValueWalk walk(message);
  for (const ColumnRewrite& column : plan) {
    char* value = nullptr;
    const int32_t length = walk.Next(&value);
    if (length == -1) continue;
    if (column.action == ValueRewrite::kReplace) {
      std::memcpy(value, column.replacement.data(), column.replacement.size());
    } else if (column.action == ValueRewrite::kPartial) {
      // In place means one byte per masked character: no counting again.
      std::memset(value, '*', KeptSuffixStart(std::string_view(value, length), column.keep));
    }
  }
}

void Rebuild(const std::vector<ColumnRewrite>& plan, char* message, uint16_t count,
             std::string& out) {
  ValueWalk walk(message);
  MessageWriter writer(out, kPqMsg_DataRow);
  writer.Int16(static_cast<int16_t>(count));
  for (const ColumnRewrite& column : plan) {
    char* value = nullptr;
    const int32_t length = walk.Next(&value);
    const std::string_view original(value, length > 0 ? static_cast<size_t>(length) : 0);
    if (length == -1 || column.action == ValueRewrite::kPass) {
      writer.Int32(length);
      out.append(original);
      continue;
    }
    switch (column.action) {
      case ValueRewrite::kPass:
      case ValueRewrite::kNull:
        writer.Int32(-1);
        break;
      case ValueRewrite::kReplace:
        writer.Int32(static_cast<int32_t>(column.replacement.size()));
        out.append(column.replacement);
        break;
      case ValueRewrite::kPartial: {
        const PartialMask mask = PartialOf(original, column.keep);
        const std::string_view suffix = original.substr(mask.suffix_start);
        writer.Int32(static_cast<int32_t>(mask.stars + suffix.size()));
        out.append(mask.stars, '*');
        out.append(suffix);
        break;
      }
    }
  }
}

}  // namespace

absl::StatusOr<std::vector<ResultField>> ParseRowDescription(std::string_view message) {
  if (message.size() < kHeaderLength) return absl::InvalidArgumentError("RowDescription too short");
  Cursor body(message.substr(kHeaderLength));
  // Unsigned, as libpq reads it (PostgreSQL itself stops at 1664 columns).
  uint16_t count = 0;
  if (!body.ReadUint16(&count)) {
    return absl::InvalidArgumentError("RowDescription without a field count");
  }
  // Each field takes at least kMinFieldBytes of the message: reserve no more
  // than the message can hold, whatever the count claims.
  constexpr size_t kMinFieldBytes = 1 + 4 + 2 + 4 + 2 + 4 + 2;  // empty name
  std::vector<ResultField> fields;
  fields.reserve(std::min<size_t>(count, body.Rest().size() / kMinFieldBytes));
  for (uint32_t i = 0; i < count; ++i) {
    ResultField field;
    int32_t table_oid = 0, type_oid = 0, type_modifier = 0;
    int16_t column = 0, type_size = 0;
    if (!body.ReadCString(&field.name) || !body.ReadInt32(&table_oid) || !body.ReadInt16(&column) ||
        !body.ReadInt32(&type_oid) || !body.ReadInt16(&type_size) ||
        !body.ReadInt32(&type_modifier) || !body.ReadInt16(&field.format)) {
      return absl::InvalidArgumentError(Cat("RowDescription field ", i, " is cut short"));
    }
    field.type_oid = static_cast<uint32_t>(type_oid);
    fields.push_back(field);
  }
  if (!body.AtEnd()) return absl::InvalidArgumentError("RowDescription has bytes after its fields");
  return fields;
}

absl::StatusOr<RowRewrite> RewriteDataRow(const std::vector<ColumnRewrite>& plan, char* message,
                                          size_t size, std::string& rebuilt) {
  if (size < kHeaderLength + 2) return absl::InvalidArgumentError("DataRow too short");
  const char* const end = message + size;
  const char* p = message + kHeaderLength;
  const uint16_t count = LoadBigEndian16(p);
  p += 2;
  if (count != plan.size()) {
    return absl::InvalidArgumentError(
        Cat("DataRow has ", count, " columns, its ", "RowDescription ", plan.size()));
  }
  // First pass: check every length, and whether each rewrite keeps it.
  uint16_t masked = 0;
  bool same_length = true;
  for (const ColumnRewrite& column : plan) {
    if (end - p < 4) return absl::InvalidArgumentError("DataRow cut short");
    const int32_t length = static_cast<int32_t>(LoadBigEndian32(p));
    p += 4;
    if (length < -1 || length > end - p) {
      return absl::InvalidArgumentError(Cat("DataRow value length ", length, " invalid"));
    }
    if (length == -1) continue;  // NULL stays NULL
    const std::string_view value(p, static_cast<size_t>(length));
    p += length;
    switch (column.action) {
      case ValueRewrite::kPass:
        break;
      case ValueRewrite::kNull:
        ++masked;
        same_length = false;
        break;
      case ValueRewrite::kReplace:
        ++masked;
        same_length &= column.replacement.size() == value.size();
        break;
      case ValueRewrite::kPartial: {
        ++masked;
        const PartialMask mask = PartialOf(value, column.keep);
        same_length &= mask.stars == mask.suffix_start;
        break;
      }
    }
  }
  if (p != end) return absl::InvalidArgumentError("DataRow has bytes after its values");
  if (masked == 0) return RowRewrite{RowRewrite::kUnchanged, 0};
  if (same_length) {
    RewriteInPlace(plan, message);
    return RowRewrite{RowRewrite::kInPlace, masked};
  }
  Rebuild(plan, message, count, rebuilt);
  return RowRewrite{RowRewrite::kRebuilt, masked};
}

bool AppendWithoutErrorFields(std::string_view message, std::string_view codes, std::string& out) {
  if (message.size() < kHeaderLength + 1) return false;
  // Check the whole message first: nothing of a malformed one goes on.
  Cursor check(message.substr(kHeaderLength));
  while (true) {
    char code = 0;
    std::string_view value;
    if (!check.ReadByte(&code)) return false;
    if (code == '\0') {
      if (!check.AtEnd()) return false;
      break;
    }
    if (!check.ReadCString(&value)) return false;
  }
  Cursor body(message.substr(kHeaderLength));
  MessageWriter writer(out, message[0]);
  char code = 0;
  while (body.ReadByte(&code) && code != '\0') {
    std::string_view value;
    if (!body.ReadCString(&value)) break;  // checked above
    if (codes.find(code) == std::string_view::npos) writer.Byte(code).CString(value);
  }
  writer.Byte('\0');
  return true;
}

}  // namespace pgb::proto
