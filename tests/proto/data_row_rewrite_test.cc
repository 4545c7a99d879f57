#include "proto/data_row_rewrite.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"
#include "proto/protocol.h"
#include "proto/wire.h"

namespace pgb::proto {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

// A DataRow of these values (nullopt: NULL).
std::string Row(const std::vector<std::optional<std::string>>& values) {
  std::string out;
  MessageWriter w(out, kPqMsg_DataRow);
  w.Int16(static_cast<int16_t>(values.size()));
  for (const auto& v : values) {
    if (!v) {
      w.Int32(-1);
      continue;
    }
    w.Int32(static_cast<int32_t>(v->size()));
    out.append(*v);
  }
  return out;
}

ColumnRewrite Pass() { return {}; }
ColumnRewrite Null() { return {.action = ValueRewrite::kNull, .keep = 0, .replacement = {}}; }
ColumnRewrite Replace(std::string_view text) {
  return {.action = ValueRewrite::kReplace, .keep = 0, .replacement = text};
}
ColumnRewrite Partial(uint32_t keep) {
  return {.action = ValueRewrite::kPartial, .keep = keep, .replacement = {}};
}

struct Rewritten {
  RowRewrite::How how;
  std::string row;  // what the client gets
  uint16_t masked = 0;
};

Rewritten Apply(const std::vector<ColumnRewrite>& plan, std::string row) {
  std::string rebuilt;
  absl::StatusOr<RowRewrite> r = RewriteDataRow(plan, row.data(), row.size(), rebuilt);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return {RowRewrite::kUnchanged, "", 0};
  return {r->how, r->how == RowRewrite::kRebuilt ? rebuilt : row, r->masked_values};
}

TEST(DataRowRewriteTest, SameLengthRewritesInPlace) {
  const Rewritten r =
      Apply({Pass(), Partial(4), Replace("xxxx")}, Row({"1", "alice@example.com", "abcd"}));
  EXPECT_EQ(r.how, RowRewrite::kInPlace);
  EXPECT_EQ(r.row, Row({"1", "*************.com", "xxxx"}));
  EXPECT_EQ(r.masked, 2);
}

TEST(DataRowRewriteTest, OtherLengthsAreRebuilt) {
  const Rewritten r = Apply({Pass(), Replace("****"), Null(), Partial(2)},
                            Row({"7", "123-45-6789", "secret", "h\xc3\xa9llo w\xc3\xb6rld"}));
  EXPECT_EQ(r.how, RowRewrite::kRebuilt);
  // UTF-8 characters count as one star each; the kept suffix is whole characters.
  EXPECT_EQ(r.row, Row({"7", "****", std::nullopt, "*********ld"}));
  EXPECT_EQ(r.masked, 3);
}

TEST(DataRowRewriteTest, PartialKeepsWholeCharactersAtTheEnd) {
  EXPECT_EQ(Apply({Partial(1)}, Row({"ab\xc3\xa9"})).row, Row({"**\xc3\xa9"}));
}

TEST(DataRowRewriteTest, PartialCountsCharactersOfLongUtf8Values) {
  std::string e9;  // nine two-byte characters and ten ASCII ones: past the word-wise count
  for (int i = 0; i < 9; ++i) e9 += "\xc3\xa9";
  const std::string value = e9 + "0123456789";
  EXPECT_EQ(Apply({Partial(3)}, Row({value})).row, Row({std::string(16, '*') + "789"}));
  EXPECT_EQ(Apply({Partial(11)}, Row({value})).row,
            Row({std::string(8, '*') + "\xc3\xa9" + "0123456789"}));
  EXPECT_EQ(Apply({Partial(40)}, Row({value})).row, Row({std::string(19, '*')}));
}

TEST(DataRowRewriteTest, PartialOfAShortValueMasksEverything) {
  // Keeping 4 of "abcd" would show it all.
  EXPECT_EQ(Apply({Partial(4)}, Row({"abcd"})).row, Row({"****"}));
  EXPECT_EQ(Apply({Partial(4)}, Row({"ab"})).row, Row({"**"}));
  EXPECT_EQ(Apply({Partial(4)}, Row({""})).how, RowRewrite::kInPlace);
}

TEST(DataRowRewriteTest, NullStaysNullAndPassIsUnchanged) {
  EXPECT_EQ(
      Apply({Partial(4), Replace("****"), Null()}, Row({std::nullopt, std::nullopt, std::nullopt}))
          .how,
      RowRewrite::kUnchanged);
  const Rewritten r = Apply({Pass(), Pass()}, Row({"a", "b"}));
  EXPECT_EQ(r.how, RowRewrite::kUnchanged);
  EXPECT_EQ(r.row, Row({"a", "b"}));
}

TEST(DataRowRewriteTest, MalformedRowsFailAndStayUntouched) {
  const std::vector<ColumnRewrite> plan = {Replace("xx")};
  std::string rebuilt;
  const auto fails = [&](std::string row) {
    const std::string before = row;
    absl::StatusOr<RowRewrite> r = RewriteDataRow(plan, row.data(), row.size(), rebuilt);
    EXPECT_FALSE(r.ok()) << "accepted " << testing::PrintToString(before);
    EXPECT_EQ(row, before);
    EXPECT_TRUE(rebuilt.empty());
  };
  fails(Row({"ab", "cd"}));  // two columns, plan of one
  fails(Row({}));
  std::string cut = Row({"ab"});
  cut.pop_back();
  fails(cut);
  std::string trailing = Row({"ab"});
  trailing.push_back('x');
  fails(trailing);
  std::string negative = Row({"ab"});
  StoreBigEndian32(negative.data() + 7, static_cast<uint32_t>(-2));
  fails(negative);
  std::string huge = Row({"ab"});
  StoreBigEndian32(huge.data() + 7, 0x7fffffff);
  fails(huge);
  fails("D\0\0\0\x05"s);
}

TEST(RowDescriptionTest, ReadsNamesTypesAndFormats) {
  std::string message;
  {
    MessageWriter w(message, kPqMsg_RowDescription);
    w.Int16(2);
    w.CString("id").Int32(16384).Int16(1).Int32(23).Int16(4).Int32(-1).Int16(0);
    w.CString("email").Int32(16384).Int16(2).Int32(25).Int16(-1).Int32(-1).Int16(1);
  }
  absl::StatusOr<std::vector<ResultField>> fields = ParseRowDescription(message);
  ASSERT_TRUE(fields.ok()) << fields.status();
  ASSERT_EQ(fields->size(), 2u);
  EXPECT_EQ((*fields)[0].name, "id");
  EXPECT_EQ((*fields)[0].type_oid, 23u);
  EXPECT_EQ((*fields)[1].name, "email");
  EXPECT_EQ((*fields)[1].type_oid, 25u);
  EXPECT_EQ((*fields)[1].format, 1);
  for (size_t cut = 5; cut < message.size(); ++cut) {
    std::string shorter = message.substr(0, cut);
    StoreBigEndian32(shorter.data() + 1, static_cast<uint32_t>(cut - 1));
    EXPECT_FALSE(ParseRowDescription(shorter).ok()) << cut;
  }
  EXPECT_FALSE(ParseRowDescription(message + "x").ok());
}

// Field and column counts are unsigned 16-bit, as libpq reads them.
constexpr uint16_t kCountBoundaries[] = {0, 1, 32767, 32768, 40000, 65535};

TEST(RowDescriptionTest, FieldCountIsUnsigned) {
  for (uint16_t n : kCountBoundaries) {
    std::string message;
    {
      MessageWriter w(message, kPqMsg_RowDescription);
      w.Int16(static_cast<int16_t>(n));
      for (int i = 0; i < n; ++i)
        w.CString("").Int32(0).Int16(0).Int32(25).Int16(-1).Int32(-1).Int16(0);
    }
    absl::StatusOr<std::vector<ResultField>> fields = ParseRowDescription(message);
    ASSERT_TRUE(fields.ok()) << n << ": " << fields.status();
    EXPECT_EQ(fields->size(), n);
  }
  // A count of 65535 with one field behind it is cut short (and reserves no
  // more than the message could hold).
  std::string message;
  {
    MessageWriter w(message, kPqMsg_RowDescription);
    w.Int16(-1).CString("a").Int32(0).Int16(0).Int32(25).Int16(-1).Int32(-1).Int16(0);
  }
  EXPECT_FALSE(ParseRowDescription(message).ok());
}

TEST(DataRowRewriteTest, ColumnCountIsUnsigned) {
  for (uint16_t n : kCountBoundaries) {
    const std::vector<std::optional<std::string>> values(n, std::string("ab"));
    std::vector<ColumnRewrite> plan(n, Pass());
    EXPECT_EQ(Apply(plan, Row(values)).how, RowRewrite::kUnchanged) << n;
    if (n == 0) continue;
    // Masking the last column re-frames the row; its count stays n.
    plan.back() = Null();
    const Rewritten r = Apply(plan, Row(values));
    ASSERT_EQ(r.how, RowRewrite::kRebuilt) << n;
    EXPECT_EQ(r.masked, 1);
    EXPECT_EQ(LoadBigEndian16(r.row.data() + kHeaderLength), n);
    EXPECT_EQ(r.row.size(), Row(values).size() - 2);  // "ab" became NULL
    // A plan for one column fewer does not match.
    std::string row = Row(values);
    std::string rebuilt;
    plan.pop_back();
    EXPECT_FALSE(RewriteDataRow(plan, row.data(), row.size(), rebuilt).ok()) << n;
  }
}

TEST(ErrorFieldsTest, DropsTheNamedFieldsOnly) {
  std::string error;
  {
    MessageWriter w(error, kPqMsg_ErrorResponse);
    w.Byte('S').CString("ERROR").Byte('C').CString("23505");
    w.Byte('M').CString("duplicate key value violates unique constraint");
    w.Byte('D').CString("Key (email)=(alice@example.com) already exists.");
    w.Byte('W').CString("SQL function f").Byte('\0');
  }
  std::string out = "before";
  ASSERT_TRUE(AppendWithoutErrorFields(error, "DWq", out));
  std::string expected = "before";
  {
    MessageWriter w(expected, kPqMsg_ErrorResponse);
    w.Byte('S').CString("ERROR").Byte('C').CString("23505");
    w.Byte('M').CString("duplicate key value violates unique constraint").Byte('\0');
  }
  EXPECT_EQ(out, expected);
  for (size_t cut = 0; cut < error.size(); ++cut) {
    std::string o;
    EXPECT_FALSE(AppendWithoutErrorFields(std::string_view(error).substr(0, cut), "D", o)) << cut;
    EXPECT_TRUE(o.empty());
  }
}

}  // namespace
}  // namespace pgb::proto
