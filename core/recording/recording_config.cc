#include "core/recording/recording_config.h"

#include "base/str_cat.h"

namespace pgb::recording {

namespace {

void ParseRecordingNode(const toml::node* node,
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

void ParseScopeModes(const toml::node* scopes, const TomlProblemSink& sink, RecordingConfig* out) {
  const toml::array* list = scopes != nullptr ? scopes->as_array() : nullptr;
  if (list == nullptr) return;  // the policy parser reports a malformed [[scope]]
  for (size_t i = 0; i < list->size(); ++i) {
    const toml::table* scope = list->get(i)->as_table();
    if (scope == nullptr) continue;
    const toml::node* record = scope->get("record");
    if (record == nullptr) continue;
    const std::string path = Cat("scope[", i, "].record");
    const toml::value<std::string>* text = record->as_string();
    const std::string_view v = text != nullptr ? std::string_view(text->get()) : "";
    RecordMode mode;
    if (v == "off") {
      mode = RecordMode::kOff;
    } else if (v == "statements") {
      mode = RecordMode::kStatements;
    } else if (v == "full") {
      mode = RecordMode::kFull;
    } else {
      sink(record->source(), path, "expected \"off\", \"statements\" or \"full\"");
      continue;
    }
    const toml::node* name = scope->get("name");
    if (mode == RecordMode::kOff || name == nullptr || !name->is_string()) continue;
    if (!out->enabled) {
      sink(record->source(), path,
           "this scope's sessions are recorded, but there is no [recording] table (its "
           "directory)");
      continue;
    }
    out->scopes.emplace_back(name->as_string()->get(), mode);
  }
}

}  // namespace

void ParseRecordingConfig(const toml::node* node, const toml::node* scopes,
                          const std::function<std::string(std::string_view)>& resolve,
                          const TomlProblemSink& sink, RecordingConfig* out) {
  ParseRecordingNode(node, resolve, sink, out);
  ParseScopeModes(scopes, sink, out);
}

}  // namespace pgb::recording
