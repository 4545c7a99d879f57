// The built-in functions that make a statement more dangerous than its command
// says: `SELECT pg_read_file('/etc/passwd')` is a SELECT that reads a server
// file, `SELECT * FROM dblink('host=...', 'DROP TABLE t')` opens a network
// connection from the database server. The SQL analyser raises a statement's
// class to the entry's class wherever such a function is called (select list,
// WHERE, FROM, defaults, VALUES, CALL, ...). The table is public so the rules
// can say why a statement got its class, in the reason of a refusal (and so
// of `pgbastion policy explain`): "SELECT (server_access: pg_read_file reads
// a server file)".
//
// Functions are matched by name only, whatever schema is written: a user's own
// `public.pg_read_file` is treated like the built-in one (fail closed), and
// extension functions (dblink, adminpack) live in whatever schema the
// extension was installed into.
//
//   if (const FunctionClassEntry* e = FindFunctionClass("lo_export")) {
//     // e->statement_class == StatementClass::kServerAccess, e->reason = "writes a server file"
//   }
#pragma once

#include <string_view>
#include <vector>

#include "policy/statement.h"

namespace pgb::policy {

struct FunctionClassEntry {
  std::string_view name;  // lower case, as the parser folds an unquoted name
  StatementClass statement_class;
  std::string_view reason;  // why, in a few words, for error texts and docs
};

// Every entry, ordered by name.
const std::vector<FunctionClassEntry>& BuiltinFunctionClasses();

// The entry for `name` (as the parser folded it), or nullptr.
const FunctionClassEntry* FindFunctionClass(std::string_view name);

}  // namespace pgb::policy
