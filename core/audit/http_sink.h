// HttpSink: audit lines POSTed to a collector as JSON arrays
// (`[{"v":2,...},{"v":2,...}]`, Content-Type application/json), at most
// max_batch records per request, with libcurl. Any 2xx answer is success;
// anything else (connection refused, timeout, 4xx, 5xx) fails the delivery,
// and the lines are spilled and offered again with exponential backoff
// (retry_initial doubling to retry_max; the sink's thread does the waiting).
// Lines already accepted in an earlier request of a failed delivery are
// skipped when it is retried (by "seq").
//
// Each request carries `Idempotency-Key: <first seq>-<last seq>-<16 hex>`
// (the hex digits: the start of the first record's "prev", which tells two
// trails apart). A request that got no answer (the collector stored the
// batch, then died or timed out before it answered) is retried with the
// same records and the same key, so a collector that remembers the keys it
// stored answers 2xx without storing them again. After a gateway restart a
// retried batch may be cut differently: a collector that must never store a
// record twice keys on "seq" as well.
//
//   PGB_ASSIGN_OR_RETURN(std::unique_ptr<HttpSink> sink, HttpSink::Create("http0", config));
//   PGB_RETURN_IF_ERROR(sink->Deliver(lines));
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "core/audit/audit_config.h"
#include "core/audit/sink.h"

namespace pgb::audit {

class HttpSink : public AuditSink {
 public:
  // Reads the bearer token file (mode 600) if configured.
  static absl::StatusOr<std::unique_ptr<HttpSink>> Create(std::string name, HttpSinkConfig config);
  ~HttpSink() override;

  std::string_view name() const override { return name_; }
  absl::Status Deliver(std::string_view lines) override;

 private:
  HttpSink(std::string name, HttpSinkConfig config)
      : name_(std::move(name)), config_(std::move(config)) {}
  absl::Status Post(const std::string& body, const std::string& idempotency_key);

  std::string name_;
  HttpSinkConfig config_;
  std::string authorization_;  // "Authorization: Bearer ..."; never logged
  void* curl_ = nullptr;       // CURL*, reused (keep-alive)
  uint64_t delivered_seq_ = 0;
  std::pair<uint64_t, uint64_t> unanswered_{0, 0};  // seqs of the failed request, if any
};

}  // namespace pgb::audit
