import { posix } from 'node:path';
import { nodeFileLayer, type FileHandle, type FileLayer, type OpenMode } from '../../io/file-layer.js';
import { rng } from '../../src/random.js';

/**
 * An in-memory FileLayer for tests that models durability exactly, and injects faults.
 *
 * Every file has its current bytes (what reads see) and its durable bytes (as of its last sync()).
 * A directory's entries (creates, renames, removes, mkdirs) become durable only at syncDir() of
 * that directory. A power cut reverts every file and directory to its durable state; a crash
 * (kill -9) keeps current bytes, as the OS page cache would.
 *
 * A FaultFileLayer object is one process's view of a simulated disk. A power cut or crash kills the
 * view (every later call, and every call on a handle it opened, rejects with code 'EIO') and
 * reboot() returns a new live view on the same disk: that is how a test reopens "after restart"
 * while the dead writer's late calls change nothing.
 *
 * The directory lock's synchronous operations are the exception: they go to the real disk (see
 * createSync).
 *
 * Deterministic: every random choice (tear positions, flipped bits, what a 'random' power cut
 * keeps) comes from a PRNG seeded by `seed`.
 */
export interface FaultFileLayerOptions {
  /** Seed of the PRNG behind every random choice. @default 1 */
  seed?: number;
}

/** Error codes the layer injects. */
export type FaultCode = 'ENOSPC' | 'EIO';

/**
 * What a power cut does with bytes and entry changes that were not made durable.
 * 'drop': all lost. 'random': per file, a seeded choice of: all lost; a prefix of the new bytes
 * persisted (a torn write); the new size persisted but zero-filled (metadata journaled before the
 * data). Per directory, a seeded prefix of the entry changes since its last syncDir survives, in
 * order, as a journal would replay them.
 */
export type UnsyncedFate = 'drop' | 'random';

export interface PowerCutOptions {
  /** @default 'drop' */
  unsynced?: UnsyncedFate;
}

export interface ScheduledCutOptions extends PowerCutOptions {
  /** 'power': power cut (unsynced data lost); 'crash': the process dies, the OS keeps its writes. @default 'power' */
  kind?: 'power' | 'crash';
}

export interface TearOptions {
  /** Bytes of the write that land before it fails. @default a seeded random count below the write's length */
  at?: number;
  /**
   * After the partial write: 'reject' (the write rejects with `code`, the process lives on),
   * 'crash' (the process dies, its partial write stays in the page cache), 'power' (power cut).
   * @default 'reject'
   */
  then?: 'reject' | 'crash' | 'power';
  /** @default 'EIO' */
  code?: FaultCode;
}

/** Calls made through this view. `ops` counts every mutating call: create-open, write, sync, truncate, syncDir, remove, rename, mkdir. */
export interface FaultCounts {
  ops: number;
  writes: number;
  bytesWritten: number;
  syncs: number;
  dirSyncs: number;
  truncates: number;
  creates: number;
  removes: number;
  renames: number;
}

interface FileNode {
  kind: 'file';
  /** Current bytes in [0, length); bytes past `length` are always zero, so growth reads zeros. */
  data: Uint8Array;
  length: number;
  durable: Uint8Array;
  durableLength: number;
  /** Lowest offset changed since the last sync (Infinity when in sync): sync copies only from there. */
  dirtyFrom: number;
}

interface DirNode {
  kind: 'dir';
  entries: Map<string, Node>;
  durable: Map<string, Node>;
  /** Entry changes since the last syncDir, one array per operation (a rename is one operation). */
  journal: Array<Array<[string, Node | undefined]>>;
}

type Node = FileNode | DirNode;

interface Disk {
  root: DirNode;
  random: () => number;
}

type CodedError = Error & { code: string };

function fsError(code: string, message: string): CodedError {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}

function newDir(): DirNode {
  return { kind: 'dir', entries: new Map(), durable: new Map(), journal: [] };
}

function newFile(): FileNode {
  return { kind: 'file', data: new Uint8Array(0), length: 0, durable: new Uint8Array(0), durableLength: 0, dirtyFrom: Infinity };
}

function grow(buf: Uint8Array, need: number): Uint8Array {
  if (need <= buf.length) return buf;
  const next = new Uint8Array(Math.max(need, buf.length * 2, 256));
  next.set(buf);
  return next;
}

function splitPath(path: string): string[] {
  return posix.resolve('/', path.replaceAll('\\', '/')).split('/').filter((p) => p !== '');
}

export class FaultFileLayer implements FileLayer {
  readonly counts: FaultCounts = { ops: 0, writes: 0, bytesWritten: 0, syncs: 0, dirSyncs: 0, truncates: 0, creates: 0, removes: 0, renames: 0 };
  private disk: Disk;
  private live = true;
  private failWrites = 0;
  private failWritesCode: FaultCode = 'EIO';
  private failSyncs = 0;
  private failSyncsCode: FaultCode = 'EIO';
  private tear: TearOptions | undefined;
  private cut: { atOp: number; options: ScheduledCutOptions } | undefined;

  constructor(options: FaultFileLayerOptions = {}) {
    this.disk = { root: newDir(), random: rng(options.seed ?? 1) };
  }

  /** False once a power cut or crash has killed this view. */
  get alive(): boolean {
    return this.live;
  }

  /** A new live view of the same disk (the restarted process); this view dies if it was not dead yet. */
  reboot(): FaultFileLayer {
    this.live = false;
    const view = new FaultFileLayer();
    view.disk = this.disk;
    return view;
  }

  /** Power loss now: the disk keeps only durable state (see UnsyncedFate); returns the rebooted view. */
  powerCut(options: PowerCutOptions = {}): FaultFileLayer {
    this.live = false;
    revertDir(this.disk.root, options.unsynced ?? 'drop', this.disk.random, new Set());
    return this.reboot();
  }

  /** kill -9 now: the disk keeps every completed write, durable or not; returns the rebooted view. */
  crash(): FaultFileLayer {
    return this.reboot();
  }

  /** The next `count` writes reject with `code` without writing anything. */
  failNextWrites(count: number, code: FaultCode = 'EIO'): void {
    this.failWrites = count;
    this.failWritesCode = code;
  }

  /** The next `count` syncs (file or directory) reject with `code`; nothing becomes durable. */
  failNextSyncs(count: number, code: FaultCode = 'EIO'): void {
    this.failSyncs = count;
    this.failSyncsCode = code;
  }

  /** The next write lands only partly, then fails as `options.then` says. */
  tearNextWrite(options: TearOptions = {}): void {
    this.tear = options;
  }

  /**
   * The power fails (or the process dies) as the mutating operation `afterOps` from now begins
   * (0: the next one). A write it interrupts lands torn first (a seeded prefix), which matters for
   * 'crash' and for 'random' unsynced fates. Then the operation and every later call reject;
   * call reboot() for the next process's view.
   */
  scheduleCut(afterOps: number, options: ScheduledCutOptions = {}): void {
    this.cut = { atOp: this.counts.ops + afterOps + 1, options };
  }

  /** Media damage: flips one bit of the file in both its current and durable bytes. @param bit 0..7, default seeded random */
  flipBit(path: string, offset: number, bit?: number): void {
    const node = this.lookup(splitPath(path), false);
    if (node?.kind !== 'file') throw fsError('ENOENT', `no such file ${path}`);
    if (offset < 0 || offset >= node.length) throw new RangeError(`offset ${offset} outside ${path} (${node.length} bytes)`);
    const mask = 1 << (bit ?? Math.floor(this.disk.random() * 8));
    node.data[offset]! ^= mask;
    if (offset < node.durableLength) node.durable[offset]! ^= mask;
  }

  /** A copy of what reads see now (works on a dead view, counts nothing). */
  currentBytes(path: string): Uint8Array {
    const node = this.lookup(splitPath(path), false);
    if (node?.kind !== 'file') throw fsError('ENOENT', `no such file ${path}`);
    return node.data.slice(0, node.length);
  }

  /** A copy of what a 'drop' power cut now would leave, or undefined if the file would not exist. */
  durableBytes(path: string): Uint8Array | undefined {
    const node = this.lookup(splitPath(path), true);
    return node?.kind === 'file' ? node.durable.slice(0, node.durableLength) : undefined;
  }

  /** A seeded number in [0, 1) from the disk's PRNG, for tests that want one reproducible stream. */
  random(): number {
    return this.disk.random();
  }

  async open(path: string, mode: OpenMode): Promise<FileHandle> {
    this.checkAlive();
    const parts = splitPath(path);
    let node = this.lookup(parts, false);
    if (node === undefined) {
      if (mode !== 'create') throw fsError('ENOENT', `no such file ${path}`);
      this.beginOp();
      this.counts.creates++;
      const parent = this.parentOf(parts, path);
      node = newFile();
      setEntry(parent, parts[parts.length - 1]!, node);
    }
    if (node.kind !== 'file') throw fsError('EISDIR', `${path} is a directory`);
    return new FaultHandle(this, node, mode !== 'read');
  }

  async readFile(path: string): Promise<Uint8Array> {
    this.checkAlive();
    const node = this.lookup(splitPath(path), false);
    if (node === undefined) throw fsError('ENOENT', `no such file ${path}`);
    if (node.kind !== 'file') throw fsError('EISDIR', `${path} is a directory`);
    return node.data.slice(0, node.length);
  }

  async list(dir: string): Promise<string[]> {
    this.checkAlive();
    const node = this.lookup(splitPath(dir), false);
    if (node === undefined) throw fsError('ENOENT', `no such directory ${dir}`);
    if (node.kind !== 'dir') throw fsError('ENOTDIR', `${dir} is not a directory`);
    return [...node.entries.keys()];
  }

  async remove(path: string): Promise<void> {
    this.checkAlive();
    const parts = splitPath(path);
    const node = this.lookup(parts, false);
    if (node === undefined) throw fsError('ENOENT', `no such file ${path}`);
    if (node.kind !== 'file') throw fsError('EISDIR', `${path} is a directory`);
    this.beginOp();
    this.counts.removes++;
    setEntry(this.parentOf(parts, path), parts[parts.length - 1]!, undefined);
  }

  async rename(from: string, to: string): Promise<void> {
    this.checkAlive();
    const fromParts = splitPath(from);
    const toParts = splitPath(to);
    const node = this.lookup(fromParts, false);
    if (node === undefined) throw fsError('ENOENT', `no such file ${from}`);
    const fromDir = this.parentOf(fromParts, from);
    const toDir = this.parentOf(toParts, to);
    if (this.lookup(toParts, false)?.kind === 'dir') throw fsError('EISDIR', `${to} is a directory`);
    this.beginOp();
    this.counts.renames++;
    const fromName = fromParts[fromParts.length - 1]!;
    const toName = toParts[toParts.length - 1]!;
    if (fromDir === toDir) {
      // One journal operation: a rename inside a directory is atomic, also across a power cut.
      fromDir.entries.delete(fromName);
      fromDir.entries.set(toName, node);
      fromDir.journal.push([[fromName, undefined], [toName, node]]);
    } else {
      setEntry(fromDir, fromName, undefined);
      setEntry(toDir, toName, node);
    }
  }

  async mkdir(dir: string): Promise<void> {
    this.checkAlive();
    let current = this.disk.root;
    for (const part of splitPath(dir)) {
      const next = current.entries.get(part);
      if (next?.kind === 'file') throw fsError('ENOTDIR', `${part} in ${dir} is a file`);
      if (next === undefined) {
        this.beginOp();
        const made = newDir();
        setEntry(current, part, made);
        current = made;
      } else {
        current = next;
      }
    }
  }

  async syncDir(dir: string): Promise<void> {
    this.checkAlive();
    const node = this.lookup(splitPath(dir), false);
    if (node === undefined) throw fsError('ENOENT', `no such directory ${dir}`);
    if (node.kind !== 'dir') throw fsError('ENOTDIR', `${dir} is not a directory`);
    this.beginOp();
    this.counts.dirSyncs++;
    this.maybeFailSync();
    node.durable = new Map(node.entries);
    node.journal = [];
  }

  async exists(path: string): Promise<boolean> {
    this.checkAlive();
    return this.lookup(splitPath(path), false) !== undefined;
  }

  // The directory lock stays on the real disk, beside the LMDB state. It is there to keep other
  // processes out of the real directory, which no simulated disk can do; and it holds the pid of
  // this process, which lives on through a simulated crash or power cut, so a lock left behind on
  // the simulated disk could never be taken over. Hence these are neither counted nor faulted, and
  // a dead view still releases the lock of the store it served, as abandon() expects.

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

  /** @internal for FaultHandle */
  checkAlive(): void {
    if (!this.live) throw fsError('EIO', 'FaultFileLayer: this process is dead (power cut or crash)');
  }

  /** @internal Counts a mutating operation and fires a scheduled cut; `torn` lands part of an interrupted write first. */
  beginOp(torn?: () => void): void {
    this.counts.ops++;
    const cut = this.cut;
    if (cut === undefined || this.counts.ops < cut.atOp) return;
    this.cut = undefined;
    torn?.();
    if ((cut.options.kind ?? 'power') === 'power') this.powerCut(cut.options);
    else this.crash();
    this.checkAlive();
  }

  /** @internal */
  writeTo(node: FileNode, data: Uint8Array, position: number): void {
    this.beginOp(() => writeBytes(node, data.subarray(0, Math.floor(this.disk.random() * data.length)), position));
    this.counts.writes++;
    const tear = this.tear;
    if (tear !== undefined) {
      this.tear = undefined;
      const at = Math.min(tear.at ?? Math.floor(this.disk.random() * data.length), data.length);
      writeBytes(node, data.subarray(0, at), position);
      this.counts.bytesWritten += at;
      const then = tear.then ?? 'reject';
      if (then === 'crash') this.crash();
      else if (then === 'power') this.powerCut();
      this.checkAlive();
      throw fsError(tear.code ?? 'EIO', `torn write after ${at} of ${data.length} bytes`);
    }
    if (this.failWrites > 0) {
      this.failWrites--;
      throw fsError(this.failWritesCode, 'injected write failure');
    }
    writeBytes(node, data, position);
    this.counts.bytesWritten += data.length;
  }

  /** @internal */
  syncFile(node: FileNode): void {
    this.beginOp();
    this.counts.syncs++;
    this.maybeFailSync();
    if (node.dirtyFrom === Infinity) return;
    const from = Math.min(node.dirtyFrom, node.length);
    node.durable = grow(node.durable, node.length);
    node.durable.set(node.data.subarray(from, node.length), from);
    if (node.durableLength > node.length) node.durable.fill(0, node.length, node.durableLength);
    node.durableLength = node.length;
    node.dirtyFrom = Infinity;
  }

  /** @internal */
  truncateFile(node: FileNode, length: number): void {
    this.beginOp();
    this.counts.truncates++;
    if (length < node.length) node.data.fill(0, length, node.length);
    else node.data = grow(node.data, length);
    node.dirtyFrom = Math.min(node.dirtyFrom, length, node.length);
    node.length = length;
  }

  private maybeFailSync(): void {
    if (this.failSyncs > 0) {
      this.failSyncs--;
      throw fsError(this.failSyncsCode, 'injected sync failure');
    }
  }

  private lookup(parts: string[], durable: boolean): Node | undefined {
    let node: Node = this.disk.root;
    for (const part of parts) {
      if (node.kind !== 'dir') return undefined;
      const next: Node | undefined = (durable ? node.durable : node.entries).get(part);
      if (next === undefined) return undefined;
      node = next;
    }
    return node;
  }

  private parentOf(parts: string[], path: string): DirNode {
    if (parts.length === 0) throw fsError('EISDIR', `${path} is the root`);
    const parent = this.lookup(parts.slice(0, -1), false);
    if (parent === undefined) throw fsError('ENOENT', `no directory for ${path}`);
    if (parent.kind !== 'dir') throw fsError('ENOTDIR', `parent of ${path} is a file`);
    return parent;
  }
}

class FaultHandle implements FileHandle {
  private closed = false;

  constructor(
    private readonly view: FaultFileLayer,
    private readonly node: FileNode,
    private readonly writable: boolean,
  ) {}

  async read(buffer: Uint8Array, position: number): Promise<number> {
    this.check(false);
    const end = Math.min(this.node.length, position + buffer.length);
    if (end <= position) return 0;
    buffer.set(this.node.data.subarray(position, end));
    return end - position;
  }

  async write(data: Uint8Array, position: number): Promise<void> {
    this.check(true);
    this.view.writeTo(this.node, data, position);
  }

  async sync(): Promise<void> {
    this.check(false);
    this.view.syncFile(this.node);
  }

  async truncate(length: number): Promise<void> {
    this.check(true);
    this.view.truncateFile(this.node, length);
  }

  async size(): Promise<number> {
    this.check(false);
    return this.node.length;
  }

  async close(): Promise<void> {
    this.check(false);
    this.closed = true;
  }

  private check(write: boolean): void {
    this.view.checkAlive();
    if (this.closed) throw fsError('EBADF', 'handle is closed');
    if (write && !this.writable) throw fsError('EBADF', 'handle is read-only');
  }
}

function writeBytes(node: FileNode, data: Uint8Array, position: number): void {
  if (data.length === 0) return;
  const end = position + data.length;
  node.data = grow(node.data, end);
  node.data.set(data, position);
  node.dirtyFrom = Math.min(node.dirtyFrom, position, node.length);
  node.length = Math.max(node.length, end);
}

function setEntry(dir: DirNode, name: string, node: Node | undefined): void {
  if (node === undefined) dir.entries.delete(name);
  else dir.entries.set(name, node);
  dir.journal.push([[name, node]]);
}

/** Power cut: rebuilds what survives under `dir` from durable state (plus, for 'random', some of the rest). */
function revertDir(dir: DirNode, fate: UnsyncedFate, random: () => number, seen: Set<Node>): void {
  const entries = new Map(dir.durable);
  if (fate === 'random') {
    const kept = Math.floor(random() * (dir.journal.length + 1));
    for (const op of dir.journal.slice(0, kept)) {
      for (const [name, node] of op) {
        if (node === undefined) entries.delete(name);
        else entries.set(name, node);
      }
    }
  }
  dir.entries = entries;
  dir.durable = new Map(entries);
  dir.journal = [];
  for (const node of entries.values()) {
    if (seen.has(node)) continue;
    seen.add(node);
    if (node.kind === 'dir') revertDir(node, fate, random, seen);
    else revertFile(node, fate, random);
  }
}

function revertFile(node: FileNode, fate: UnsyncedFate, random: () => number): void {
  const current = node.data.subarray(0, node.length);
  let survived = node.durable.slice(0, node.durableLength);
  if (fate === 'random' && node.dirtyFrom !== Infinity) {
    const choice = random();
    // Everything before the lowest offset changed since the sync is equal in both versions.
    const same = Math.min(node.dirtyFrom, node.length, node.durableLength);
    if (choice < 1 / 3) {
      const keep = same + Math.floor(random() * (node.length - same + 1));
      const torn = new Uint8Array(Math.max(keep, survived.length));
      torn.set(survived);
      torn.set(current.subarray(0, keep));
      survived = torn;
    } else if (choice < 2 / 3 && node.length > survived.length) {
      const zeroed = new Uint8Array(survived.length + Math.floor(random() * (node.length - survived.length + 1)));
      zeroed.set(survived);
      survived = zeroed;
    }
  }
  node.data = survived.slice();
  node.length = survived.length;
  node.durable = survived;
  node.durableLength = survived.length;
  node.dirtyFrom = Infinity;
}
