#include "core/prepared_judgements.h"

#include <utility>

namespace pgb {

void PreparedJudgements::Parsed(std::string_view name, std::shared_ptr<const std::string> text,
                                uint64_t generation) {
  // (Debian's Abseil cannot look a std::string key up by std::string_view.)
  Judged& j = statements_[std::string(name)];
  j.text = std::move(text);
  j.generation = generation;
}

void PreparedJudgements::Bound(std::string_view portal, std::string_view statement) {
  auto it = statements_.find(std::string(statement));
  if (it == statements_.end()) {
    portals_.erase(std::string(portal));
    return;
  }
  Judged& j = portals_[std::string(portal)];
  j = it->second;
  j.statement.assign(statement);
}

void PreparedJudgements::Closed(char kind, std::string_view name) {
  if (kind == 'S') statements_.erase(std::string(name));
  if (kind == 'P') portals_.erase(std::string(name));
}

const PreparedJudgements::Judged* PreparedJudgements::Stale(std::string_view portal,
                                                            uint64_t current) const {
  if (portals_.empty()) return nullptr;
  auto it = portals_.find(std::string(portal));
  if (it == portals_.end() || it->second.generation == current) return nullptr;
  return &it->second;
}

void PreparedJudgements::Rejudged(std::string_view portal, uint64_t generation) {
  auto it = portals_.find(std::string(portal));
  if (it == portals_.end()) return;
  it->second.generation = generation;
  // The statement the portal was bound from, if it still holds the same text.
  auto s = statements_.find(it->second.statement);
  if (s != statements_.end() && s->second.text == it->second.text)
    s->second.generation = generation;
}

}  // namespace pgb
