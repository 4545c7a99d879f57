#include "base/str_cat.h"

#include <cassert>
#include <cstring>
#include <functional>

namespace pgb::str_cat_internal {

Piece::Piece(const absl::AlphaNum& formatted) {
  assert(formatted.size() <= sizeof(digits_));
  std::memcpy(digits_, formatted.data(), formatted.size());
  text_ = std::string_view(digits_, formatted.size());
}

std::string CatPieces(std::initializer_list<std::string_view> pieces) {
  std::string out;
  AppendPieces(out, pieces);
  return out;
}

void AppendPieces(std::string& out, std::initializer_list<std::string_view> pieces) {
  size_t size = out.size();
  for (std::string_view piece : pieces) {
    // Growing `out` would leave such a piece pointing at freed memory.
    assert(piece.empty() || std::less<>()(piece.data(), out.data()) ||
           std::less<>()(out.data() + out.capacity(), piece.data()));
    size += piece.size();
  }
  out.reserve(size);
  for (std::string_view piece : pieces) out.append(piece);
}

}  // namespace pgb::str_cat_internal
