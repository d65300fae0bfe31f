import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * Loads one of the native addons that `native/build.mjs` built, only when its file still has the
 * SHA-256 the build recorded beside it (`addons.json`): a damaged `.node` file (cut short, or with
 * zeroed pages) killed the process inside the system's loader as `memstore` was imported (SIGBUS,
 * SIGSEGV; a hostile pass), where no exception can be caught. Undefined when it is missing, does not
 * match, or fails to load: the store then goes on without it (ARENA.md, lock.ts say how).
 */
export function loadAddon(name: 'memstore_mmap' | 'memstore_claims' | 'memstore_heap', dir = new URL('../../native/build/Release/', import.meta.url)): unknown {
  try {
    const recorded = JSON.parse(readFileSync(new URL('addons.json', dir), 'utf8')) as Record<string, unknown>;
    const file = fileURLToPath(new URL(`${name}.node`, dir));
    const digest = createHash('sha256').update(readFileSync(file)).digest('hex');
    if (recorded[`${name}.node`] !== digest) return undefined;
    return createRequire(import.meta.url)(file) as unknown;
  } catch {
    return undefined;
  }
}
