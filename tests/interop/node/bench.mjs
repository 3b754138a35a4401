#!/usr/bin/env node
// The benchmark's Node peers: Shopify's Drizzle and Prisma session-storage adapters running
// the phases of benchmarks/phases.py on one table. Used by `python -m benchmarks.run`.
// One JSON request on stdin -> one JSON line on stdout (logs go to stderr):
//   {"adapter": "drizzle"|"prisma", "dialect": "postgresql"|"mysql"|"sqlite", "url": ...,
//    "table": ..., "sessions": [spec], "updated": [spec], "shops": [shop],
//    "expected_by_shop": {shop: [id]}, "workers": 16, "delete_batch": 100}
// Sessions are specs as in cli.mjs (dates in epoch ms). The reply is
//   {"phases": {name: {"elapsed_ns": n, "latencies_ns": [n]}}, "versions": {...}}
// Only the adapter calls are timed; each phase is checked after it (a failed check exits 1).
import Module from 'node:module';
import {readFileSync} from 'node:fs';
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

async function main(req) {
  const {storage, close} = req.adapter === 'redis'
    ? await makeRedis(req.url, req.table)
    : req.adapter === 'drizzle'
      ? await makeDrizzle(req.dialect, req.url, req.table)
      : await makePrisma(req.dialect, req.url);
  const sessions = req.sessions.map(specToSession);
  const updated = req.updated.map(specToSession);
  const byId = new Map(updated.map((s) => [s.id, s]));
  const ids = sessions.map((s) => s.id);
  const batches = [];
  for (let i = 0; i < ids.length; i += req.delete_batch) batches.push(ids.slice(i, i + req.delete_batch));
  const phases = {};
  try {
    check((await storage.loadSession('warm-up-absent-id')) === undefined, 'warm-up found an absent id');
    let run = await timeEach((s) => storage.storeSession(s), sessions);
    check(run.results.every((r) => r === true), 'store_insert returned false');
    phases.store_insert = run.phase;
    run = await timeEach((s) => storage.storeSession(s), updated);
    check(run.results.every((r) => r === true), 'store_update returned false');
    phases.store_update = run.phase;
    run = await timeEach((id) => storage.loadSession(id), ids);
    check(run.results.every((s, i) => s && s.accessToken === byId.get(ids[i]).accessToken), 'load differs');
    phases.load = run.phase;
    run = await timeEach((shop) => storage.findSessionsByShop(shop), req.shops);
    check(run.results.every((found, i) =>
      found.length === req.expected_by_shop[req.shops[i]].length), 'find: wrong number of sessions');
    phases.find = run.phase;
    const concurrent = await timeConcurrent((id) => storage.loadSession(id), ids, req.workers, 'warm-up-absent-id');
    check(concurrent.results.every(([id, s]) => s && s.accessToken === byId.get(id).accessToken),
      'concurrent_load differs');
    phases.concurrent_load = concurrent.phase;
    run = await timeEach((batch) => storage.deleteSessions(batch), batches);
    check(run.results.every((r) => r === true), 'delete returned false');
    check((await storage.loadSession(ids[0])) === undefined, 'delete left a session');
    phases.delete = run.phase;
  } finally {
    await close();
  }
  const adapterPackage = `@shopify/shopify-app-session-storage-${req.adapter}`;
  return {phases, versions: {node: process.versions.node, [adapterPackage]: version(adapterPackage)}};
}

let text = '';
process.stdin.setEncoding('utf8');
for await (const chunk of process.stdin) text += chunk;
try {
  const reply = await main(JSON.parse(text));
  process.stdout.write(`${JSON.stringify(reply)}\n`, () => process.exit(0));
} catch (error) {
  console.error(error);
  process.stdout.write(`${JSON.stringify({error: String(error?.stack ?? error)})}\n`, () => process.exit(1));
}
