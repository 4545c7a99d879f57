#include "core/recording/recording_config.h"

#include "base/str_cat.h"

namespace pgb::recording {

void ParseRecordingConfig(const toml::node* node,
                          const std::function<std::string(std::string_view)>& resolve,
                          const TomlProblemSink& sink, RecordingConfig* out) {
  if (node == nullptr) return;
  const toml::table* table = node->as_table();
  if (table == nullptr) {
    sink(node->source(), "recording",
         Cat("expected a table ([recording]), got ", TomlTypeName(*node)));
    return;
  }
  out->enabled = true;
  TomlTableReader reader(*table, "recording",
                         {"directory", "on_overflow", "retention_max_bytes", "retention_max_age",
                          "session_max_bytes", "queue_chunks", "chunk_bytes", "flush_interval"},
                         sink);
  reader.Require("directory", "where the recordings are written");
  if (auto v = reader.NonEmptyString("directory")) out->directory = resolve(*v);
  if (auto v = reader.Enum("on_overflow", {"end-session", "gap"})) {
    out->on_overflow = *v == 0 ? OnOverflow::kEndSession : OnOverflow::kGap;
  }
  if (auto v = reader.Integer("retention_max_bytes", 0, int64_t{1} << 56)) {
    out->retention_max_bytes = static_cast<uint64_t>(*v);
  }
  if (auto v = reader.Duration("retention_max_age", absl::Minutes(1), absl::InfiniteDuration())) {
    out->retention_max_age = *v;
  }
  if (auto v = reader.Integer("session_max_bytes", 0, int64_t{1} << 56)) {
    if (*v != 0 && *v < 4096) {
      reader.Error("session_max_bytes", "must be 0 (no limit) or at least 4096");
    } else {
      out->session_max_bytes = static_cast<uint64_t>(*v);
    }
  }
  if (auto v = reader.Integer("queue_chunks", 4, 65536)) {
    if ((*v & (*v - 1)) != 0) {
      reader.Error("queue_chunks", "must be a power of two");
    } else {
      out->queue_chunks = static_cast<uint32_t>(*v);
    }
  }
  if (auto v = reader.Integer("chunk_bytes", 4096, 16 << 20)) {
    out->chunk_bytes = static_cast<uint32_t>(*v);
  }
  if (auto v = reader.Duration("flush_interval", absl::Milliseconds(10), absl::Minutes(1))) {
    out->flush_interval = *v;
  }
}

}  // namespace pgb::recording
