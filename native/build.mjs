// Builds the native addons (mmap.c: memory maps; claims.c: which threads hold which directories;
// heap.c: the C allocator's free memory given back)
// with node-gyp when a C compiler and Node's headers are at hand, and does nothing when they are
// already built from these sources. Never fails the install or the build: without them the store
// reads full vectors with positioned reads (src/arena/ARENA.md), a directory a terminated
// worker thread held stays locked until the process exits (src/store/lock.ts), and the C
// allocator keeps the memory it holds free (src/idle-trim.ts).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const built = ['memstore_mmap.node', 'memstore_claims.node', 'memstore_heap.node'].map((f) => join(here, 'build', 'Release', f));
const sourceFiles = ['mmap.c', 'claims.c', 'heap.c', 'napi-helpers.h', 'binding.gyp'];
// A source missing (a package whose file list left one out) had thrown here and failed the install.
const absent = sourceFiles.filter((f) => !existsSync(join(here, f)));
if (absent.length > 0) {
  console.warn(`memstore: native/${absent.join(', native/')} missing, so the native addons are not built; full vectors will be read with positioned reads`);
  process.exit(0);
}
const sources = sourceFiles.map((f) => statSync(join(here, f)).mtimeMs);
// What the loader checks before it loads an addon (io/native-addon.ts): a damaged .node file killed
// the process inside the system's loader, where nothing can catch it.
const manifest = join(here, 'build', 'Release', 'addons.json');
const record = () => {
  const digests = {};
  for (const f of built) if (existsSync(f)) digests[f.split(/[\\/]/).pop()] = createHash('sha256').update(readFileSync(f)).digest('hex');
  writeFileSync(manifest, `${JSON.stringify(digests, null, 2)}\n`);
};
if (built.every((f) => existsSync(f) && statSync(f).mtimeMs >= Math.max(...sources))) {
  if (!existsSync(manifest)) record();
  process.exit(0);
}
// npm gives its scripts the node-gyp it ships (and its configuration, such as where Node's headers are).
const gyp = process.env.npm_config_node_gyp;
const [command, args] = gyp !== undefined ? [process.execPath, [gyp, 'rebuild']] : ['node-gyp', ['rebuild']];
const run = spawnSync(command, args, { cwd: here, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
if (run.status === 0) record();
else {
  // The cause, not node-gyp's closing boilerplate (its versions, cwd, `not ok`): a missing Python
  // had read as "gyp ERR! not ok".
  const lines = `${run.stderr ?? ''}\n${run.stdout ?? ''}`.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const boilerplate = /^gyp ERR! (System|command|cwd|node -v|node-gyp -v|not ok|\$npm_package)/;
  const causes = lines.filter((l) => !boilerplate.test(l) && /Could not|cannot|not found|No such|Error:|error:|failed/i.test(l));
  const telling = causes.length > 0 ? causes : lines.filter((l) => !boilerplate.test(l) && /ERR!/.test(l));
  const why = run.error?.message ?? [...new Set(telling.length > 0 ? telling : lines.slice(-3))].slice(0, 3).join(' / ');
  console.warn(`memstore: the native addons did not build (${why}); full vectors will be read with positioned reads`);
}
