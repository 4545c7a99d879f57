#include "policy/sql_analysis.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "policy/function_classes.h"
#include "policy/internal/statement_classifier.h"
#include "tests/policy/summary_text.h"

namespace pgb::policy {
namespace {

std::string Repeat(std::string_view piece, size_t n) {
  std::string out;
  out.reserve(piece.size() * n);
  for (size_t i = 0; i < n; ++i) out += piece;
  return out;
}

// The one statement of `a`, by value (callers pass temporaries).
StatementSummary Only(const SqlAnalysis& a) {
  EXPECT_TRUE(a.ok) << a.error_message;
  EXPECT_EQ(a.statements.size(), 1u);
  return a.statements.empty() ? StatementSummary() : a.statements[0];
}

// ---- Text with nothing in it.

TEST(AnalyseSql, TextWithoutStatementsIsOkAndEmpty) {
  for (std::string_view sql : {"", "   ", ";", " ; ;", "-- only a comment", "/* c */"}) {
    SqlAnalysis a = AnalyseSql(sql);
    EXPECT_TRUE(a.ok) << sql;
    EXPECT_TRUE(a.statements.empty()) << sql;
  }
}

// ---- Statement byte ranges.

TEST(AnalyseSql, StatementRangesCoverEachStatementOfMultiStatementText) {
  std::string sql = "SELECT 1; DROP TABLE t";
  SqlAnalysis a = AnalyseSql(sql);
  ASSERT_TRUE(a.ok);
  ASSERT_EQ(a.statements.size(), 2u);
  EXPECT_EQ(a.statements[0].location, 0u);
  EXPECT_EQ(a.statements[0].length, 8u);  // "SELECT 1"
  EXPECT_EQ(a.statements[1].location, 9u);
  EXPECT_EQ(a.statements[1].length, sql.size() - 9);  // stmt_len 0: to the end
  EXPECT_EQ(sql.substr(a.statements[1].location, a.statements[1].length), " DROP TABLE t");
}

// Analyses `sql`, checks its statements' commands, and that each statement's
// range analysed alone gives the same facts.
SqlAnalysis ExpectEachRangeReanalysesTheSame(const std::string& sql,
                                             const std::vector<std::string>& commands) {
  SqlAnalysis a = AnalyseSql(sql);
  EXPECT_TRUE(a.ok) << a.error_message;
  EXPECT_EQ(a.statements.size(), commands.size());
  for (size_t i = 0; i < a.statements.size() && i < commands.size(); ++i) {
    const StatementSummary& s = a.statements[i];
    EXPECT_LE(s.location + s.length, sql.size());
    EXPECT_EQ(s.command, commands[i]);
    SqlAnalysis alone = AnalyseSql(sql.substr(s.location, s.length));
    EXPECT_TRUE(alone.ok) << i;
    EXPECT_EQ(alone.statements.size(), 1u) << i;
    if (alone.statements.size() == 1) {
      EXPECT_EQ(testing::Facts(alone.statements[0]), testing::Facts(s)) << i;
    }
  }
  return a;
}

TEST(AnalyseSql, EachRangeReanalysesToTheSameStatement) {
  std::string sql =
      "/* é */ SELECT 'a;b' AS \"x;y\";\nDELETE FROM t WHERE true; -- c\n"
      "INSERT INTO u VALUES ($$;$$);  UPDATE v SET a = 1 WHERE id = 2;";
  SqlAnalysis a = ExpectEachRangeReanalysesTheSame(sql, {"SELECT", "DELETE", "INSERT", "UPDATE"});
  ASSERT_EQ(a.statements.size(), 4u);
  EXPECT_EQ(a.statements[1].location, sql.find("\"x;y\";") + 6);
}

// Each statement's part of the parse tree is read on its own: characters that
// mean something in JSON, inside the SQL's strings and names, change nothing.
TEST(AnalyseSql, StatementsWithJsonPunctuationInTheirTextAreEachTheirOwn) {
  std::string sql =
      "SELECT '}]' AS \"{[\", E'\\\\\"\\'' AS q, '\"' AS \"}\"\"]\"; "
      "SELECT '{\"version\":1,\"stmts\":[}' FROM t; DELETE FROM \"]}\" WHERE true";
  SqlAnalysis a = ExpectEachRangeReanalysesTheSame(sql, {"SELECT", "SELECT", "DELETE"});
  ASSERT_EQ(a.statements.size(), 3u);
  EXPECT_EQ(a.statements[2].relations.at(0).name, "]}");
}

// ---- Refusals.

TEST(AnalyseSql, SyntaxErrorCarriesPostgresMessageAndCursor) {
  SqlAnalysis a = AnalyseSql("SELECT * FROM t WHERE");
  EXPECT_FALSE(a.ok);
  EXPECT_EQ(a.error_sqlstate, "42601");
  EXPECT_EQ(a.error_message, "syntax error at end of input");
  EXPECT_EQ(a.error_position, 22);
  a = AnalyseSql("SELEC 1");
  EXPECT_EQ(a.error_message, "syntax error at or near \"SELEC\"");
  EXPECT_EQ(a.error_position, 1);
  EXPECT_TRUE(a.statements.empty());
}

TEST(AnalyseSql, ErrorPositionCountsCharactersAsPostgresDoes) {
  SqlAnalysis a = AnalyseSql("SELECT 'ééé' FROM");  // 17 characters, 20 bytes
  EXPECT_EQ(a.error_sqlstate, "42601");
  EXPECT_EQ(a.error_position, 18);
}

TEST(AnalyseSql, ASyntaxErrorInALaterStatementRefusesTheWholeText) {
  SqlAnalysis a = AnalyseSql("SELECT 1; DELETE t");
  EXPECT_FALSE(a.ok);
  EXPECT_EQ(a.error_sqlstate, "42601");
  EXPECT_TRUE(a.statements.empty());
}

TEST(AnalyseSql, ZeroByteIsRefusedAsPostgresWould) {
  std::string sql("SELECT 1\0; DROP TABLE t", 23);
  SqlAnalysis a = AnalyseSql(sql);
  EXPECT_FALSE(a.ok);
  EXPECT_EQ(a.error_sqlstate, "22021");
  EXPECT_EQ(a.error_message, "invalid byte sequence for encoding \"UTF8\": 0x00");
  EXPECT_TRUE(a.statements.empty());
}

TEST(AnalyseSql, InvalidUtf8IsRefused) {
  for (std::string sql : {std::string("SELECT '\xff'"), std::string("SELECT '\xc3\x28'"),
                          std::string("SELECT '\xed\xa0\x80'"),  // a surrogate
                          std::string("SELECT '\xc0\xaf'"),      // overlong '/'
                          std::string("SELECT 1 -- \xe2\x82")}) {
    SqlAnalysis a = AnalyseSql(sql);
    EXPECT_FALSE(a.ok) << sql;
    EXPECT_EQ(a.error_sqlstate, "22021") << sql;
    EXPECT_NE(a.error_message.find("invalid byte sequence for encoding \"UTF8\": 0x"),
              std::string::npos)
        << a.error_message;
  }
  EXPECT_NE(AnalyseSql("SELECT '\xff'").error_message.find("0xff"), std::string::npos);
  // Every byte of the sequence, as PostgreSQL lists them.
  EXPECT_EQ(AnalyseSql("SELECT '\xed\xa0\x80'").error_message,
            "invalid byte sequence for encoding \"UTF8\": 0xed 0xa0 0x80");
  EXPECT_TRUE(AnalyseSql("SELECT 'ü€😀'").ok);
}

TEST(AnalyseSql, NeverCrashesOnArbitraryBytes) {
  uint32_t seed = 12345;
  auto next = [&] {
    seed = seed * 1103515245 + 12345;
    return static_cast<unsigned char>(seed >> 16);
  };
  const std::string alphabet = "SELECT()'\"$;-/*+ 1aé\\\n,.:[]{}";
  for (int round = 0; round < 3000; ++round) {
    std::string sql;
    size_t len = next() % 64;
    for (size_t i = 0; i < len; ++i) {
      sql += round % 2 == 0 ? static_cast<char>(next()) : alphabet[next() % alphabet.size()];
    }
    SqlAnalysis a = AnalyseSql(sql);
    if (!a.ok) {
      EXPECT_FALSE(a.error_sqlstate.empty());
    }
  }
}

// A statement kind the classifier has no entry for is refused, never passed.
TEST(ClassifyStatement, UnknownStatementKindFailsClosed) {
  simdjson::dom::parser json;
  for (const char* tree : {R"({"ReturnStmt": {}})", R"({"FutureStmt": {"relation": {}}})",
                           R"({"weird": 1})", R"([])"}) {
    simdjson::dom::element e = json.parse(tree, std::strlen(tree)).value();
    StatementSummary summary;
    absl::Status s = internal::ClassifyStatement(e, "", summary);
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << tree;
    EXPECT_NE(s.message().find("could not be classified"), std::string::npos) << s.message();
  }
}

// ---- Nesting: refused with 54001 or analysed, never a crash.

void ExpectTooComplex(const std::string& sql) {
  SqlAnalysis a = AnalyseSql(sql);
  EXPECT_FALSE(a.ok) << sql.substr(0, 40);
  EXPECT_EQ(a.error_sqlstate, "54001") << a.error_message;
  EXPECT_EQ(a.error_message, "statement is too complex");
}

TEST(AnalyseSql, DeeplyNestedParenthesesAreTooComplex) {
  ExpectTooComplex("SELECT " + Repeat("(", 10000) + "1" + Repeat(")", 10000));
}

TEST(AnalyseSql, DeeplyNestedSubselectsAreTooComplex) {
  ExpectTooComplex("SELECT " + Repeat("(SELECT ", 10000) + "1" + Repeat(")", 10000));
  // Below the grammar's limit, but deeper than the parse tree reader's 1024.
  ExpectTooComplex("SELECT " + Repeat("(SELECT ", 400) + "1" + Repeat(")", 400));
  ExpectTooComplex(Repeat("SELECT * FROM (", 400) + "SELECT 1" + Repeat(") s", 400));
}

TEST(AnalyseSql, NestingJustUnderTheTreeReadersLimitIsAnalysed) {
  // The deepest trees the walk sees (simdjson allows 1024 JSON levels).
  StatementSummary s =
      Only(AnalyseSql("SELECT " + Repeat("(SELECT ", 100) + "pg_ls_dir('.')" + Repeat(")", 100)));
  EXPECT_EQ(s.statement_class, StatementClass::kServerAccess);
  s = Only(AnalyseSql("DELETE FROM t WHERE " + Repeat("NOT ", 330) + "true"));
  EXPECT_TRUE(s.unfiltered_write);
}

TEST(AnalyseSql, LongLeftDeepExpressionChainsAreTooComplex) {
  // Left-deep trees the grammar builds without its own stack growing: they
  // overflow libpg_query's recursive JSON output unless given a large stack.
  // 70,000 terms overflow an 8 MiB stack.
  ExpectTooComplex("SELECT 1" + Repeat("+1", 70000));
  ExpectTooComplex("SELECT 1" + Repeat("::int", 12000));
  ExpectTooComplex("SELECT a" + Repeat(" IS NULL", 12000));
  ExpectTooComplex("SELECT 1" + Repeat(" UNION SELECT 1", 12000));
  ExpectTooComplex("SELECT * FROM a" + Repeat(" JOIN a USING (x)", 12000));
  ExpectTooComplex("SELECT " + Repeat("NOT ", 12000) + "true");
  ExpectTooComplex("SELECT " + Repeat("ARRAY[", 5000) + "1" + Repeat("]", 5000));
}

TEST(AnalyseSql, LongFlatListsAreAnalysed) {
  // OR chains are flattened by the grammar; a long VALUES list is flat too.
  SqlAnalysis a = AnalyseSql("DELETE FROM t WHERE a" + Repeat(" OR a", 50000));
  StatementSummary s = Only(a);
  EXPECT_EQ(s.statement_class, StatementClass::kWrite);
  EXPECT_FALSE(s.unfiltered_write);
  a = AnalyseSql("DELETE FROM t WHERE a" + Repeat(" OR a", 5000) + " OR true");
  EXPECT_TRUE(Only(a).unfiltered_write);
  a = AnalyseSql("INSERT INTO t VALUES (1, 'x')" + Repeat(", (now(), 'x')", 30000));
  EXPECT_EQ(Only(a).command, "INSERT");
  EXPECT_EQ(testing::Facts(Only(a)),
            (std::vector<std::string>{"fn=now", "modifies", "rel=t:insert"}));
}

TEST(AnalyseSql, TextNeedingMoreThanTheLargestStackIsRefusedUnparsed) {
  ExpectTooComplex("SELECT 1" + std::string(8 << 20, ' '));
}

// ---- Threads: libpg_query keeps per-thread memory; shards call in parallel.

TEST(AnalyseSql, IsSafeFromSeveralThreadsAtOnce) {
  const std::vector<std::string> texts = {
      "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
      "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
      "SELECT pg_read_file('x'); SET search_path = a, b",
      "SELECT * FROM",                   // a syntax error
      "SELECT 1" + Repeat("+1", 2000),   // deep, on the calling thread's stack
      "SELECT 1" + Repeat(",1", 26000),  // long: parsed on a thread of its own
      "COPY t FROM PROGRAM 'x'",
  };
  std::vector<std::string> expected;
  for (const std::string& t : texts) expected.push_back(testing::AnalysisText(AnalyseSql(t)));
  constexpr int kThreads = 4;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 36; ++round) {
        size_t k = static_cast<size_t>(round + t) % texts.size();
        if (testing::AnalysisText(AnalyseSql(texts[k])) != expected[k]) {
          ++mismatches[static_cast<size_t>(t)];
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[static_cast<size_t>(t)], 0) << t;
}

// ---- What the summaries say, beyond the corpus.

TEST(AnalyseSql, PrepareCarriesThePreparedStatementsSummary) {
  SqlAnalysis a = AnalyseSql("PREPARE p (int) AS SELECT set_config('search_path', 'x', false)");
  StatementSummary s = Only(a);
  EXPECT_EQ(s.command, "PREPARE");
  EXPECT_EQ(s.prepare_name, "p");
  EXPECT_EQ(s.statement_class, StatementClass::kSessionSetting);
  EXPECT_TRUE(s.settings.empty());  // nothing changes until EXECUTE
  ASSERT_NE(s.prepared, nullptr);
  EXPECT_EQ(s.prepared->command, "SELECT");
  ASSERT_EQ(s.prepared->settings.size(), 1u);
  EXPECT_EQ(s.prepared->settings[0].name, "search_path");
  EXPECT_EQ(s.prepared->location, s.location);
  EXPECT_EQ(s.prepared->length, s.length);
}

// How each statement uses column names (testing::ColumnsText: out=plain output
// columns, other=every other reference, then the flags).
TEST(AnalyseSql, ColumnUseSeparatesPlainOutputColumnsFromEveryOtherReference) {
  struct Case {
    std::string_view sql;
    std::string_view columns;
  };
  const Case cases[] = {
      {"SELECT id, c.email, phone AS phone FROM customers c WHERE note = 'x'",
       "out=id,email,phone other=note"},
      {"SELECT \"Email\", EMAIL FROM customers", "out=Email,email other="},
      {"SELECT email AS e, lower(phone), id + 1 FROM customers", "out= other=email,phone,id"},
      {"SELECT *, customers.* FROM customers", "out= other= star"},
      {"SELECT id FROM customers ORDER BY email, id", "out=id other=email,id"},
      {"SELECT id FROM customers GROUP BY 1 HAVING count(email) > 1",
       "out=id other=email position"},
      {"SELECT DISTINCT ON (1) id FROM t", "out=id other= position"},
      {"SELECT id FROM t ORDER BY 0", "out=id other= position"},
      {"SELECT id FROM t GROUP BY CUBE (1)", "out=id other= position"},
      {"SELECT DISTINCT id FROM t", "out=id other= distinct"},
      {"SELECT id FROM t ORDER BY 'a' || 1", "out=id other="},
      // Not the result's own targets: subqueries, CTEs, set operations, INTO.
      {"SELECT (SELECT email FROM c LIMIT 1) FROM d", "out= other=email"},
      {"WITH x AS (SELECT email FROM c) SELECT id FROM x", "out=id other=email"},
      {"SELECT email FROM c UNION SELECT phone FROM d ORDER BY 1", "out= other=email,phone"},
      {"SELECT email INTO t2 FROM c", "out= other=email"},
      {"SELECT * FROM (SELECT * FROM c) s", "out= other= row star"},
      {"EXPLAIN SELECT email FROM c", "out= other=email"},
      {"CREATE VIEW v AS SELECT email FROM c", "out= other=email"},
      {"CREATE TABLE t AS SELECT email FROM c", "out= other=email"},
      {"COPY (SELECT email FROM c) TO STDOUT", "out= other=email"},
      // Whole rows: a name rows go by, a star inside an expression, NATURAL JOIN.
      {"SELECT c FROM customers c", "out=c other= row"},
      {"SELECT row_to_json(customers) FROM customers", "out= other=customers row"},
      {"SELECT (c).email FROM customers c", "out= other=c row"},
      {"SELECT count(c.*) FROM customers c", "out= other= row"},
      {"WITH w AS (SELECT 1) SELECT w FROM w", "out=w other= row"},
      // A function's row holds what its arguments let through: not a row name.
      {"SELECT g FROM generate_series(1, 3) g", "out=g other="},
      {"SELECT EXISTS (SELECT * FROM t)", "out= other="},
      {"SELECT 1 WHERE EXISTS (SELECT t.* FROM t WHERE t.email = 'x')", "out= other=email"},
      {"SELECT EXISTS (SELECT (SELECT * FROM c) FROM t)", "out= other= row"},
      {"SELECT generate_series FROM generate_series(1, 3)", "out=generate_series other= row"},
      {"SELECT s FROM (SELECT 1) s", "out=s other= row"},
      {"SELECT * FROM a NATURAL JOIN b", "out= other= row star"},
      {"SELECT c.email FROM customers c", "out=email other="},
      // Joins, column alias lists, ON CONFLICT.
      {"SELECT a.id FROM a JOIN b USING (email, phone)", "out=id other=email,phone"},
      {"SELECT * FROM customers c(id, mail)", "out= other= renames star"},
      {"SELECT * FROM (a JOIN b ON a.x = b.y) j(p, q)", "out= other=x,y renames star"},
      {"SELECT n FROM generate_series(1, 3) g(n)", "out=n other="},
      {"INSERT INTO t (a) VALUES (1) ON CONFLICT (email) DO UPDATE SET a = excluded.phone",
       "out= other=email,phone"},
      // RETURNING and DECLARE CURSOR give the result of the top-level statement.
      {"INSERT INTO t (a) VALUES (1) RETURNING a, email AS e, *", "out=a other=email star"},
      {"UPDATE t SET note = email WHERE id = 1 RETURNING id", "out=id other=email,id"},
      {"DELETE FROM t WHERE id = 1 RETURNING t", "out=t other=id row"},
      {"WITH d AS (DELETE FROM t RETURNING email) SELECT * FROM d", "out= other=email star"},
      {"DECLARE k CURSOR FOR SELECT email FROM c ORDER BY 1", "out=email other= position"},
      {"MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET x = s.email",
       "out= other=id,email"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(testing::ColumnsText(Only(AnalyseSql(c.sql))), c.columns) << c.sql;
  }
}

// Qualified references whose qualifier is a table or view of the statement:
// columns or, with the catalog, attribute notation (c.to_json is to_json(c)).
TEST(AnalyseSql, QualifiedReferencesNameTheirRelation) {
  const auto refs = [](std::string_view sql) {
    std::string out;
    for (const auto& r : Only(AnalyseSql(sql)).attribute_refs) {
      out += (out.empty() ? "" : " ") + (r.schema.empty() ? "" : r.schema + ".") + r.relation +
             ":" + r.attribute;
    }
    return out;
  };
  EXPECT_EQ(refs("SELECT c.id, c.to_json FROM customers c"), "customers:id customers:to_json");
  EXPECT_EQ(refs("SELECT customers.row_to_json FROM app.customers"), "app.customers:row_to_json");
  EXPECT_EQ(refs("SELECT app.customers.to_json FROM app.customers"), "app.customers:to_json");
  EXPECT_EQ(refs("SELECT c.to_jsonb->>'ssn' FROM customers c WHERE c.id = 1"),
            "customers:to_jsonb customers:id");
  EXPECT_EQ(refs("SELECT c.addr.to_json FROM customers c"), "customers:addr");
  EXPECT_EQ(refs("SELECT s.x FROM (SELECT 1 AS x) s"), "");
  EXPECT_EQ(refs("WITH w AS (SELECT 1 AS x) SELECT w.x FROM w"), "");
  EXPECT_EQ(refs("SELECT g.x FROM generate_series(1, 2) g(x)"), "");
  EXPECT_EQ(refs("SELECT x.a FROM t x WHERE EXISTS (SELECT 1 FROM u x WHERE x.b = 1)"),
            "t:a u:a t:b u:b");
  EXPECT_EQ(refs("UPDATE t SET a = c.to_json::text FROM customers c WHERE t.id = c.id"),
            "customers:to_json t:id customers:id");
}

TEST(AnalyseSql, PreparedStatementsColumnUseIsTheirsAtTopLevel) {
  StatementSummary s = Only(AnalyseSql("PREPARE p AS SELECT email, c.* FROM c WHERE x = $1"));
  ASSERT_NE(s.prepared, nullptr);
  EXPECT_EQ(testing::ColumnsText(*s.prepared), "out=email other=x star");
  EXPECT_EQ(testing::ColumnsText(s), "out=email other=x star");  // judged as what it prepares
}

TEST(AnalyseSql, SettingValuesReadAsPostgresShowsThem) {
  StatementSummary s = Only(AnalyseSql("SET search_path = app, \"Sales\", \"$user\""));
  ASSERT_EQ(s.settings.size(), 1u);
  EXPECT_EQ(s.settings[0].value, "app, \"Sales\", \"$user\"");
  EXPECT_TRUE(s.settings[0].value_known);
  EXPECT_FALSE(s.settings[0].via_function);
}

TEST(AnalyseSql, LexerSettingsThatWouldBlindTheAnalyserAreRefused) {
  for (std::string_view sql :
       {"SET standard_conforming_strings = off", "SET standard_conforming_strings TO false",
        "SET LOCAL standard_conforming_strings = 0",
        "SELECT set_config('standard_conforming_strings', 'off', true)",
        "SELECT set_config('standard_conforming_strings', $1, false)", "SET NAMES 'SJIS'",
        "SET client_encoding = 'LATIN1'", "SELECT 1; SET client_encoding TO 'GBK'",
        // Defaults for later sessions would blind the analyser in those.
        "ALTER ROLE app SET standard_conforming_strings = off",
        "ALTER DATABASE db SET client_encoding = 'SJIS'",
        "ALTER ROLE app IN DATABASE db SET standard_conforming_strings TO false",
        "ALTER SYSTEM SET standard_conforming_strings = off"}) {
    SqlAnalysis a = AnalyseSql(sql);
    EXPECT_FALSE(a.ok) << sql;
    EXPECT_EQ(a.error_sqlstate, "42501") << sql;
  }
  for (std::string_view sql :
       {"SET standard_conforming_strings = on", "RESET standard_conforming_strings",
        "SET client_encoding = 'UTF8'", "SET NAMES 'unicode'", "SET client_encoding TO DEFAULT",
        "ALTER ROLE app RESET standard_conforming_strings",
        "ALTER ROLE app SET work_mem = '1GB'"}) {
    EXPECT_TRUE(AnalyseSql(sql).ok) << sql;
  }
}

TEST(AnalyseSql, StringsThatLookLikeSqlAreData) {
  for (std::string_view sql :
       {"SELECT 'DROP TABLE t'", "SELECT $$DELETE FROM t$$", "SELECT E'\\'; DROP TABLE t; --'",
        "SELECT U&'\\0044ROP TABLE t'", "SELECT 1 /* ; DROP TABLE t */"}) {
    StatementSummary s = Only(AnalyseSql(sql));
    EXPECT_EQ(s.statement_class, StatementClass::kRead) << sql;
    EXPECT_TRUE(s.relations.empty()) << sql;
  }
}

// ---- The function table.

TEST(BuiltinFunctionClasses, IsSortedUniqueAndFindable) {
  const std::vector<FunctionClassEntry>& table = BuiltinFunctionClasses();
  ASSERT_GT(table.size(), 20u);
  std::set<std::string_view> names;
  for (size_t i = 0; i < table.size(); ++i) {
    EXPECT_TRUE(names.insert(table[i].name).second) << table[i].name;
    if (i > 0) {
      EXPECT_LT(table[i - 1].name, table[i].name);
    }
    EXPECT_FALSE(table[i].reason.empty()) << table[i].name;
    EXPECT_EQ(FindFunctionClass(table[i].name), &table[i]);
  }
  EXPECT_EQ(FindFunctionClass("pg_read_file")->statement_class, StatementClass::kServerAccess);
  EXPECT_EQ(FindFunctionClass("query_to_xml")->statement_class, StatementClass::kCodeExecution);
  EXPECT_EQ(FindFunctionClass("now"), nullptr);
  EXPECT_EQ(FindFunctionClass("PG_READ_FILE"), nullptr);  // quoted upper case: another function
}

// ---- The cache.

TEST(AnalysisCache, ReturnsTheSameAnalysisOnAHit) {
  AnalysisCache cache(1 << 20);
  std::shared_ptr<const SqlAnalysis> first = cache.Analyse("SELECT * FROM t WHERE id = $1");
  std::shared_ptr<const SqlAnalysis> second = cache.Analyse("SELECT * FROM t WHERE id = $1");
  EXPECT_EQ(first.get(), second.get());
  EXPECT_EQ(cache.hits(), 1u);
  EXPECT_EQ(cache.misses(), 1u);
  EXPECT_EQ(cache.entries(), 1u);
  ASSERT_EQ(first->statements.size(), 1u);
  EXPECT_EQ(first->statements[0].relations[0].name, "t");
  // The key is the exact text.
  std::shared_ptr<const SqlAnalysis> other = cache.Analyse("SELECT * FROM t WHERE id = $1 ");
  EXPECT_NE(other.get(), first.get());
  EXPECT_EQ(cache.misses(), 2u);
}

TEST(AnalysisCache, CachesRefusalsToo) {
  AnalysisCache cache(1 << 20);
  std::shared_ptr<const SqlAnalysis> a = cache.Analyse("SELEC 1");
  EXPECT_FALSE(a->ok);
  EXPECT_EQ(cache.Analyse("SELEC 1").get(), a.get());
  EXPECT_EQ(cache.hits(), 1u);
}

TEST(AnalysisCache, StaysWithinItsByteBoundEvictingTheLeastRecentlyUsed) {
  const size_t kBound = 16 << 10;
  AnalysisCache cache(kBound);
  std::shared_ptr<const SqlAnalysis> keep = cache.Analyse("SELECT * FROM keep_me");
  for (int i = 0; i < 500; ++i) {
    (void)cache.Analyse("SELECT * FROM keep_me");  // used again and again: stays
    (void)cache.Analyse("SELECT a, b, c FROM table_" + std::to_string(i) + " WHERE x = $1");
    EXPECT_LE(cache.bytes(), kBound);
  }
  EXPECT_LT(cache.entries(), 500u);
  EXPECT_GT(cache.entries(), 5u);
  uint64_t hits = cache.hits();
  EXPECT_EQ(cache.Analyse("SELECT * FROM keep_me").get(), keep.get());
  EXPECT_EQ(cache.hits(), hits + 1);
  // The oldest one-off statement is gone.
  uint64_t misses = cache.misses();
  (void)cache.Analyse("SELECT a, b, c FROM table_0 WHERE x = $1");
  EXPECT_EQ(cache.misses(), misses + 1);
}

TEST(AnalysisCache, AnEntryLargerThanTheBoundIsReturnedButNotKept) {
  AnalysisCache cache(4096);
  // (Outside the literal-shape subset: a cast. A shaped text's key is short.)
  std::string big = "SELECT '" + std::string(8000, 'x') + "'::text";
  std::shared_ptr<const SqlAnalysis> a = cache.Analyse(big);
  EXPECT_TRUE(a->ok);
  EXPECT_EQ(cache.entries(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
  EXPECT_NE(cache.Analyse(big).get(), a.get());
}

// A cached analysis of many statements holds what they need, not the slack
// the vector grew by (up to half of it).
TEST(AnalysisCache, AnAnalysisOfManyStatementsKeepsNoGrowthSlack) {
  std::string many;
  for (int i = 0; i < 1000; ++i) many += "SELECT 1;";
  const SqlAnalysis a = AnalyseSql(many);
  ASSERT_TRUE(a.ok);
  ASSERT_EQ(a.statements.size(), 1000u);
  EXPECT_EQ(a.statements.capacity(), a.statements.size());
}

TEST(AnalysisCache, CountsTheTextAndTheSummaryInItsBytes) {
  AnalysisCache one(1 << 20);
  (void)one.Analyse("SELECT * FROM a0");
  std::string many = "SELECT * FROM a0";
  for (int i = 1; i < 50; ++i) many += ", a" + std::to_string(i);
  AnalysisCache fifty(1 << 20);
  (void)fifty.Analyse(many);
  EXPECT_GT(one.bytes(), sizeof(SqlAnalysis) + sizeof(StatementSummary));
  EXPECT_GE(fifty.bytes() - one.bytes(), (many.size() - 16) + 49 * sizeof(RelationRef));
}

}  // namespace
}  // namespace pgb::policy

// ---- Fingerprints: constants and positions left out, everything else kept.

namespace pgb::policy {
namespace {

uint64_t FingerprintOf(std::string_view sql) { return Only(AnalyseSql(sql)).fingerprint; }

TEST(StatementFingerprint, SameForStatementsThatDifferOnlyInConstantsAndSpelling) {
  const uint64_t base = FingerprintOf("SELECT abalance FROM pgbench_accounts WHERE aid = 1");
  EXPECT_NE(base, 0u);
  for (std::string_view sql : {
           "SELECT abalance FROM pgbench_accounts WHERE aid = 98765",
           "select  abalance\n  from PGBENCH_ACCOUNTS where aid=7 -- comment",
           "/* leading */ SELECT abalance FROM pgbench_accounts WHERE aid = 'x'",
           "SELECT abalance FROM pgbench_accounts WHERE aid = 1.5;",
       }) {
    EXPECT_EQ(FingerprintOf(sql), base) << sql;
  }
  EXPECT_EQ(FingerprintOf("SET statement_timeout = 5"),
            FingerprintOf("SET statement_timeout = '10s'"));
}

TEST(StatementFingerprint, DiffersWhenTheStatementDoes) {
  std::set<uint64_t> seen;
  for (std::string_view sql : {
           "SELECT abalance FROM pgbench_accounts WHERE aid = 1",
           "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
           "SELECT abalance FROM pgbench_accounts WHERE aid > 1",
           "SELECT bbalance FROM pgbench_accounts WHERE aid = 1",
           "SELECT abalance FROM pgbench_branches WHERE aid = 1",
           "SELECT abalance FROM other.pgbench_accounts WHERE aid = 1",
           "SELECT abalance FROM \"PGBENCH_ACCOUNTS\" WHERE aid = 1",
           "SELECT abalance FROM pgbench_accounts WHERE aid = 1 AND bid = 2",
           "SELECT abalance FROM pgbench_accounts WHERE aid IN (1, 2)",
           "DELETE FROM pgbench_accounts WHERE aid = 1",
           "SET statement_timeout = 5",
           "SET lock_timeout = 5",
       }) {
    EXPECT_TRUE(seen.insert(FingerprintOf(sql)).second) << "collides: " << sql;
  }
}

TEST(StatementFingerprint, EachStatementOfAQueryHasItsOwn) {
  SqlAnalysis a = AnalyseSql("SELECT 1; SELECT 2; DELETE FROM t WHERE id = 3");
  ASSERT_TRUE(a.ok);
  ASSERT_EQ(a.statements.size(), 3u);
  EXPECT_EQ(a.statements[0].fingerprint, a.statements[1].fingerprint);
  EXPECT_NE(a.statements[0].fingerprint, a.statements[2].fingerprint);
  EXPECT_EQ(a.statements[2].fingerprint, FingerprintOf("delete from t where id = 99"));
}

// ---- Sharing one analysis among texts that differ only in their literals.

TEST(AnalysisCache, SharesOneAnalysisAmongTextsDifferingOnlyInLiterals) {
  AnalysisCache cache(1 << 20);
  const std::string first = "SELECT abalance FROM pgbench_accounts WHERE aid = 5;";
  const std::string second = "SELECT abalance FROM pgbench_accounts WHERE aid = 123456;";
  std::shared_ptr<const SqlAnalysis> a = cache.Analyse(first);
  std::shared_ptr<const SqlAnalysis> b = cache.Analyse(second);
  EXPECT_EQ(cache.misses(), 1u);
  EXPECT_EQ(cache.shape_hits(), 1u);
  EXPECT_EQ(cache.entries(), 1u);
  EXPECT_EQ(testing::EverythingText(*a), testing::EverythingText(AnalyseSql(first)));
  EXPECT_EQ(testing::EverythingText(*b), testing::EverythingText(AnalyseSql(second)));
  // The statement's range follows the longer text.
  ASSERT_EQ(b->statements.size(), 1u);
  EXPECT_EQ(second.substr(b->statements[0].location, b->statements[0].length),
            "SELECT abalance FROM pgbench_accounts WHERE aid = 123456");
  // A text of the same length is answered with the entry itself.
  EXPECT_EQ(cache.Analyse("SELECT abalance FROM pgbench_accounts WHERE aid = 7;").get(), a.get());
}

TEST(AnalysisCache, DoesNotShareAnAnalysisThatReadsALiteral) {
  AnalysisCache cache(1 << 20);
  EXPECT_FALSE(Only(*cache.Analyse("UPDATE t SET x = 1 WHERE 1 = 2")).unfiltered_write);
  EXPECT_TRUE(Only(*cache.Analyse("UPDATE t SET x = 1 WHERE 1 = 1")).unfiltered_write);
  EXPECT_EQ(Only(*cache.Analyse("SET statement_timeout = 100")).settings[0].value, "100");
  EXPECT_EQ(Only(*cache.Analyse("SET statement_timeout = 0")).settings[0].value, "0");
  EXPECT_EQ(cache.shape_hits(), 0u);
  EXPECT_EQ(cache.misses(), 4u);
}

// Texts made from templates with varied literals: whatever the cache has seen
// before, it answers each exactly as a fresh analysis does.
TEST(AnalysisCache, AnswersEveryTextAsAFreshAnalysisWould) {
  const std::vector<std::string> templates = {
      "SELECT abalance FROM pgbench_accounts WHERE aid = N;",
      "  SELECT * FROM t WHERE a = N AND b = 'S' ORDER BY 1 LIMIT N ;  ",
      "SELECT 'S' AS x, N + -N AS y",
      "INSERT INTO t (a, b) VALUES (N, 'S')",
      "INSERT INTO t VALUES (N, 'S') ON CONFLICT DO NOTHING",
      "INSERT INTO t SELECT N, 'S' FROM u WHERE N = N",
      "UPDATE t SET x = N WHERE 1 = N",
      "DELETE FROM t WHERE N = 1",
      "MERGE INTO t USING u ON N = 1 WHEN MATCHED THEN DELETE",
      "WITH d AS (DELETE FROM t WHERE N = 1 RETURNING *) SELECT * FROM d",
      "SET statement_timeout = N",
      "SET search_path = 'S'",
      "SELECT set_config('S', 'S', false)",
      "SELECT N; SELECT 'S'",
      "SELECT CAST('S' AS varchar(N))",
      "SELECT CAST('S' AS numeric(N, 2))",
      "SELECT CAST('S' AS float(N))",
      "SELECT current_timestamp(N), localtime(N)",
      "SELECT * FROM t TABLESAMPLE SYSTEM (N) REPEATABLE (N)",
      "SELECT * FROM t WHERE s LIKE 'S' ESCAPE 'S'",
      "SELECT N FROM t GROUP BY N HAVING count(*) > N",
      "SELECT id, email FROM t WHERE note = 'S' ORDER BY N, id",
      "SELECT DISTINCT ON (N) a, t.b FROM t GROUP BY ROLLUP (N)",
      "SELECT a FROM t ORDER BY 'S'",
      "SELECT c FROM t c WHERE c.a IN (N, N) UNION SELECT N",
      "COPY t TO 'S'",
      "EXPLAIN ANALYZE SELECT N",
      "SELECT N INTO newt",
      "PREPARE p AS SELECT N",
      "SELECT * FROM pg_authid WHERE rolname = 'S'",
      "SELECT 'S'\n'S'",
      "SELECT 'S' 'S'",
  };
  const std::vector<std::string> numbers = {
      "0", "1", "2", "007", "42", "2147483647", "2147483648", "99999999999999999999"};
  const std::vector<std::string> strings = {"", "a", "x y", "--", "/*", ";", "$$", "S"};
  AnalysisCache cache(1 << 20);
  int texts = 0;
  for (int round = 0; round < 3; ++round) {
    for (const std::string& t : templates) {
      for (size_t v = 0; v < numbers.size(); ++v) {
        std::string sql;
        size_t n = 0;
        for (size_t i = 0; i < t.size(); ++i) {
          if (t[i] == 'N' && (i == 0 || !isalnum(static_cast<unsigned char>(t[i - 1])))) {
            sql += numbers[(v + n++ + round) % numbers.size()];
          } else if (t[i] == 'S' && i > 0 && t[i - 1] == '\'' && t[i + 1] == '\'') {
            sql += strings[(v + n++ + 2 * round) % strings.size()];
          } else if (t[i] == '\\' && i + 1 < t.size() && t[i + 1] == 'n') {
            sql += '\n';
            ++i;
          } else {
            sql += t[i];
          }
        }
        EXPECT_EQ(testing::EverythingText(*cache.Analyse(sql)),
                  testing::EverythingText(AnalyseSql(sql)))
            << sql;
        ++texts;
      }
    }
  }
  EXPECT_EQ(texts, static_cast<int>(3 * templates.size() * numbers.size()));
  EXPECT_GT(cache.shape_hits(), 0u);
}

}  // namespace
}  // namespace pgb::policy
