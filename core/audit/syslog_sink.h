// SyslogSink: each audit line as one RFC 5424 message, over UDP (one datagram
// per message), TCP (RFC 6587 octet-counting framing: "<length> <message>")
// or a unix datagram socket (such as /dev/log). PRI is facility*8 + 6
// (informational; facility 13, "log audit", by default), MSGID "audit", no
// structured data; the message is the JSON line:
//
//   <110>1 2024-05-01T12:00:00.123456Z gw-1 pgbastion 4242 audit - {"v":2,...}
//
// Delivery: TCP notices a receiver that went away (a FIN or reset waiting on
// the socket) before each batch and reconnects; a batch that fails is spilled
// and sent again. Syslog has no acknowledgements: a receiver killed with
// messages unread in its socket buffer loses them, although send() took
// them. So after a broken connection the sink first sends again what it sent
// in the last 2 seconds (at most 4 MiB) before the break, as rsyslog's
// resendLastMSGOnReconnect does: at least once, and receivers dedupe on
// "seq" (lines the receiver had taken arrive twice). UDP and unix datagrams carry
// no acknowledgement: a receiver that is down while the socket accepts
// datagrams loses them (use TCP when that matters).
//
//   SyslogSink sink("syslog0", config);
//   PGB_RETURN_IF_ERROR(sink.Deliver(lines));
#pragma once

#include <deque>
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
  absl::Status SendAll(std::string_view frames);  // on error: disconnected, replay_ set
  void RememberSent(std::string frames);

  static constexpr absl::Duration kReplayWindow = absl::Seconds(2);
  static constexpr size_t kReplayMaxBytes = 4 << 20;
  struct Sent {
    absl::Time sent;
    std::string frames;
  };

  std::string name_;
  SyslogSinkConfig config_;
  std::string header_suffix_;  // " <hostname> <app> <pid> audit - "
  int fd_ = -1;
  std::deque<Sent> recent_;  // TCP: frames sent on this connection, newest last
  size_t recent_bytes_ = 0;
  bool replay_ = false;  // the connection broke: send recent_ first on the next one
};

}  // namespace pgb::audit
