#!/usr/bin/env node
// The benchmark's Node peers: Shopify's Drizzle and Prisma session-storage adapters running
// the phases of benchmarks/phases.py on one table, one phase at a time, when asked, so that
// `python -m benchmarks.run` interleaves them with the Python sides phase by phase.
// JSON lines: the first request on stdin sets up,
//   {"adapter": "drizzle"|"prisma"|"redis"|"dynamodb", "dialect": "postgresql"|"mysql"|"sqlite"|"redis"|"dynamodb", "url": ...,
//    "table": ..., "sessions": [spec], "updated": [spec], "shops": [shop],
//    "expected_by_shop": {shop: [id]}, "workers": 16, "delete_batch": 100}
// and is answered {"ready": true, "versions": {...}} after an untimed warm-up load; then
// each {"phase": name} is answered {"elapsed_ns": n, "latencies_ns": [n]}, and
// {"close": true} with {"closed": true}. Sessions are specs as in cli.mjs (dates in epoch
// ms). Only the adapter calls are timed; each phase is checked after it (a failed check
// answers {"error": ...} and exits 1). Logs go to stderr.
import Module from 'node:module';
import {readFileSync} from 'node:fs';
import {createInterface} from 'node:readline';
import {dirname, join} from 'node:path';
import {fileURLToPath, pathToFileURL} from 'node:url';

import {drizzleTable} from './drizzle-table.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
for (const level of ['log', 'info', 'warn', 'debug', 'trace']) {
  console[level] = (...args) => console.error(...args);
}
const {Session} = await import('@shopify/shopify-api');

function specToSession(spec) {
  const params = {...spec};
  delete params.extra;
  for (const key of ['expires', 'refreshTokenExpires']) {
    if (typeof params[key] === 'number') params[key] = new Date(params[key]);
  }
  return new Session(params);
}


// As an app would set each adapter up: node-postgres Pool, one mysql2 connection (the
// adapter's README), one better-sqlite3 database.
async function makeDrizzle(dialect, url, table) {
  const adapter = await import('@shopify/shopify-app-session-storage-drizzle');
  const sessionTable = await drizzleTable(dialect, table);
  if (dialect === 'postgresql') {
    const {default: pg} = await import('pg');
    const {drizzle} = await import('drizzle-orm/node-postgres');
    const pool = new pg.Pool({connectionString: url, max: 16});
    return {storage: new adapter.DrizzleSessionStoragePostgres(drizzle(pool), sessionTable), close: () => pool.end()};
  }
  if (dialect === 'mysql') {
    const {default: mysql} = await import('mysql2/promise');
    const {drizzle} = await import('drizzle-orm/mysql2');
    const pool = mysql.createPool({uri: url, connectionLimit: 16});
    return {storage: new adapter.DrizzleSessionStorageMySQL(drizzle(pool), sessionTable), close: () => pool.end()};
  }
  const {default: Database} = await import('better-sqlite3');
  const {drizzle} = await import('drizzle-orm/better-sqlite3');
  const db = new Database(url);
  return {storage: new adapter.DrizzleSessionStorageSQLite(drizzle(db), sessionTable), close: async () => db.close()};
}

async function makePrisma(dialect, url) {
  // See cli.mjs: the adapter requires '@prisma/client'; point it at this dialect's generated client.
  const clientPath = join(HERE, 'prisma', 'generated', dialect, 'index.js');
  const resolveFilename = Module._resolveFilename;
  Module._resolveFilename = function (request, ...rest) {
    return request === '@prisma/client' ? clientPath : resolveFilename.call(this, request, ...rest);
  };
  const {PrismaClient} = await import(pathToFileURL(clientPath).href);
  let driverAdapter;
  if (dialect === 'postgresql') {
    const {PrismaPg} = await import('@prisma/adapter-pg');
    driverAdapter = new PrismaPg({connectionString: url, max: 16});
  } else if (dialect === 'mysql') {
    const {PrismaMariaDb} = await import('@prisma/adapter-mariadb');
    driverAdapter = new PrismaMariaDb(`${url}${url.includes('?') ? '&' : '?'}connectionLimit=16`);
  } else {
    const {PrismaBetterSQLite3} = await import('@prisma/adapter-better-sqlite3');
    driverAdapter = new PrismaBetterSQLite3({url: `file:${url}`});
  }
  const prisma = new PrismaClient({adapter: driverAdapter, errorFormat: 'minimal'});
  const {PrismaSessionStorage} = await import('@shopify/shopify-app-session-storage-prisma');
  return {storage: new PrismaSessionStorage(prisma), close: () => prisma.$disconnect()};
}

function version(name) {
  try {
    return JSON.parse(readFileSync(join(HERE, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

// ---------------------------------------------------------------- timing

const clock = () => process.hrtime.bigint();

async function timeEach(call, args) {
  const latencies = [];
  const results = [];
  const start = clock();
  for (const arg of args) {
    const before = clock();
    results.push(await call(arg));
    latencies.push(Number(clock() - before));
  }
  return {phase: {elapsed_ns: Number(clock() - start), latencies_ns: latencies}, results};
}

async function timeConcurrent(call, args, workers, warmUp) {
  const slices = Array.from({length: workers}, (_, k) => args.filter((_, i) => i % workers === k));
  await Promise.all(slices.map(() => call(warmUp)));
  const latencies = [];
  const start = clock();
  const results = await Promise.all(slices.map(async (slice) => {
    const got = [];
    for (const arg of slice) {
      const before = clock();
      got.push([arg, await call(arg)]);
      latencies.push(Number(clock() - before));
    }
    return got;
  }));
  return {phase: {elapsed_ns: Number(clock() - start), latencies_ns: latencies}, results: results.flat()};
}

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

// ---------------------------------------------------------------- main

// The Redis adapter on one Redis (it takes no cluster), under the key prefix `table`.
async function makeRedis(url, prefix) {
  const {RedisSessionStorage} = await import('@shopify/shopify-app-session-storage-redis');
  const storage = new RedisSessionStorage(url, {sessionKeyPrefix: prefix});
  await storage.ready;
  return {storage, close: () => storage.disconnect()};
}

// The DynamoDB adapter on the benchmark's dynalite (`url` the endpoint, `table` its table).
async function makeDynamoDB(url, table) {
  const {DynamoDBSessionStorage} = await import('@shopify/shopify-app-session-storage-dynamodb');
  const storage = new DynamoDBSessionStorage({
    sessionTableName: table,
    config: {endpoint: url, region: 'us-east-1', credentials: {accessKeyId: 'bench', secretAccessKey: 'bench'}},
  });
  return {storage, close: async () => storage.client.destroy()};
}

async function open(req) {
  const {storage, close} = req.adapter === 'redis'
    ? await makeRedis(req.url, req.table)
    : req.adapter === 'dynamodb'
    ? await makeDynamoDB(req.url, req.table)
    : req.adapter === 'drizzle'
      ? await makeDrizzle(req.dialect, req.url, req.table)
      : await makePrisma(req.dialect, req.url);
  const sessions = req.sessions.map(specToSession);
  const updated = req.updated.map(specToSession);
  const byId = new Map(updated.map((s) => [s.id, s]));
  const ids = sessions.map((s) => s.id);
  const batches = [];
  for (let i = 0; i < ids.length; i += req.delete_batch) batches.push(ids.slice(i, i + req.delete_batch));
  check((await storage.loadSession('warm-up-absent-id')) === undefined, 'warm-up found an absent id');
  const loaded = (results) => results.every((s, i) => s && s.accessToken === byId.get(ids[i]).accessToken);
  const phases = {
    async store_insert() {
      const run = await timeEach((s) => storage.storeSession(s), sessions);
      check(run.results.every((r) => r === true), 'store_insert returned false');
      return run.phase;
    },
    async store_update() {
      const run = await timeEach((s) => storage.storeSession(s), updated);
      check(run.results.every((r) => r === true), 'store_update returned false');
      return run.phase;
    },
    async load() {
      const run = await timeEach((id) => storage.loadSession(id), ids);
      check(loaded(run.results), 'load differs');
      return run.phase;
    },
    async find() {
      const run = await timeEach((shop) => storage.findSessionsByShop(shop), req.shops);
      check(run.results.every((found, i) =>
        found.length === req.expected_by_shop[req.shops[i]].length), 'find: wrong number of sessions');
      return run.phase;
    },
    async concurrent_load() {
      const run = await timeConcurrent((id) => storage.loadSession(id), ids, req.workers, 'warm-up-absent-id');
      check(run.results.every(([id, s]) => s && s.accessToken === byId.get(id).accessToken),
        'concurrent_load differs');
      return run.phase;
    },
    async delete() {
      const run = await timeEach((batch) => storage.deleteSessions(batch), batches);
      check(run.results.every((r) => r === true), 'delete returned false');
      check((await storage.loadSession(ids[0])) === undefined, 'delete left a session');
      return run.phase;
    },
  };
  const adapterPackage = `@shopify/shopify-app-session-storage-${req.adapter}`;
  const versions = {node: process.versions.node, [adapterPackage]: version(adapterPackage)};
  return {phases, close, versions};
}

function reply(message) {
  return new Promise((resolve) => process.stdout.write(`${JSON.stringify(message)}\n`, resolve));
}

let peer;
try {
  for await (const line of createInterface({input: process.stdin, crlfDelay: Infinity})) {
    if (!line.trim()) continue;
    const req = JSON.parse(line);
    if (peer === undefined) {
      peer = await open(req);
      await reply({ready: true, versions: peer.versions});
    } else if (req.close) {
      await peer.close();
      peer = null;
      await reply({closed: true});
      break;
    } else {
      const run = peer.phases[req.phase];
      check(run !== undefined, `unknown phase ${req.phase}`);
      await reply(await run());
    }
  }
  if (peer) await peer.close();
  process.exit(0);
} catch (error) {
  console.error(error);
  await reply({error: String(error?.stack ?? error)});
  process.exit(1);
}
