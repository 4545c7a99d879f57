#include "tools/bench/options.h"

#include <charconv>
#include <string_view>

#include "absl/strings/numbers.h"
#include "base/str_cat.h"

namespace pgb::bench {

const char* ProtocolName(Protocol p) {
  switch (p) {
    case Protocol::kSimple:
      return "simple";
    case Protocol::kExtended:
      return "extended";
    case Protocol::kPrepared:
      return "prepared";
  }
  return "?";
}

const char* WorkloadName(Workload w) {
  switch (w) {
    case Workload::kSelect:
      return "select";
    case Workload::kUpdate:
      return "update";
    case Workload::kWide:
      return "wide";
    case Workload::kCopyOut:
      return "copy-out";
    case Workload::kChurn:
      return "churn";
  }
  return "?";
}

const char* SslModeName(SslMode m) {
  switch (m) {
    case SslMode::kDisable:
      return "disable";
    case SslMode::kRequire:
      return "require";
    case SslMode::kVerifyCa:
      return "verify-ca";
    case SslMode::kVerifyFull:
      return "verify-full";
  }
  return "?";
}

const char* BenchUsage() {
  return "usage: pgbastion-bench --host H --port P --user U --dbname D [options]\n"
         "\n"
         "A PostgreSQL load generator speaking the v3 protocol itself over io_uring.\n"
         "\n"
         "  --host H            server address (default 127.0.0.1)\n"
         "  --port P            server port (default 5432)\n"
         "  --user U            user name (required)\n"
         "  --dbname D          database (required)\n"
         "  --password-env VAR  read the password from $VAR (default PGPASSWORD); used for\n"
         "                      cleartext, MD5 and SCRAM-SHA-256 logins\n"
         "  --token-env VAR     log in with the token (JWT) in $VAR instead: sent as the\n"
         "                      cleartext password the gateway asks token users for;\n"
         "                      needs --sslmode require or stricter\n"
         "  --clients N         connections (default 1)\n"
         "  --threads M         threads, one io_uring each (default 1)\n"
         "  --duration S        measured seconds (default 10)\n"
         "  --transactions T    instead of --duration: T transactions in total\n"
         "  --warmup S          seconds run but not measured first (default 0)\n"
         "  --protocol P        simple | extended | prepared (default simple)\n"
         "  --workload W        select | update | wide | copy-out | churn (default select)\n"
         "  --scale N           pgbench scale of the tables (default 1)\n"
         "  --sslmode M         disable | require | verify-ca | verify-full (default\n"
         "                      disable): SSLRequest, then TLS 1.2+ with OpenSSL; a server\n"
         "                      that refuses TLS is a failure (no prefer/allow)\n"
         "  --sslrootcert FILE  PEM CA certificates for verify-ca and verify-full;\n"
         "                      verify-full also checks --host against the certificate\n"
         "  --progress S        print a progress line every S seconds\n"
         "  --json              print the report as one JSON object\n"
         "  --help              this text\n"
         "\n"
         "select/update need `pgbench -i -s N`; wide, copy-out need no table.\n"
         "churn connects, logs in (TLS handshake and token or SCRAM included), runs one\n"
         "select and disconnects per transaction: the cost of a login.\n"
         "Secrets come only from the environment, never from the command line.\n"
         "Exit codes: 0 run completed, 1 connection/login/protocol failure, 2 bad usage.\n";
}

namespace {

absl::Status Bad(std::string_view flag, std::string_view why) {
  return absl::InvalidArgumentError(Cat(flag, ": ", why));
}

absl::Status ParseInt(std::string_view flag, std::string_view v, int64_t min, int64_t* out) {
  int64_t n = 0;
  if (!absl::SimpleAtoi(std::string(v), &n) || n < min) {
    return Bad(flag, Cat("expected an integer >= ", min, ", got '", v, "'"));
  }
  *out = n;
  return absl::OkStatus();
}

absl::Status ParseSeconds(std::string_view flag, std::string_view v, double min, double* out) {
  double d = 0;
  if (!absl::SimpleAtod(std::string(v), &d) || !(d >= min) || d > 1e7) {
    return Bad(flag, Cat("expected seconds >= ", min, ", got '", v, "'"));
  }
  *out = d;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<BenchOptions> ParseBenchOptions(int argc, char** argv) {
  BenchOptions o;
  bool have_duration = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    std::string_view value;
    // Both "--flag value" and "--flag=value".
    if (const size_t eq = flag.find('='); flag.starts_with("--") && eq != std::string_view::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    } else if (flag == "--help" || flag == "-h") {
      o.help = true;
      continue;
    } else if (flag == "--json") {
      o.json = true;
      continue;
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return Bad(flag, flag.starts_with("--") ? "needs a value" : "unknown argument");
    }
    int64_t n = 0;
    if (flag == "--host") {
      o.host = std::string(value);
    } else if (flag == "--port") {
      if (absl::Status s = ParseInt(flag, value, 1, &n); !s.ok()) return s;
      if (n > 65535) return Bad(flag, "out of range");
      o.port = std::string(value);
    } else if (flag == "--user") {
      o.user = std::string(value);
    } else if (flag == "--dbname") {
      o.dbname = std::string(value);
    } else if (flag == "--password-env") {
      o.password_env = std::string(value);
    } else if (flag == "--clients") {
      if (absl::Status s = ParseInt(flag, value, 1, &n); !s.ok()) return s;
      if (n > 100000) return Bad(flag, "at most 100000");
      o.clients = static_cast<int>(n);
    } else if (flag == "--threads") {
      if (absl::Status s = ParseInt(flag, value, 1, &n); !s.ok()) return s;
      if (n > 1024) return Bad(flag, "at most 1024");
      o.threads = static_cast<int>(n);
    } else if (flag == "--duration") {
      if (absl::Status s = ParseSeconds(flag, value, 0.001, &o.duration_s); !s.ok()) return s;
      have_duration = true;
    } else if (flag == "--transactions") {
      if (absl::Status s = ParseInt(flag, value, 1, &o.transactions); !s.ok()) return s;
    } else if (flag == "--warmup") {
      if (absl::Status s = ParseSeconds(flag, value, 0, &o.warmup_s); !s.ok()) return s;
    } else if (flag == "--progress") {
      if (absl::Status s = ParseSeconds(flag, value, 0, &o.progress_s); !s.ok()) return s;
    } else if (flag == "--scale") {
      if (absl::Status s = ParseInt(flag, value, 1, &n); !s.ok()) return s;
      if (n > 20000) return Bad(flag, "at most 20000");
      o.scale = static_cast<int>(n);
    } else if (flag == "--token-env") {
      if (value.empty()) return Bad(flag, "needs a variable name");
      o.token_env = std::string(value);
    } else if (flag == "--sslmode") {
      if (value == "disable")
        o.sslmode = SslMode::kDisable;
      else if (value == "require")
        o.sslmode = SslMode::kRequire;
      else if (value == "verify-ca")
        o.sslmode = SslMode::kVerifyCa;
      else if (value == "verify-full")
        o.sslmode = SslMode::kVerifyFull;
      else
        return Bad(flag, "expected disable, require, verify-ca or verify-full");
    } else if (flag == "--sslrootcert") {
      o.sslrootcert = std::string(value);
    } else if (flag == "--protocol") {
      if (value == "simple")
        o.protocol = Protocol::kSimple;
      else if (value == "extended")
        o.protocol = Protocol::kExtended;
      else if (value == "prepared")
        o.protocol = Protocol::kPrepared;
      else
        return Bad(flag, "expected simple, extended or prepared");
    } else if (flag == "--workload") {
      if (value == "select")
        o.workload = Workload::kSelect;
      else if (value == "update")
        o.workload = Workload::kUpdate;
      else if (value == "wide")
        o.workload = Workload::kWide;
      else if (value == "copy-out")
        o.workload = Workload::kCopyOut;
      else if (value == "churn")
        o.workload = Workload::kChurn;
      else
        return Bad(flag, "expected select, update, wide, copy-out or churn");
    } else {
      return Bad(flag, "unknown option");
    }
  }
  if (o.help) return o;
  if (o.user.empty()) return Bad("--user", "required");
  if (o.dbname.empty()) return Bad("--dbname", "required");
  if (have_duration && o.transactions > 0) {
    return Bad("--transactions", "give either --duration or --transactions");
  }
  if (!o.token_env.empty() && o.sslmode == SslMode::kDisable) {
    // A token is a bearer credential: never sent in clear (the gateway would
    // refuse it anyway, after we had sent it).
    return Bad("--token-env", "a token is sent only over TLS: add --sslmode require");
  }
  if ((o.sslmode == SslMode::kVerifyCa || o.sslmode == SslMode::kVerifyFull) &&
      o.sslrootcert.empty()) {
    return Bad("--sslmode", Cat(SslModeName(o.sslmode), " needs --sslrootcert FILE"));
  }
  if (o.threads > o.clients) o.threads = o.clients;
  return o;
}

}  // namespace pgb::bench
