// SyslogSink: each audit line as one RFC 5424 message, over UDP (one datagram
// per message), TCP (RFC 6587 octet-counting framing: "<length> <message>")
// or a unix datagram socket (such as /dev/log). PRI is facility*8 + 6
// (informational; facility 13, "log audit", by default), MSGID "audit", no
// structured data; the message is the JSON line:
//
//   <110>1 2024-05-01T12:00:00.123456Z gw-1 pgbastion 4242 audit - {"v":1,...}
//
// Delivery: TCP notices a receiver that went away (a FIN or reset waiting on
// the socket) before each batch and reconnects; a batch that fails is spilled
// and sent again (lines that the receiver had already taken before the
// failure then arrive twice: dedupe on "seq"). UDP and unix datagrams carry
// no acknowledgement: a receiver that is down while the socket accepts
// datagrams loses them (use TCP when that matters).
//
//   SyslogSink sink("syslog0", config);
//   PGB_RETURN_IF_ERROR(sink.Deliver(lines));
#pragma once

#include <string>

#include "core/audit/audit_config.h"
#include "core/audit/sink.h"

namespace pgb::audit {

class SyslogSink : public AuditSink {
 public:
  SyslogSink(std::string name, SyslogSinkConfig config);
  ~SyslogSink() override;

  std::string_view name() const override { return name_; }
  absl::Status Deliver(std::string_view lines) override;
  absl::Status Close() override;

  // One message for `line` (without '\n'), without framing.
  std::string Format(std::string_view line) const;

 private:
  absl::Status Connect();
  void Disconnect();
  bool PeerClosed() const;

  std::string name_;
  SyslogSinkConfig config_;
  std::string header_suffix_;  // " <hostname> <app> <pid> audit - "
  int fd_ = -1;
};

}  // namespace pgb::audit
