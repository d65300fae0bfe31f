import { sep } from 'node:path';
import type { SearchHit } from '../../src/index.js';
import { nodeFileLayer, type FileHandle, type FileLayer, type OpenMode } from '../../io/file-layer.js';

/**
 * The real file system, except that a write to the write-ahead log, once written, reports back only
 * when the test releases it: the write's completion (and the store applying it) then runs in the
 * promise chain the test is in, a chosen number of microtasks from a search it starts there. That is
 * what a file layer whose operations complete through promises (an in-memory one, a caching one)
 * does on its own. Or the test lets it land while a search waits for its reads.
 */
export interface HeldLog extends FileLayer {
  /** Holds the next log write; `reached` resolves once it is written and waiting, `release` lets it report. */
  hold(): { reached: Promise<void>; release: () => void };
}

/**
 * `syncReads: false`: handles without readSync, so every read of the arenas waits for the thread
 * pool; `beforeRead(path)`, awaited before each read goes through (a test lands writes there).
 */
export function heldLog(options: { readonly syncReads?: boolean; readonly beforeRead?: (path: string) => Promise<void> } = {}): HeldLog {
  let held: { reached: () => void; gate: Promise<void> } | undefined;
  return {
    // Everything but open() is the real file layer's.
    ...nodeFileLayer,
    hold() {
      let reached!: () => void;
      const waiting = new Promise<void>((resolve) => (reached = resolve));
      let open!: () => void;
      held = { reached, gate: new Promise<void>((resolve) => (open = resolve)) };
      return { reached: waiting, release: open };
    },
    async open(path: string, mode: OpenMode): Promise<FileHandle> {
      const inner = await nodeFileLayer.open(path, mode);
      const log = path.includes(`${sep}wal${sep}`);
      const beforeRead = options.beforeRead;
      const handle: FileHandle = {
        // Without a hook a read is the real one, as it was: no microtask more for racing() to count.
        read:
          beforeRead === undefined
            ? (buffer, position) => inner.read(buffer, position)
            : async (buffer, position) => {
                await beforeRead(path);
                return inner.read(buffer, position);
              },
        write: async (data, position) => {
          await inner.write(data, position);
          const waiting = log ? held : undefined;
          if (waiting === undefined) return;
          held = undefined;
          waiting.reached();
          await waiting.gate;
        },
        sync: () => inner.sync(),
        truncate: (length) => inner.truncate(length),
        size: () => inner.size(),
        close: () => inner.close(),
      };
      if (inner.readSync !== undefined && options.syncReads !== false) handle.readSync = (buffer, position) => inner.readSync!(buffer, position);
      return handle;
    },
  };
}

/**
 * Runs `write` so that it lands at a chosen point of a search started while it is logged but not
 * yet applied (`files`, the store's file layer): at once, a few microtasks in, after the thread pool's next turn, or after the search
 * is over. Resolves to the search's answer.
 */
export async function racing(files: HeldLog, write: () => Promise<unknown>, search: () => Promise<SearchHit[]>, when: number): Promise<SearchHit[]> {
  const { reached, release } = files.hold();
  const written = write();
  await reached;
  const searched = search();
  if (when === 0) release();
  else if (when === 1) void Promise.resolve().then(() => Promise.resolve()).then(release);
  else if (when === 2) setImmediate(release);
  else void searched.then(release, release);
  const [answer] = await Promise.all([searched, written]);
  return answer;
}
