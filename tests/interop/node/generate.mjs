// Generates the three Prisma clients (postgresql, mysql, sqlite) into prisma/generated/<dialect>.
// Runs as `postinstall` (so `npm ci` does it) and as `npm run generate`.
// No engine download: the schemas use engineType = "client" (Rust-free query compiler, WASM shipped
// in @prisma/client) and the CLI's engine look-ups are pointed at a dummy file, because the
// Prisma 6 CLI otherwise tries to fetch schema-engine / query-engine from binaries.prisma.sh.
import {spawnSync} from 'node:child_process';
import {mkdirSync, writeFileSync} from 'node:fs';
import {dirname, join} from 'node:path';
import {fileURLToPath} from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const generated = join(here, 'prisma', 'generated');
const dummyEngine = join(generated, 'dummy-engine');
mkdirSync(generated, {recursive: true});
writeFileSync(dummyEngine, '');

const env = {
  ...process.env,
  PRISMA_SCHEMA_ENGINE_BINARY: dummyEngine,
  PRISMA_QUERY_ENGINE_LIBRARY: dummyEngine,
  PRISMA_ENGINES_CHECKSUM_IGNORE_MISSING: '1',
  PRISMA_HIDE_UPDATE_MESSAGE: '1',
  CHECKPOINT_DISABLE: '1',
};
const cli = join(here, 'node_modules', 'prisma', 'build', 'index.js');

for (const dialect of ['postgresql', 'mysql', 'sqlite']) {
  const schema = join(here, 'prisma', `${dialect}.prisma`);
  const res = spawnSync(process.execPath, [cli, 'generate', '--schema', schema], {
    cwd: here,
    env,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (res.status !== 0) {
    console.error(`prisma generate failed for ${dialect} (exit ${res.status})`);
    process.exit(1);
  }
}
