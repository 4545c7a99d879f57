// A node-postgres (`pg`) client for pgbastion's integration tests (test
// tooling only): what a real application sees through the gateway, where
// psql and psycopg cannot show it (an 'error' event with nothing to attach it
// to, a pool's idle client). tests/integration/test_drivers.py runs it.
//
//   node pg_client.mjs '<json>'   prints one JSON object on stdout
//
// Scenarios (the JSON's "scenario"; "connect" is the connection config for
// new pg.Client / pg.Pool, "direct" one straight to the database):
//   terminate   the database ends the session with pg_terminate_backend
//               (over "direct"): "mode" "idle", a pooled client idle between
//               requests, or "query", a client running a query. Prints every
//               error the application could see: pool or client 'error'
//               events, the query's rejection, uncaught exceptions and
//               unhandled rejections.
//   query       connects with "connect" (options, custom settings ...), runs
//               "sql" and prints its rows, or the error that refused it
//               {error: {code, message, severity, ...}}.
import pg from "pg";

const config = JSON.parse(process.argv[2]);
const seen = [];
const describe = (source, e) => ({
  source,
  code: e && e.code,
  severity: e && e.severity,
  message: e && e.message,
});
process.on("uncaughtException", (e) => seen.push(describe("uncaughtException", e)));
process.on("unhandledRejection", (e) => seen.push(describe("unhandledRejection", e)));

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const print = (result) => process.stdout.write(JSON.stringify(result) + "\n");

async function terminate() {
  const direct = new pg.Client(config.direct);
  const kill = async (pid) => {
    await direct.connect();
    await direct.query("SELECT pg_terminate_backend($1)", [pid]);
    await direct.end();
  };
  let pid;
  if (config.mode === "query") {
    // A client with an 'error' listener, terminated while it runs a query:
    // the query fails with the FATAL; anything after it is an 'error' event.
    const client = new pg.Client(config.connect);
    client.on("error", (e) => seen.push(describe("client", e)));
    await client.connect();
    pid = (await client.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
    const running = client.query("SELECT pg_sleep(30)").then(
      () => seen.push({ source: "query", code: null, message: "the query was not ended" }),
      (e) => seen.push(describe("query", e)),
    );
    await sleep(300);
    await kill(pid);
    await running;
    await sleep(config.wait_ms ?? 1500);
    await client.end().catch(() => {});
  } else {
    // A pooled client, idle between requests. No listener on the client
    // itself: its errors reach the application through the pool's 'error'
    // event (or nowhere: uncaught).
    const pool = new pg.Pool({ ...config.connect, max: 1, idleTimeoutMillis: 60000 });
    pool.on("error", (e) => seen.push(describe("pool", e)));
    const client = await pool.connect();
    pid = (await client.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
    client.release();
    await kill(pid);
    await sleep(config.wait_ms ?? 1500);
    await pool.end();
  }
  await sleep(100);
  print({ pid, errors: seen });
}

async function query() {
  const client = new pg.Client(config.connect);
  client.on("error", (e) => seen.push(describe("client", e)));
  try {
    await client.connect();
  } catch (e) {
    await sleep(200);
    print({ error: describe("connect", e), errors: seen });
    return;
  }
  try {
    const result = await client.query(config.sql);
    print({ rows: result.rows, errors: seen });
  } catch (e) {
    print({ error: describe("query", e), errors: seen });
  } finally {
    await client.end();
  }
}

const scenarios = { terminate, query };
await scenarios[config.scenario]();
