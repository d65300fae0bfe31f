import { sep } from 'node:path';
import { nodeFileLayer, type FileHandle, type FileLayer, type OpenMode } from '../../io/file-layer.js';

/**
 * The real file system, except that a write to the write-ahead log, once written, reports back only
 * when the test releases it: the write's completion (and the store applying it) then runs in the
 * promise chain the test is in, a chosen number of microtasks from a search it starts there. That is
 * what a file layer whose operations complete through promises (an in-memory one, a caching one)
 * does on its own. Or the test lets it land while a search waits for its reads.
 */
export class HeldLog implements FileLayer {
  private held: { reached: () => void; gate: Promise<void> } | undefined;

  /** `syncReads: false`: handles without readSync, so every read of the arenas waits for the thread pool. */
  constructor(private readonly options: { readonly syncReads?: boolean } = {}) {}

  /** Holds the next log write; `reached` resolves once it is written and waiting, `release` lets it report. */
  hold(): { reached: Promise<void>; release: () => void } {
    let reached!: () => void;
    const waiting = new Promise<void>((resolve) => (reached = resolve));
    let open!: () => void;
    this.held = { reached, gate: new Promise<void>((resolve) => (open = resolve)) };
    return { reached: waiting, release: open };
  }

  async open(path: string, mode: OpenMode): Promise<FileHandle> {
    const inner = await nodeFileLayer.open(path, mode);
    const log = path.includes(`${sep}wal${sep}`);
    const handle: FileHandle = {
      read: (buffer, position) => inner.read(buffer, position),
      write: async (data, position) => {
        await inner.write(data, position);
        const held = log ? this.held : undefined;
        if (held === undefined) return;
        this.held = undefined;
        held.reached();
        await held.gate;
      },
      sync: () => inner.sync(),
      truncate: (length) => inner.truncate(length),
      size: () => inner.size(),
      close: () => inner.close(),
    };
    if (inner.readSync !== undefined && this.options.syncReads !== false) handle.readSync = (buffer, position) => inner.readSync!(buffer, position);
    return handle;
  }

  readFile(path: string): Promise<Uint8Array> {
    return nodeFileLayer.readFile(path);
  }
  list(dir: string): Promise<string[]> {
    return nodeFileLayer.list(dir);
  }
  remove(path: string): Promise<void> {
    return nodeFileLayer.remove(path);
  }
  rename(from: string, to: string): Promise<void> {
    return nodeFileLayer.rename(from, to);
  }
  mkdir(dir: string): Promise<void> {
    return nodeFileLayer.mkdir(dir);
  }
  syncDir(dir: string): Promise<void> {
    return nodeFileLayer.syncDir(dir);
  }
  exists(path: string): Promise<boolean> {
    return nodeFileLayer.exists(path);
  }
  createSync(path: string, data: Uint8Array): void {
    nodeFileLayer.createSync(path, data);
  }
  linkSync(existing: string, path: string): void {
    nodeFileLayer.linkSync(existing, path);
  }
  readFileSync(path: string): Uint8Array {
    return nodeFileLayer.readFileSync(path);
  }
  removeSync(path: string): void {
    nodeFileLayer.removeSync(path);
  }
  mtimeSync(path: string): number {
    return nodeFileLayer.mtimeSync(path);
  }
}
