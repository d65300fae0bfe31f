import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadAddon } from '../io/native-addon.js';
import { tempDir } from './helpers.js';

// The addons are checked against the digests the build recorded before they are loaded: a damaged
// one had killed the process inside the system's loader (SIGBUS, SIGSEGV) as memstore was imported.

const release = fileURLToPath(new URL('../../native/build/Release/', import.meta.url));
const built = existsSync(join(release, 'memstore_mmap.node')) && existsSync(join(release, 'addons.json'));

/** A copy of the build's Release directory, as a directory URL. */
function copyOfRelease(): { dir: string; url: URL } {
  const dir = join(tempDir(), 'Release');
  cpSync(release, dir, { recursive: true });
  return { dir, url: pathToFileURL(`${dir}/`) };
}

test('native addon: a copy with the recorded digest loads; cut short, zeroed in the middle, missing its record, or with no record file, it is not loaded and the process goes on (it had died with SIGBUS or SIGSEGV)', { skip: built ? false : 'the addons did not build here' }, () => {
  const intact = copyOfRelease();
  const addon = loadAddon('memstore_mmap', intact.url) as { map?: unknown } | undefined;
  assert.equal(typeof addon?.map, 'function');

  const cut = copyOfRelease();
  truncateSync(join(cut.dir, 'memstore_mmap.node'), 3000);
  assert.equal(loadAddon('memstore_mmap', cut.url), undefined);

  const zeroed = copyOfRelease();
  const file = join(zeroed.dir, 'memstore_claims.node');
  const bytes = readFileSync(file);
  bytes.fill(0, bytes.length >> 2, bytes.length >> 1);
  writeFileSync(file, bytes);
  assert.equal(loadAddon('memstore_claims', zeroed.url), undefined);

  const unrecorded = copyOfRelease();
  const digests = JSON.parse(readFileSync(join(unrecorded.dir, 'addons.json'), 'utf8')) as Record<string, string>;
  delete digests['memstore_mmap.node'];
  writeFileSync(join(unrecorded.dir, 'addons.json'), JSON.stringify(digests));
  assert.equal(loadAddon('memstore_mmap', unrecorded.url), undefined);

  const noRecord = copyOfRelease();
  writeFileSync(join(noRecord.dir, 'addons.json'), 'not json');
  assert.equal(loadAddon('memstore_claims', noRecord.url), undefined);
});

test('native addon: the heap addon loads with its recorded digest, and its trim answers whether memory went back (a boolean, every call)', { skip: built ? false : 'the addons did not build here' }, () => {
  const intact = copyOfRelease();
  const addon = loadAddon('memstore_heap', intact.url) as { trim?: () => unknown } | undefined;
  assert.equal(typeof addon?.trim, 'function');
  assert.equal(typeof addon!.trim!(), 'boolean');
  assert.equal(typeof addon!.trim!(), 'boolean');

  const cut = copyOfRelease();
  truncateSync(join(cut.dir, 'memstore_heap.node'), 3000);
  assert.equal(loadAddon('memstore_heap', cut.url), undefined);
});
