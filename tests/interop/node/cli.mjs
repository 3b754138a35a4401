#!/usr/bin/env node
// One JSON request on stdin -> one JSON response on stdout (logs go to stderr).
// Drives the REAL Shopify session-storage adapters (drizzle, prisma, raw pg/mysql/sqlite,
// redis, dynamodb)
// and the real Session class from @shopify/shopify-api. See README.md for the protocol.
import Module from 'node:module';
import {dirname, join} from 'node:path';
import {fileURLToPath, pathToFileURL} from 'node:url';

import {drizzleTable} from './drizzle-table.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));

// stdout carries exactly one JSON document: send every console call to stderr.
for (const level of ['log', 'info', 'warn', 'debug', 'trace']) {
  console[level] = (...args) => console.error(...args);
}

const {Session} = await import('@shopify/shopify-api');

// ---------------------------------------------------------------- session specs <-> Session

const DATE_KEYS = new Set(['expires', 'refreshTokenExpires']);
const SESSION_KEYS = new Set([
  'id', 'shop', 'state', 'isOnline', 'scope', 'expires', 'accessToken',
  'refreshToken', 'refreshTokenExpires', 'onlineAccessInfo',
]);

/** Spec -> Session. Keys keep their JSON order; dates are epoch ms; `extra` adds own props. */
function specToSession(spec) {
  const params = {};
  for (const [key, value] of Object.entries(spec)) {
    if (key === 'extra') continue;
    if (DATE_KEYS.has(key) && typeof value === 'number') {
      params[key] = new Date(value);
    } else {
      params[key] = value;
    }
  }
  Object.assign(params, spec.extra ?? {});
  return new Session(params);
}

function toJsonValue(value) {
  if (value instanceof Date) {
    const ms = value.getTime();
    return Number.isNaN(ms) ? 'Invalid Date' : ms;
  }
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value); // NaN -> "NaN"
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (value && typeof value === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(value)) {
      if (v !== undefined) out[k] = toJsonValue(v);
    }
    return out;
  }
  return value;
}

/** Session -> spec: its own enumerable props (undefined omitted, null kept, Date -> ms). */
function sessionToSpec(session) {
  if (session === undefined || session === null) return null;
  const spec = {};
  const extra = {};
  for (const [key, value] of Object.entries(session)) {
    if (value === undefined) continue;
    (SESSION_KEYS.has(key) ? spec : extra)[key] = toJsonValue(value);
  }
  spec.extra = extra;
  return spec;
}

// ---------------------------------------------------------------- DDL per Node stack

const DDL = {
  drizzle: {
    // From Shopify's drizzle adapter tests, widened to the 17 columns of the adapter's schemas.
    postgresql: (t) => `CREATE TABLE IF NOT EXISTS "${t}" ("id" TEXT PRIMARY KEY, "shop" TEXT NOT NULL,
      "state" TEXT NOT NULL, "isOnline" BOOLEAN NOT NULL DEFAULT false, "scope" TEXT, "expires" TIMESTAMP,
      "accessToken" TEXT NOT NULL, "userId" BIGINT, "firstName" TEXT, "lastName" TEXT, "email" TEXT,
      "accountOwner" BOOLEAN, "locale" TEXT, "collaborator" BOOLEAN, "emailVerified" BOOLEAN,
      "refreshToken" TEXT, "refreshTokenExpires" TIMESTAMP)`,
    mysql: (t) => `CREATE TABLE IF NOT EXISTS \`${t}\` (\`id\` varchar(255) NOT NULL, \`shop\` text NOT NULL,
      \`state\` text NOT NULL, \`isOnline\` boolean NOT NULL DEFAULT false, \`scope\` text,
      \`expires\` timestamp NULL, \`accessToken\` text NOT NULL, \`userId\` bigint, \`firstName\` text,
      \`lastName\` text, \`email\` text, \`accountOwner\` boolean, \`locale\` text, \`collaborator\` boolean,
      \`emailVerified\` boolean, \`refreshToken\` text, \`refreshTokenExpires\` timestamp NULL,
      CONSTRAINT \`${t}_id\` PRIMARY KEY (\`id\`))`,
    sqlite: (t) => `CREATE TABLE IF NOT EXISTS "${t}" ("id" text PRIMARY KEY NOT NULL, "shop" text NOT NULL,
      "state" text NOT NULL, "isOnline" integer DEFAULT false NOT NULL, "scope" text, "expires" text,
      "accessToken" text NOT NULL, "userId" blob, "firstName" text, "lastName" text, "email" text,
      "accountOwner" integer, "locale" text, "collaborator" integer, "emailVerified" integer,
      "refreshToken" text, "refreshTokenExpires" text)`,
  },
  prisma: {
    // What `prisma migrate` emits for the adapter's model Session on each provider.
    postgresql: (t) => `CREATE TABLE "${t}" ("id" TEXT NOT NULL, "shop" TEXT NOT NULL, "state" TEXT NOT NULL,
      "isOnline" BOOLEAN NOT NULL DEFAULT false, "scope" TEXT, "expires" TIMESTAMP(3),
      "accessToken" TEXT NOT NULL, "userId" BIGINT, "firstName" TEXT, "lastName" TEXT, "email" TEXT,
      "accountOwner" BOOLEAN, "locale" TEXT, "collaborator" BOOLEAN, "emailVerified" BOOLEAN,
      "refreshToken" TEXT, "refreshTokenExpires" TIMESTAMP(3),
      CONSTRAINT "${t}_pkey" PRIMARY KEY ("id"))`,
    mysql: (t) => `CREATE TABLE \`${t}\` (\`id\` VARCHAR(191) NOT NULL, \`shop\` VARCHAR(191) NOT NULL,
      \`state\` VARCHAR(191) NOT NULL, \`isOnline\` BOOLEAN NOT NULL DEFAULT false, \`scope\` VARCHAR(191) NULL,
      \`expires\` DATETIME(3) NULL, \`accessToken\` VARCHAR(191) NOT NULL, \`userId\` BIGINT NULL,
      \`firstName\` VARCHAR(191) NULL, \`lastName\` VARCHAR(191) NULL, \`email\` VARCHAR(191) NULL,
      \`accountOwner\` BOOLEAN NULL, \`locale\` VARCHAR(191) NULL, \`collaborator\` BOOLEAN NULL,
      \`emailVerified\` BOOLEAN NULL, \`refreshToken\` VARCHAR(191) NULL, \`refreshTokenExpires\` DATETIME(3) NULL,
      PRIMARY KEY (\`id\`)) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`,
    sqlite: (t) => `CREATE TABLE "${t}" ("id" TEXT NOT NULL PRIMARY KEY, "shop" TEXT NOT NULL,
      "state" TEXT NOT NULL, "isOnline" BOOLEAN NOT NULL DEFAULT false, "scope" TEXT, "expires" DATETIME,
      "accessToken" TEXT NOT NULL, "userId" BIGINT, "firstName" TEXT, "lastName" TEXT, "email" TEXT,
      "accountOwner" BOOLEAN, "locale" TEXT, "collaborator" BOOLEAN, "emailVerified" BOOLEAN,
      "refreshToken" TEXT, "refreshTokenExpires" DATETIME)`,
  },
};

function quote(dialect, name) {
  return dialect === 'mysql' ? `\`${name}\`` : `"${name}"`;
}

/** On PostgreSQL, what puts the next statements in `req.schema` (a schema of the test's own,
 * where the Prisma adapter finds its fixed table "Session"); MySQL names its database in the URL. */
function inSchema(req) {
  return req.schema && req.dialect === 'postgresql' ? [`SET search_path TO ${quote(req.dialect, req.schema)}`] : [];
}

/** Runs SQL statements with the plain driver of the dialect (used for create/drop only). */
async function execSql(dialect, url, statements) {
  if (dialect === 'postgresql') {
    const {default: pg} = await import('pg');
    const client = new pg.Client({connectionString: url});
    await client.connect();
    try {
      for (const sql of statements) await client.query(sql);
    } finally {
      await client.end();
    }
  } else if (dialect === 'mysql') {
    const {default: mysql} = await import('mysql2/promise');
    const conn = await mysql.createConnection(url);
    try {
      for (const sql of statements) await conn.query(sql);
    } finally {
      await conn.end();
    }
  } else if (dialect === 'sqlite') {
    const {default: Database} = await import('better-sqlite3');
    const db = new Database(url);
    try {
      for (const sql of statements) db.exec(sql);
    } finally {
      db.close();
    }
  } else {
    throw new Error(`unknown dialect ${dialect}`);
  }
}

// ---------------------------------------------------------------- storages


async function makeDrizzleStorage(dialect, url, table) {
  const adapter = await import('@shopify/shopify-app-session-storage-drizzle');
  const sessionTable = await drizzleTable(dialect, table);
  if (dialect === 'postgresql') {
    const {default: pg} = await import('pg');
    const {drizzle} = await import('drizzle-orm/node-postgres');
    const pool = new pg.Pool({connectionString: url});
    const storage = new adapter.DrizzleSessionStoragePostgres(drizzle(pool), sessionTable);
    return {storage, close: () => pool.end()};
  }
  if (dialect === 'mysql') {
    const {default: mysql} = await import('mysql2/promise');
    const {drizzle} = await import('drizzle-orm/mysql2');
    const conn = await mysql.createConnection(url);
    const storage = new adapter.DrizzleSessionStorageMySQL(drizzle(conn), sessionTable);
    return {storage, close: () => conn.end()};
  }
  const {default: Database} = await import('better-sqlite3');
  const {drizzle} = await import('drizzle-orm/better-sqlite3');
  const db = new Database(url);
  const storage = new adapter.DrizzleSessionStorageSQLite(drizzle(db), sessionTable);
  return {storage, close: async () => db.close()};
}

/**
 * The Prisma session adapter does `require('@prisma/client')` for `Prisma.PrismaClientKnownRequestError`
 * (its P2002 retry). In a real app that is the app's generated client; here there are three generated
 * clients (one per provider, custom output), so point '@prisma/client' at the one in use. The adapter
 * package has no "exports" map, so Node loads its CJS build and a CJS resolution override suffices.
 */
function useGeneratedPrismaClient(clientPath) {
  const resolveFilename = Module._resolveFilename;
  Module._resolveFilename = function (request, ...rest) {
    return request === '@prisma/client' ? clientPath : resolveFilename.call(this, request, ...rest);
  };
}

async function makePrismaStorage(dialect, url, table, req) {
  if (table !== undefined && table !== 'Session') {
    throw new Error(`prisma: the generated clients map model Session to the fixed table "Session" (got "${table}")`);
  }
  const clientPath = join(HERE, 'prisma', 'generated', dialect, 'index.js');
  useGeneratedPrismaClient(clientPath);
  const {PrismaClient} = await import(pathToFileURL(clientPath).href);
  let driverAdapter;
  if (dialect === 'postgresql') {
    const {PrismaPg} = await import('@prisma/adapter-pg');
    // `schema` puts the fixed table "Session" in a schema of the test's own.
    driverAdapter = new PrismaPg({connectionString: url}, req.schema ? {schema: req.schema} : undefined);
  } else if (dialect === 'mysql') {
    const {PrismaMariaDb} = await import('@prisma/adapter-mariadb');
    driverAdapter = new PrismaMariaDb(url); // mysql:// is rewritten to mariadb:// by the adapter
  } else {
    const {PrismaBetterSQLite3} = await import('@prisma/adapter-better-sqlite3');
    const options = req.timestamp_format ? {timestampFormat: req.timestamp_format} : undefined;
    driverAdapter = new PrismaBetterSQLite3({url: `file:${url}`}, options);
  }
  const prisma = new PrismaClient({adapter: driverAdapter, errorFormat: 'minimal'});
  const {PrismaSessionStorage} = await import('@shopify/shopify-app-session-storage-prisma');
  const storage = new PrismaSessionStorage(prisma, {
    connectionRetries: 1,
    connectionRetryIntervalMs: 0,
    ...(req.prisma_options ?? {}),
  });
  return {storage, close: () => prisma.$disconnect()};
}

function migrationsTable(table, req) {
  // Per-table migrations bookkeeping, so each test table gets the adapter's migrations run on it.
  return req.migrations_table ?? `${table}_migrations`;
}

async function makeRawStorage(dialect, url, table, req) {
  const opts = {
    sessionTableName: table,
    migratorOptions: {
      migrationDBIdentifier: migrationsTable(table, req),
      migrationNameColumnName: 'migration_name',
    },
  };
  if (dialect === 'postgresql') {
    const {PostgreSQLSessionStorage} = await import('@shopify/shopify-app-session-storage-postgresql');
    const storage = new PostgreSQLSessionStorage(url, opts);
    return {storage, close: () => storage.disconnect()};
  }
  if (dialect === 'mysql') {
    const {MySQLSessionStorage} = await import('@shopify/shopify-app-session-storage-mysql');
    const storage = new MySQLSessionStorage(url, opts);
    return {storage, close: () => storage.disconnect()};
  }
  const {SQLiteSessionStorage} = await import('@shopify/shopify-app-session-storage-sqlite');
  const storage = new SQLiteSessionStorage(url, opts);
  // SqliteConnection.disconnect() is a no-op; close the underlying sqlite3.Database ourselves.
  const close = async () => {
    await storage.ready.catch(() => {});
    const db = storage.db?.db;
    if (db) await new Promise((res) => db.close(() => res()));
  };
  return {storage, close};
}

/** The Redis adapter: `table` is its sessionKeyPrefix; `dialect` is not used. */
async function makeRedisStorage(url, prefix) {
  const {RedisSessionStorage} = await import('@shopify/shopify-app-session-storage-redis');
  const storage = new RedisSessionStorage(url, {sessionKeyPrefix: prefix});
  await storage.ready;
  return {storage, close: () => storage.disconnect()};
}

/**
 * The DynamoDB adapter: `url` is the endpoint (dynalite), `table` its sessionTableName,
 * `shop_index` its shopIndexName; dynalite takes any region and credentials.
 */
async function makeDynamoDBStorage(url, table, req) {
  const {DynamoDBSessionStorage} = await import('@shopify/shopify-app-session-storage-dynamodb');
  const storage = new DynamoDBSessionStorage({
    sessionTableName: table,
    shopIndexName: req.shop_index ?? 'shop_index',
    config: {
      endpoint: url,
      region: 'us-east-1',
      credentials: {accessKeyId: 'dynalite', secretAccessKey: 'dynalite'},
    },
  });
  return {storage, close: async () => storage.client.destroy()};
}

async function makeStorage(adapter, dialect, url, table, req = {}) {
  if (adapter === 'redis') return makeRedisStorage(url, table ?? 'shopify_sessions');
  if (adapter === 'dynamodb') return makeDynamoDBStorage(url, table ?? 'shopify_sessions', req);
  if (adapter === 'drizzle') return makeDrizzleStorage(dialect, url, table ?? 'session');
  if (adapter === 'prisma') return makePrismaStorage(dialect, url, table, req);
  if (adapter === 'raw') return makeRawStorage(dialect, url, table ?? 'shopify_sessions', req);
  throw new Error(`unknown adapter ${adapter}`);
}

// ---------------------------------------------------------------- operations

async function withStorage(req, fn) {
  const {storage, close} = await makeStorage(req.adapter, req.dialect, req.url, req.table, req);
  try {
    return await fn(storage);
  } finally {
    await close();
  }
}

const OPS = {
  async create_table(req) {
    if (req.adapter === 'raw') {
      await withStorage(req, (storage) => storage.ready);
      return {created: true};
    }
    const table = req.table ?? (req.adapter === 'prisma' ? 'Session' : 'session');
    const ddl = DDL[req.adapter]?.[req.dialect];
    if (!ddl) throw new Error(`no DDL for ${req.adapter}/${req.dialect}`);
    await execSql(req.dialect, req.url, [
      ...inSchema(req),
      `DROP TABLE IF EXISTS ${quote(req.dialect, table)}`,
      ddl(table),
    ]);
    return {created: true};
  },

  async drop_table(req) {
    const table = req.table ?? {prisma: 'Session', drizzle: 'session', raw: 'shopify_sessions'}[req.adapter];
    const tables = [table];
    if (req.adapter === 'raw') tables.push(migrationsTable(table, req));
    await execSql(req.dialect, req.url, [
      ...inSchema(req),
      ...tables.map((t) => `DROP TABLE IF EXISTS ${quote(req.dialect, t)}`),
    ]);
    return {dropped: true};
  },

  store: (req) => withStorage(req, async (storage) => {
    const stored = [];
    for (const spec of req.sessions) stored.push(await storage.storeSession(specToSession(spec)));
    return {stored};
  }),

  // Every session stored at once (Promise.all), as concurrent requests of one app would.
  store_parallel: (req) => withStorage(req, async (storage) => ({
    stored: await Promise.all(req.sessions.map((spec) => storage.storeSession(specToSession(spec)))),
  })),

  load: (req) => withStorage(req, async (storage) => {
    const sessions = [];
    const equals = [];
    for (const [i, id] of req.ids.entries()) {
      const loaded = await storage.loadSession(id);
      sessions.push(sessionToSpec(loaded));
      const expected = req.expected?.[i];
      equals.push(expected ? specToSession(expected).equals(loaded) : null);
    }
    return req.expected ? {sessions, equals} : {sessions};
  }),

  find: (req) => withStorage(req, async (storage) => {
    const found = await storage.findSessionsByShop(req.shop);
    return {sessions: found.map(sessionToSpec)};
  }),

  delete: (req) => withStorage(req, async (storage) => {
    const results = [];
    for (const id of req.ids) results.push(await storage.deleteSession(id));
    return {results};
  }),

  delete_many: (req) => withStorage(req, async (storage) => ({
    result: await storage.deleteSessions(req.ids),
  })),

  async property_arrays(req) {
    return {
      arrays: req.sessions.map((spec) => {
        const session = specToSession(spec);
        return {
          without_user: toJsonValue(session.toPropertyArray(false)),
          with_user: toJsonValue(session.toPropertyArray(true)),
        };
      }),
    };
  },

  async from_property_arrays(req) {
    return {
      sessions: req.arrays.map(({entries, return_user_data}) =>
        sessionToSpec(Session.fromPropertyArray(entries, Boolean(return_user_data)))),
    };
  },
};

// ---------------------------------------------------------------- main

async function readStdin() {
  let text = '';
  process.stdin.setEncoding('utf8');
  for await (const chunk of process.stdin) text += chunk;
  return text;
}

let responded = false;

function respond(obj, code) {
  if (responded) return;
  responded = true;
  process.stdout.write(`${JSON.stringify(obj)}\n`, () => process.exit(code));
}

function fail(error) {
  console.error(error);
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  const response = {error: message};
  if (error?.code !== undefined) response.code = error.code;
  if (error?.cause !== undefined) response.cause = String(error.cause?.message ?? error.cause);
  respond(response, 1);
}

// Some adapters start work in their constructors that nobody awaits (the raw adapters' migration
// table creation; sqlite3's 'error' event): report those failures as the response, not a crash.
process.on('unhandledRejection', fail);
process.on('uncaughtException', fail);

try {
  const req = JSON.parse(await readStdin());
  const op = OPS[req.op];
  if (!op) throw new Error(`unknown op ${JSON.stringify(req.op)}`);
  respond(await op(req), 0);
} catch (error) {
  fail(error);
}
