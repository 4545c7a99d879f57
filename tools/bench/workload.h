// What one transaction of each workload sends, for each protocol. Pure byte
// building: the connection state machine sends the bytes and reads replies
// until ReadyForQuery.
// Spec: https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY
//
//   TransactionBuilder tx(Workload::kSelect, Protocol::kPrepared, /*scale=*/1, seed);
//   std::string out;
//   tx.AppendPrepare(out);      // once per connection: Parse(named) + Sync
//   tx.AppendTransaction(out);  // each time: Bind/Execute/Sync
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "tools/bench/options.h"

namespace pgb::bench {

// The SQL of each workload, with $1, $2 for the parameters (select/update).
std::string_view WorkloadSql(Workload w);

// Frontend extended-query messages the gateway itself only relays (Parse and
// Query are in proto/messages.h). Parameters and result columns are text.
void AppendBind(std::string& out, std::string_view statement,
                const std::vector<std::string_view>& params);
void AppendExecute(std::string& out);
void AppendSync(std::string& out);

class TransactionBuilder {
 public:
  TransactionBuilder(Workload workload, Protocol protocol, int scale, uint64_t seed);

  // Whether the connection must send AppendPrepare's bytes (and wait for
  // ReadyForQuery) before its first transaction.
  bool needs_prepare() const { return protocol_ == Protocol::kPrepared; }
  void AppendPrepare(std::string& out) const;
  // One transaction, ending in Sync (or a simple Query): exactly one
  // ReadyForQuery answers it.
  void AppendTransaction(std::string& out);

 private:
  Workload workload_;
  Protocol protocol_;
  int64_t max_aid_;
  std::mt19937_64 rng_;
};

}  // namespace pgb::bench
