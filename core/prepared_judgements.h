// PreparedJudgements remembers, for each protocol-level prepared statement
// and portal of a session, its text and the policy generation it was judged
// under, so that a statement prepared with Parse before a reload is judged
// again when it runs after it (issue 24, item 4): a Parse under read-write,
// a reload that makes the scope read-only, then Bind/Execute: the Execute is
// refused. SQL-level PREPARE/EXECUTE is judged at every EXECUTE by the
// policy itself (SessionPolicyState).
//
// The statement gate tells it what the client does (Parse allowed or
// refused, Bind, Close) and asks, at each Execute, whether the portal's
// statement was judged under an older generation. In the common case (no
// reload since the statement was parsed) that is one comparison after a
// hash lookup; a re-judged statement is recorded under the new generation,
// so it is judged once per reload, not once per Execute.
//
//   judgements.Parsed("s1", text, generation);  judgements.Bound("", "s1");
//   ... reload: ++generation ...
//   if (const auto* stale = judgements.Stale("", generation)) {
//     judge *stale->text; allowed: judgements.Rejudged("", generation); else refuse the Execute
//   }
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"

namespace pgb {

class PreparedJudgements {
 public:
  struct Judged {
    std::shared_ptr<const std::string> text;
    std::string statement;  // a portal's statement name
    uint64_t generation = 0;
  };

  // An allowed Parse of `text` under `name` ("" is the unnamed statement).
  void Parsed(std::string_view name, std::shared_ptr<const std::string> text, uint64_t generation);
  // A refused Parse: the database holds no statement under `name` now.
  void Refused(std::string_view name) { statements_.erase(std::string(name)); }
  // A Bind of `statement` into `portal`: the portal runs what the statement
  // held at this moment (nothing known: forgotten, the database will fail it).
  void Bound(std::string_view portal, std::string_view statement);
  // Close of a statement ('S') or a portal ('P').
  void Closed(char kind, std::string_view name);

  // The portal's statement when it was judged under a generation other than
  // `current`; nullptr when it is current or unknown.
  const Judged* Stale(std::string_view portal, uint64_t current) const;
  // The portal's statement was judged again, and allowed, under `generation`.
  void Rejudged(std::string_view portal, uint64_t generation);

  size_t statements() const { return statements_.size(); }

 private:
  absl::flat_hash_map<std::string, Judged> statements_;
  absl::flat_hash_map<std::string, Judged> portals_;
};

}  // namespace pgb
