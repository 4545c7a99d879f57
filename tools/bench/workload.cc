#include "tools/bench/workload.h"

#include "absl/strings/str_replace.h"
#include "base/str_cat.h"
#include "proto/messages.h"
#include "proto/protocol.h"
#include "proto/wire.h"

namespace pgb::bench {
namespace {

constexpr std::string_view kPreparedName = "pgb_bench";

// pgbench -S's statement; pgbench's update touches pgbench_accounts the same way.
constexpr std::string_view kSelectSql = "SELECT abalance FROM pgbench_accounts WHERE aid = $1";
constexpr std::string_view kUpdateSql =
    "UPDATE pgbench_accounts SET abalance = abalance + $2 WHERE aid = $1";
// 1,000 rows x 10 text columns of 100 bytes: about 1 MB of DataRows, the case
// masking has to rewrite.
constexpr std::string_view kWideSql =
    "SELECT repeat('x', 100) AS c1, repeat('x', 100) AS c2, repeat('x', 100) AS c3, "
    "repeat('x', 100) AS c4, repeat('x', 100) AS c5, repeat('x', 100) AS c6, "
    "repeat('x', 100) AS c7, repeat('x', 100) AS c8, repeat('x', 100) AS c9, "
    "repeat('x', 100) AS c10 FROM generate_series(1, 1000)";
constexpr std::string_view kCopyOutSql =
    "COPY (SELECT i, repeat('x', 100) FROM generate_series(1, 100000) AS i) TO STDOUT";

}  // namespace

std::string_view WorkloadSql(Workload w) {
  switch (w) {
    case Workload::kSelect:
    case Workload::kChurn:
      return kSelectSql;
    case Workload::kUpdate:
      return kUpdateSql;
    case Workload::kWide:
      return kWideSql;
    case Workload::kCopyOut:
      return kCopyOutSql;
  }
  return kSelectSql;
}

void AppendBind(std::string& out, std::string_view statement,
                const std::vector<std::string_view>& params) {
  proto::MessageWriter w(out, proto::kPqMsg_Bind);
  w.CString("").CString(statement).Int16(0);  // unnamed portal; all parameters text
  w.Int16(static_cast<int16_t>(params.size()));
  for (std::string_view p : params) w.Int32(static_cast<int32_t>(p.size())).Bytes(p);
  w.Int16(0);  // all result columns text
}

void AppendExecute(std::string& out) {
  proto::MessageWriter(out, proto::kPqMsg_Execute).CString("").Int32(0);
}

void AppendSync(std::string& out) { proto::MessageWriter(out, proto::kPqMsg_Sync); }

TransactionBuilder::TransactionBuilder(Workload workload, Protocol protocol, int scale,
                                       uint64_t seed)
    : workload_(workload), protocol_(protocol), max_aid_(int64_t{100000} * scale), rng_(seed) {}

void TransactionBuilder::AppendPrepare(std::string& out) const {
  proto::AppendParse(out, kPreparedName, WorkloadSql(workload_));
  AppendSync(out);
}

void TransactionBuilder::AppendTransaction(std::string& out) {
  std::string aid;
  std::string delta;
  std::vector<std::string_view> params;
  if (workload_ == Workload::kSelect || workload_ == Workload::kChurn ||
      workload_ == Workload::kUpdate) {
    aid = Cat(std::uniform_int_distribution<int64_t>(1, max_aid_)(rng_));
    params.push_back(aid);
  }
  if (workload_ == Workload::kUpdate) {
    delta = Cat(std::uniform_int_distribution<int>(-5000, 5000)(rng_));
    params.push_back(delta);
  }
  const std::string_view sql = WorkloadSql(workload_);
  switch (protocol_) {
    case Protocol::kSimple: {
      // Literal values in place of $1/$2 (integers: nothing to quote).
      std::string text =
          params.size() >= 2
              ? absl::StrReplaceAll(std::string(sql), {{"$1", std::string(params[0])},
                                                       {"$2", std::string(params[1])}})
          : params.size() == 1
              ? absl::StrReplaceAll(std::string(sql), {{"$1", std::string(params[0])}})
              : std::string(sql);
      proto::AppendQuery(out, text);
      return;
    }
    case Protocol::kExtended:
      proto::AppendParse(out, "", sql);
      AppendBind(out, "", params);
      break;
    case Protocol::kPrepared:
      AppendBind(out, kPreparedName, params);
      break;
  }
  AppendExecute(out);
  AppendSync(out);
}

}  // namespace pgb::bench
