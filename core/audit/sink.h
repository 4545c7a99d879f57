// AuditSink: where the audit writer delivers JSON lines (a file, syslog, an
// HTTP collector). Each sink runs on its own delivery thread (writer.cc), so
// a slow or dead sink never stalls the others; when Deliver fails the lines
// go to the sink's on-disk spill queue (spill.h) and are delivered again, in
// order, once the sink takes them.
//
//   class MySink : public AuditSink {
//     std::string_view name() const override { return "mine"; }
//     absl::Status Deliver(std::string_view lines) override { ... }
//   };
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace pgb::audit {

class AuditSink {
 public:
  virtual ~AuditSink() = default;

  // Unique among the configured sinks; names the spill directory and appears
  // in logs and in "dropped" records ("sink:<name>").
  virtual std::string_view name() const = 0;

  // Delivers complete lines (each ends with '\n'), in order. All or nothing
  // as far as the sink can tell: after an error the same lines are offered
  // again later (receivers that must never see a line twice key on "seq").
  [[nodiscard]] virtual absl::Status Deliver(std::string_view lines) = 0;

  // Called about every 100 ms by the sink's thread: time-based work
  // (rotation, fsync interval). An error is logged and retried.
  [[nodiscard]] virtual absl::Status Tick(absl::Time /*now*/) { return absl::OkStatus(); }

  // Last call: make what was delivered durable and release resources.
  [[nodiscard]] virtual absl::Status Close() { return absl::OkStatus(); }
};

}  // namespace pgb::audit
