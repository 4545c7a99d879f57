#include "policy/function_classes.h"

#include <algorithm>

namespace pgb::policy {
namespace {

constexpr StatementClass kServer = StatementClass::kServerAccess;
constexpr StatementClass kCode = StatementClass::kCodeExecution;
constexpr StatementClass kWrite = StatementClass::kWrite;
constexpr StatementClass kUtility = StatementClass::kUtility;

constexpr std::string_view kReadsFile = "reads a server file";
constexpr std::string_view kWritesFile = "writes a server file";
constexpr std::string_view kListsDir = "lists a server directory";
constexpr std::string_view kNetwork = "connects to another server";
constexpr std::string_view kRunsSql = "runs SQL given as text";
constexpr std::string_view kReadsNamed = "reads relations named in a string";
constexpr std::string_view kAdmin = "administers the server";
constexpr std::string_view kReplication = "manages replication";
constexpr std::string_view kLargeObject = "changes a large object";
constexpr std::string_view kSequence = "changes a sequence";

// Sorted by name before use, so entries can stay grouped by what they do.
std::vector<FunctionClassEntry> MakeTable() {
  std::vector<FunctionClassEntry> table = {
      // Server files and directories (core and adminpack).
      {"pg_read_file", kServer, kReadsFile},
      {"pg_read_binary_file", kServer, kReadsFile},
      {"pg_stat_file", kServer, kReadsFile},
      {"pg_current_logfile", kServer, kReadsFile},
      {"pg_ls_dir", kServer, kListsDir},
      {"pg_ls_logdir", kServer, kListsDir},
      {"pg_ls_waldir", kServer, kListsDir},
      {"pg_ls_tmpdir", kServer, kListsDir},
      {"pg_ls_archive_statusdir", kServer, kListsDir},
      {"pg_ls_logicalsnapdir", kServer, kListsDir},
      {"pg_ls_logicalmapdir", kServer, kListsDir},
      {"pg_ls_replslotdir", kServer, kListsDir},
      {"pg_logdir_ls", kServer, kListsDir},
      {"pg_file_write", kServer, kWritesFile},
      {"pg_file_rename", kServer, kWritesFile},
      {"pg_file_unlink", kServer, kWritesFile},
      {"pg_file_sync", kServer, kWritesFile},
      {"pg_show_all_file_settings", kServer, kReadsFile},
      {"pg_hba_file_rules", kServer, kReadsFile},
      {"pg_ident_file_mappings", kServer, kReadsFile},
      {"lo_import", kServer, kReadsFile},
      {"lo_export", kServer, kWritesFile},
      // The network (dblink; postgres_fdw works through DDL, not functions).
      {"dblink", kServer, kNetwork},
      {"dblink_exec", kServer, kNetwork},
      {"dblink_connect", kServer, kNetwork},
      {"dblink_connect_u", kServer, kNetwork},
      {"dblink_open", kServer, kNetwork},
      {"dblink_fetch", kServer, kNetwork},
      {"dblink_send_query", kServer, kNetwork},
      {"dblink_get_result", kServer, kNetwork},
      {"dblink_get_async_result", kServer, kNetwork},
      {"dblink_close", kServer, kNetwork},
      {"dblink_disconnect", kServer, kNetwork},
      {"dblink_cancel_query", kServer, kNetwork},
      {"dblink_error_message", kServer, kNetwork},
      {"dblink_is_busy", kServer, kNetwork},
      {"dblink_get_connections", kServer, kNetwork},
      {"dblink_get_notify", kServer, kNetwork},
      {"dblink_build_sql_insert", kServer, kNetwork},
      {"dblink_build_sql_update", kServer, kNetwork},
      {"dblink_build_sql_delete", kServer, kNetwork},
      // SQL text or object names hidden in string arguments: the gateway cannot
      // see what they run or read.
      {"query_to_xml", kCode, kRunsSql},
      {"query_to_xmlschema", kCode, kRunsSql},
      {"query_to_xml_and_xmlschema", kCode, kRunsSql},
      {"ts_stat", kCode, kRunsSql},
      {"table_to_xml", kCode, kReadsNamed},
      {"table_to_xmlschema", kCode, kReadsNamed},
      {"table_to_xml_and_xmlschema", kCode, kReadsNamed},
      {"schema_to_xml", kCode, kReadsNamed},
      {"schema_to_xmlschema", kCode, kReadsNamed},
      {"schema_to_xml_and_xmlschema", kCode, kReadsNamed},
      {"database_to_xml", kCode, kReadsNamed},
      {"database_to_xmlschema", kCode, kReadsNamed},
      {"database_to_xml_and_xmlschema", kCode, kReadsNamed},
      // Server administration.
      {"pg_reload_conf", kServer, kAdmin},
      {"pg_rotate_logfile", kServer, kAdmin},
      {"pg_terminate_backend", kServer, kAdmin},
      {"pg_cancel_backend", kServer, kAdmin},
      {"pg_promote", kServer, kAdmin},
      {"pg_switch_wal", kServer, kAdmin},
      {"pg_create_restore_point", kServer, kAdmin},
      {"pg_backup_start", kServer, kAdmin},
      {"pg_backup_stop", kServer, kAdmin},
      {"pg_wal_replay_pause", kServer, kAdmin},
      {"pg_wal_replay_resume", kServer, kAdmin},
      {"pg_log_backend_memory_contexts", kServer, kAdmin},
      {"pg_import_system_collations", kServer, kAdmin},
      {"pg_create_physical_replication_slot", kServer, kReplication},
      {"pg_create_logical_replication_slot", kServer, kReplication},
      {"pg_drop_replication_slot", kServer, kReplication},
      {"pg_copy_physical_replication_slot", kServer, kReplication},
      {"pg_copy_logical_replication_slot", kServer, kReplication},
      {"pg_replication_slot_advance", kServer, kReplication},
      {"pg_logical_slot_get_changes", kServer, kReplication},
      {"pg_logical_slot_peek_changes", kServer, kReplication},
      {"pg_logical_slot_get_binary_changes", kServer, kReplication},
      {"pg_logical_slot_peek_binary_changes", kServer, kReplication},
      {"pg_logical_emit_message", kServer, kReplication},
      {"pg_replication_origin_create", kServer, kReplication},
      {"pg_replication_origin_drop", kServer, kReplication},
      // Data changes made by a function call.
      {"nextval", kWrite, kSequence},
      {"setval", kWrite, kSequence},
      {"lo_create", kWrite, kLargeObject},
      {"lo_creat", kWrite, kLargeObject},
      {"lo_unlink", kWrite, kLargeObject},
      {"lo_put", kWrite, kLargeObject},
      {"lo_from_bytea", kWrite, kLargeObject},
      {"lowrite", kWrite, kLargeObject},
      {"lo_truncate", kWrite, kLargeObject},
      {"lo_truncate64", kWrite, kLargeObject},
      // Notifications, as NOTIFY.
      {"pg_notify", kUtility, "sends a notification"},
  };
  std::sort(
      table.begin(), table.end(),
      [](const FunctionClassEntry& a, const FunctionClassEntry& b) { return a.name < b.name; });
  return table;
}

}  // namespace

const std::vector<FunctionClassEntry>& BuiltinFunctionClasses() {
  static const std::vector<FunctionClassEntry> table = MakeTable();
  return table;
}

const FunctionClassEntry* FindFunctionClass(std::string_view name) {
  const std::vector<FunctionClassEntry>& table = BuiltinFunctionClasses();
  auto it =
      std::lower_bound(table.begin(), table.end(), name,
                       [](const FunctionClassEntry& e, std::string_view n) { return e.name < n; });
  return it != table.end() && it->name == name ? &*it : nullptr;
}

}  // namespace pgb::policy
