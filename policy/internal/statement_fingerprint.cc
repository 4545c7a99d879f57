#include "policy/internal/statement_fingerprint.h"

#include <bit>
#include <string_view>

namespace pgb::policy::internal {
namespace {

class FingerprintHash {
 public:
  void Mix(std::string_view bytes) {
    for (unsigned char c : bytes) Mix(c);
  }
  void Mix(unsigned char c) { hash_ = (hash_ ^ c) * 0x100000001b3ULL; }
  void MixNumber(uint64_t v) {
    for (int i = 0; i < 8; ++i) Mix(static_cast<unsigned char>(v >> (8 * i)));
  }
  uint64_t value() const { return hash_ == 0 ? 1 : hash_; }

  void Walk(simdjson::dom::element e) {
    switch (e.type()) {
      case simdjson::dom::element_type::OBJECT: {
        Mix('{');
        simdjson::dom::object fields;
        if (e.get_object().get(fields) != simdjson::SUCCESS) return;
        for (simdjson::dom::key_value_pair field : fields) {
          const std::string_view key = field.key;
          if (key == "location" || key == "stmt_location" || key == "stmt_len") continue;
          Mix(key);
          Mix(':');
          // A constant counts as "a constant", whatever its type and value.
          if (key != "A_Const") Walk(field.value);
        }
        Mix('}');
        return;
      }
      case simdjson::dom::element_type::ARRAY: {
        Mix('[');
        simdjson::dom::array items;
        if (e.get_array().get(items) != simdjson::SUCCESS) return;
        for (simdjson::dom::element item : items) Walk(item);
        Mix(']');
        return;
      }
      case simdjson::dom::element_type::STRING:
        Mix('"');
        Mix(e.get_string().value_unsafe());
        Mix('"');
        return;
      case simdjson::dom::element_type::INT64:
        Mix('i');
        MixNumber(static_cast<uint64_t>(e.get_int64().value_unsafe()));
        return;
      case simdjson::dom::element_type::UINT64:
        Mix('u');
        MixNumber(e.get_uint64().value_unsafe());
        return;
      case simdjson::dom::element_type::DOUBLE: {
        Mix('d');
        const double d = e.get_double().value_unsafe();
        MixNumber(std::bit_cast<uint64_t>(d));
        return;
      }
      case simdjson::dom::element_type::BOOL:
        Mix(e.get_bool().value_unsafe() ? 't' : 'f');
        return;
      case simdjson::dom::element_type::NULL_VALUE:
        Mix('n');
        return;
    }
  }

 private:
  uint64_t hash_ = 0xcbf29ce484222325ULL;  // FNV-1a 64 offset basis
};

}  // namespace

uint64_t StatementFingerprint(simdjson::dom::element statement) {
  FingerprintHash hash;
  hash.Walk(statement);
  return hash.value();
}

}  // namespace pgb::policy::internal
