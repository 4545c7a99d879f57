#include "core/control_config.h"

#include <arpa/inet.h>

#include "base/str_cat.h"

namespace pgb {

void ParseControlConfig(const toml::node* control,
                        const std::function<std::string(std::string_view)>& resolve,
                        const TomlProblemSink& sink, ControlConfig* out) {
  if (control == nullptr) return;
  const toml::table* table = control->as_table();
  if (table == nullptr) {
    sink(control->source(), "control",
         Cat("expected a table ([control]), got ", TomlTypeName(*control)));
    return;
  }
  out->enabled = true;
  TomlTableReader reader(*table, "control",
                         {"address", "port", "tls_cert", "tls_key", "metrics_token_file", "threads",
                          "check_interval", "check_timeout", "request_timeout", "admin_socket"},
                         sink);
  if (auto v = reader.NonEmptyString("address")) {
    in6_addr scratch;
    if (inet_pton(AF_INET, v->c_str(), &scratch) != 1 &&
        inet_pton(AF_INET6, v->c_str(), &scratch) != 1) {
      reader.Error("address", "must be an IPv4 or IPv6 address literal");
    } else {
      out->address = *v;
    }
  }
  if (auto v = reader.Integer("port", 0, 65535)) out->port = static_cast<uint16_t>(*v);
  if (auto v = reader.NonEmptyString("tls_cert")) out->tls_cert_file = resolve(*v);
  if (auto v = reader.NonEmptyString("tls_key")) out->tls_key_file = resolve(*v);
  if (out->tls_cert_file.empty() != out->tls_key_file.empty()) {
    reader.Error(out->tls_cert_file.empty() ? "tls_cert" : "tls_key",
                 "tls_cert and tls_key go together (HTTPS needs both)");
  }
  if (auto v = reader.NonEmptyString("metrics_token_file")) out->metrics_token_file = resolve(*v);
  if (auto v = reader.Integer("threads", 1, 64)) out->threads = static_cast<uint32_t>(*v);
  if (auto v = reader.Duration("check_interval", absl::Milliseconds(100), absl::Hours(1))) {
    out->check_interval = *v;
  }
  if (auto v = reader.Duration("check_timeout", absl::Milliseconds(10), absl::Minutes(1))) {
    out->check_timeout = *v;
  }
  if (auto v = reader.Duration("request_timeout", absl::Milliseconds(100), absl::Minutes(5))) {
    out->request_timeout = *v;
  }
  if (auto v = reader.String("admin_socket")) {
    if (!v->empty() && v->front() != '/') {
      reader.Error("admin_socket", "must be an absolute path (or \"\" for none)");
    } else if (v->size() >= 100) {
      reader.Error("admin_socket", "must be shorter than 100 bytes (a Unix socket's path)");
    } else {
      out->admin_socket = *v;
    }
  }
}

}  // namespace pgb
