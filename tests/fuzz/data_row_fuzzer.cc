// Fuzzes the masking rewrites of proto/data_row_rewrite.h with bytes that
// claim to be a database's messages. The first input byte picks a plan (one
// action per column, from its bits); the rest is a DataRow body. A rewrite
// that fails must leave the row untouched; one that succeeds must produce a
// well-framed DataRow whose unmasked values are the original ones and whose
// masked ones are what the plan says. The same bytes are also read as a
// RowDescription and as an ErrorResponse with fields cut out.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/data_row_rewrite.h"
#include "proto/frame.h"
#include "proto/protocol.h"
#include "proto/wire.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace proto = pgb::proto;

std::string Framed(char type, std::string_view body) {
  std::string message;
  proto::MessageWriter(message, type).Bytes(body);
  return message;
}

// The values of a well-framed DataRow (nullopt-like: length -1 kept).
struct Value {
  int32_t length;
  std::string_view bytes;
};
std::vector<Value> ValuesOf(std::string_view message) {
  proto::Cursor c(message.substr(proto::kHeaderLength));
  uint16_t count = 0;
  FUZZ_CHECK(c.ReadUint16(&count));
  std::vector<Value> values;
  for (uint32_t i = 0; i < count; ++i) {
    Value v{};
    FUZZ_CHECK(c.ReadInt32(&v.length) && v.length >= -1);
    if (v.length > 0) FUZZ_CHECK(c.ReadBytes(static_cast<size_t>(v.length), &v.bytes));
    values.push_back(v);
  }
  FUZZ_CHECK(c.AtEnd());
  return values;
}

void FuzzDataRow(uint8_t selector, std::string_view body) {
  static const std::string_view kReplacement = "****";
  std::vector<proto::ColumnRewrite> plan;
  const size_t columns = body.size() >= 2 ? proto::LoadBigEndian16(body.data()) : 0;
  for (size_t i = 0; i < columns && i < 64; ++i) {
    const unsigned bits = (selector >> ((i % 4) * 2)) & 3;
    plan.push_back({.action = static_cast<proto::ValueRewrite>(bits),
                    .keep = static_cast<uint32_t>(i % 5),
                    .replacement = kReplacement});
  }
  const std::string original = Framed(proto::kPqMsg_DataRow, body);
  std::string row = original;
  std::string rebuilt;
  absl::StatusOr<proto::RowRewrite> r =
      proto::RewriteDataRow(plan, row.data(), row.size(), rebuilt);
  if (!r.ok()) {
    FUZZ_CHECK(row == original && rebuilt.empty());
    return;
  }
  const std::string& out = r->how == proto::RowRewrite::kRebuilt ? rebuilt : row;
  if (r->how != proto::RowRewrite::kRebuilt)
    FUZZ_CHECK(rebuilt.empty() && row.size() == original.size());
  if (r->how == proto::RowRewrite::kUnchanged) FUZZ_CHECK(row == original && r->masked_values == 0);
  const proto::MessageResult m =
      proto::DecodeMessage(out, proto::Direction::kBackend, proto::kDefaultMaxMessageLength);
  FUZZ_CHECK(m.status == proto::DecodeStatus::kOk && m.message.total_size == out.size());
  const std::vector<Value> before = ValuesOf(original);
  const std::vector<Value> after = ValuesOf(out);
  FUZZ_CHECK(before.size() == plan.size() && after.size() == plan.size());
  size_t masked = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    const Value& b = before[i];
    const Value& a = after[i];
    if (b.length == -1 || plan[i].action == proto::ValueRewrite::kPass) {
      FUZZ_CHECK(a.length == b.length && a.bytes == b.bytes);
      continue;
    }
    ++masked;
    switch (plan[i].action) {
      case proto::ValueRewrite::kPass:
        break;
      case proto::ValueRewrite::kNull:
        FUZZ_CHECK(a.length == -1);
        break;
      case proto::ValueRewrite::kReplace:
        FUZZ_CHECK(a.bytes == kReplacement);
        break;
      case proto::ValueRewrite::kPartial: {
        // Stars, then a suffix of the original shorter than the original.
        const size_t stars = a.bytes.find_first_not_of('*');
        const std::string_view suffix =
            stars == std::string_view::npos ? std::string_view() : a.bytes.substr(stars);
        FUZZ_CHECK(b.bytes.size() >= suffix.size());
        FUZZ_CHECK(b.bytes.substr(b.bytes.size() - suffix.size()) == suffix);
        FUZZ_CHECK(suffix.size() < b.bytes.size() || b.bytes.empty());
        break;
      }
    }
  }
  FUZZ_CHECK(masked == r->masked_values);
}

void FuzzRowDescription(std::string_view body) {
  const std::string message = Framed(proto::kPqMsg_RowDescription, body);
  absl::StatusOr<std::vector<proto::ResultField>> fields = proto::ParseRowDescription(message);
  if (!fields.ok()) return;
  for (const proto::ResultField& f : *fields) {
    FUZZ_CHECK(f.name.data() >= message.data() &&
               f.name.data() + f.name.size() <= message.data() + message.size());
  }
}

void FuzzErrorFields(std::string_view body) {
  const std::string message = Framed(proto::kPqMsg_ErrorResponse, body);
  std::string out;
  if (!proto::AppendWithoutErrorFields(message, "DWqp", out)) {
    FUZZ_CHECK(out.empty());
    return;
  }
  const proto::MessageResult m =
      proto::DecodeMessage(out, proto::Direction::kBackend, proto::kDefaultMaxMessageLength);
  FUZZ_CHECK(m.status == proto::DecodeStatus::kOk && m.message.total_size == out.size());
  FUZZ_CHECK(out.size() <= message.size());
  proto::Cursor c(m.message.body);
  char code = 0;
  while (c.ReadByte(&code) && code != '\0') {
    FUZZ_CHECK(std::string_view("DWqp").find(code) == std::string_view::npos);
    std::string_view value;
    FUZZ_CHECK(c.ReadCString(&value));
  }
  FUZZ_CHECK(code == '\0' && c.AtEnd());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  FuzzDataRow(data[0], body);
  FuzzRowDescription(body);
  FuzzErrorFields(body);
  return 0;
}
