import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';

/**
 * Whether an LMDB data file (`state.mdb`) holds every page its last commit reaches, read with
 * positioned reads before LMDB maps it: LMDB reads its pages through a memory map, and a page past
 * the end of a truncated file (a copy cut short, a full disk) kills the process with SIGBUS, which no
 * JavaScript can catch. The layout read here is LMDB's own (lmdb-js's LMDB, `mdb.c`, little-endian,
 * 64-bit page numbers), as far as truncation needs it:
 *
 *   page     := header(24) body
 *   header   := pgno:u64 txnid:u64 pad:u16 flags:u16 (lower:u16 upper:u16 | overflowPages:u32)
 *   meta     := page 0 or 1 (flags 0x08): magic:u32 = 0xBEEFC0DE, version:u32, address:u64,
 *               mapsize:u64, free:db, main:db, lastPage:u64, txnid:u64
 *   db       := pageSize:u32 (in the free db of a meta) flags:u16 depth:u16 branch:u64 leaf:u64
 *               overflow:u64 entries:u64 root:u64 (all ones: an empty tree)
 *   branch   := (flags 0x01) lower/2 node offsets:u16 from byte 24; a node's child page is
 *               lo:u16 | hi:u16 << 16 | flags:u16 << 32
 *   leaf     := (flags 0x02) the same offsets; node := lo:u16 hi:u16 flags:u16 keySize:u16 key data;
 *               flags 0x01: data is the first page of an overflow run (its header counts the run),
 *               0x02: data is a sub-database's db (its root is a tree to walk); 0x20 pages hold no nodes
 *
 * Both metas must be there and hold LMDB's magic and data version (LMDB reads both; anything else
 * is 'invalid'). The newer (higher txnid) names the last page in use and the roots of the two
 * trees: a root on a meta page or past the last page, or a last page past what a process can map,
 * is 'invalid' too (LMDB asserts, or faults, on them). A file
 * that reaches it is whole as far as this can tell (damage inside the pages is another matter).
 * One that is shorter is not necessarily damaged: pages freed by the commit that made them are
 * counted but never written. So then every page reachable from the newest meta's trees (the free
 * pages' tree, the main tree and each sub-database in it) is visited, and the file is truncated
 * when one of them lies past its end.
 *
 * A file no longer than its two meta pages whose pages each hold zeros or (a prefix of) LMDB's first
 * write is 'unfinished': LMDB makes a new environment by writing both metas at once (page 0 and
 * page 1, txnid 0, both trees empty, last page 1), and a process killed, or a machine that lost
 * power, during that write leaves a prefix of it, or a length whose bytes never reached the disk.
 * No commit can be in such a file: a commit's pages lie past the two metas, and its meta has a
 * txnid of 1 or more. Each field of the first write is checked as far as the file holds it whole
 * (not the map size and address, which lmdb-js chooses); one that differs makes the file
 * 'invalid', as before. Both metas whole is a finished environment, judged as any other.
 */
export interface LmdbFileCheck {
  /**
   * 'whole': every page reached is in the file. 'truncated': it ends before a page its last commit
   * reaches. 'invalid': page 0 or 1 is not a meta page of this LMDB's data version (another file, or
   * damage), which lmdb-js, opening it, answers with a segmentation fault, not an error.
   * 'unfinished': the file has no byte, or is a cut-short first write (above), and holds no commit.
   */
  readonly kind: 'whole' | 'truncated' | 'invalid' | 'unfinished';
  /** For 'truncated': the file's bytes, the bytes its pages need, and the first page past its end met. */
  readonly size?: number;
  readonly needed?: number;
  readonly page?: number;
}

const MAGIC = 0xbeefc0de;
/** MDB_DATA_VERSION of the LMDB lmdb-js builds (mdb.c); a file of another version is 'invalid'. */
const DATA_VERSION = 2;
const HEADER = 24;
const META_AT = HEADER;
const P_BRANCH = 0x01;
const P_LEAF = 0x02;
const P_OVERFLOW = 0x04;
const P_META = 0x08;
const P_LEAF2 = 0x20;
const F_BIGDATA = 0x01;
const F_SUBDATA = 0x02;
const NODE_HEADER = 8;
/** A db's root page number within it, its bytes (MDB_db), and the two dbs' places within a meta. */
const DB_ROOT = 40;
const DB_BYTES = 48;
const FREE_DB = META_AT + 24;
const MAIN_DB = FREE_DB + 48;
const LAST_PAGE = MAIN_DB + 48;
const META_TXNID = LAST_PAGE + 8;
const META_BYTES = META_TXNID + 8;
const NO_PAGE = 0xffff_ffff_ffff_ffffn;

interface Meta {
  readonly txnid: bigint;
  readonly pageSize: number;
  readonly lastPage: number;
  readonly freeRoot: bigint;
  readonly mainRoot: bigint;
}

function metaAt(buf: Buffer, at: number): Meta | undefined {
  if (buf.length < at + META_BYTES) return undefined;
  if ((buf.readUInt16LE(at + 18) & P_META) === 0 || buf.readUInt32LE(at + META_AT) !== MAGIC || buf.readUInt32LE(at + META_AT + 4) !== DATA_VERSION) return undefined;
  const pageSize = buf.readUInt32LE(at + FREE_DB);
  // LMDB's page sizes are powers of two from 512 to 64 KiB; anything else is not a meta this reads.
  if (!(pageSize >= 512 && pageSize <= 65536 && (pageSize & (pageSize - 1)) === 0)) return undefined;
  return {
    txnid: buf.readBigUInt64LE(at + META_TXNID),
    pageSize,
    lastPage: Number(buf.readBigUInt64LE(at + LAST_PAGE)),
    freeRoot: buf.readBigUInt64LE(at + FREE_DB + DB_ROOT),
    mainRoot: buf.readBigUInt64LE(at + MAIN_DB + DB_ROOT),
  };
}

/** The meta at byte `offset` of the file open as `fd` (metaAt()), read with a positioned read. */
function readMeta(fd: number, offset: number): Meta | undefined {
  const buf = Buffer.alloc(META_BYTES);
  return readSync(fd, buf, 0, META_BYTES, offset) === META_BYTES ? metaAt(buf, 0) : undefined;
}

/** The meta LMDB reads of its two: the one of the higher txnid. */
function newest(zero: Meta, one: Meta): Meta {
  return one.txnid > zero.txnid ? one : zero;
}

/** The child page a branch node at byte `at` of `page` points to: lo:u16 | hi:u16 << 16 | flags:u16 << 32. */
function childOf(page: Buffer, at: number): number {
  return page.readUInt16LE(at) + page.readUInt16LE(at + 2) * 0x1_0000 + page.readUInt16LE(at + 4) * 0x1_0000_0000;
}

/** The u64 fields of a meta that LMDB's first write sets, by offset within the meta's page, each with its value (the page's own number is added per page). */
const FIRST_WRITE_U64: readonly (readonly [number, bigint])[] = [
  [FREE_DB + 8, 0n], [FREE_DB + 16, 0n], [FREE_DB + 24, 0n], [FREE_DB + 32, 0n], [FREE_DB + DB_ROOT, NO_PAGE],
  [MAIN_DB + 8, 0n], [MAIN_DB + 16, 0n], [MAIN_DB + 24, 0n], [MAIN_DB + 32, 0n], [MAIN_DB + DB_ROOT, NO_PAGE],
  [LAST_PAGE, 1n], [META_TXNID, 0n],
];

/** Whether `bytes`, the start of page `pageNo`, agree with LMDB's first write of that meta page in every field they hold whole. */
function isFirstWrite(bytes: Buffer, pageNo: number): boolean {
  const has = (at: number, width: number): boolean => bytes.length >= at + width;
  if (has(0, 8) && bytes.readBigUInt64LE(0) !== BigInt(pageNo)) return false;
  if (has(18, 2) && (bytes.readUInt16LE(18) & P_META) === 0) return false;
  if (has(META_AT, 4) && bytes.readUInt32LE(META_AT) !== MAGIC) return false;
  if (has(META_AT + 4, 4) && bytes.readUInt32LE(META_AT + 4) !== DATA_VERSION) return false;
  for (const [at, value] of FIRST_WRITE_U64) if (has(at, 8) && bytes.readBigUInt64LE(at) !== value) return false;
  return true;
}

/** The store's page size (state.ts): a first write whose page 0 never reached the disk is measured in it. */
const STORE_PAGE = 16384;

/** Whether the file of `size` bytes is a cut-short first write of an environment, or zeros (LmdbFileCheck, 'unfinished'). */
function isUnfinished(fd: number, size: number): boolean {
  if (size > 2 * 65536) return false;
  const bytes = Buffer.alloc(size);
  readSync(fd, bytes, 0, size, 0);
  const zeros = (part: Buffer): boolean => part.every((b) => b === 0);
  const head = bytes.subarray(0, META_BYTES);
  if (!zeros(head) && !isFirstWrite(head, 0)) return false;
  let pageSize = STORE_PAGE;
  if (!zeros(head) && size >= FREE_DB + 4) {
    pageSize = bytes.readUInt32LE(FREE_DB);
    if (!(pageSize >= 512 && pageSize <= 65536 && (pageSize & (pageSize - 1)) === 0)) return false;
  }
  if (size > 2 * pageSize) return false;
  const second = bytes.subarray(pageSize, pageSize + META_BYTES);
  if (!zeros(second) && !isFirstWrite(second, 1)) return false;
  // Both metas there whole is a finished environment (no commit yet), which LMDB opens as it is.
  return !(size === 2 * pageSize && metaAt(head, 0) !== undefined && metaAt(second, 0) !== undefined);
}

/** Checks the LMDB data file at `path` (LmdbFileCheck); throws what opening or reading it throws, and for anything but a regular file. */
export function checkLmdbFile(path: string): LmdbFileCheck {
  // Before it is opened: opening a FIFO to read waits for a writer, for good.
  if (!statSync(path).isFile()) throw new Error(`${path} is not a regular file`);
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (isUnfinished(fd, size)) return { kind: 'unfinished' };
    const zero = readMeta(fd, 0);
    if (zero === undefined) return { kind: 'invalid' };
    if (size < zero.pageSize + META_BYTES) return { kind: 'truncated', size, needed: 2 * zero.pageSize, page: 1 };
    const one = readMeta(fd, zero.pageSize);
    if (one === undefined) return { kind: 'invalid' };
    const meta = newest(zero, one);
    // Pages 0 and 1 are the metas, so a tree's root is page 2 or later and the last page in use at
    // least that; past 2^46 bytes no map of the file fits in a process (LMDB aborts, or faults, on each).
    for (const root of [meta.freeRoot, meta.mainRoot]) if (root !== NO_PAGE && (root < 2n || root > BigInt(meta.lastPage))) return { kind: 'invalid' };
    if (meta.lastPage < 1 || (meta.lastPage + 1) * meta.pageSize > 2 ** 46) return { kind: 'invalid' };
    const needed = (meta.lastPage + 1) * meta.pageSize;
    const pages = Math.floor(size / meta.pageSize);
    // A root past the end is the cheapest truncation (or damage) to see, whatever the last page says.
    for (const root of [meta.freeRoot, meta.mainRoot]) if (root !== NO_PAGE && root >= BigInt(pages)) return { kind: 'truncated', size, needed, page: Number(root) };
    if (size >= needed) return { kind: 'whole' };
    const past = new PageWalk(fd, size, meta.pageSize).firstPastEnd([meta.freeRoot, meta.mainRoot]);
    return past === undefined ? { kind: 'whole' } : { kind: 'truncated', size, needed, page: past };
  } finally {
    closeSync(fd);
  }
}

/** A page of an LMDB file whose structure LMDB cannot read safely (checkLmdbStructure()). */
export interface MalformedPage {
  /** The page's number; its bytes start at `page * pageSize`. */
  readonly page: number;
  readonly pageSize: number;
  readonly what: string;
}

/**
 * The first page reachable from the newest meta's trees whose structure LMDB would read past (a
 * node's key or value running past its page, a child or overflow page outside the file's pages in
 * use, a page whose header names another page or no kind of tree page), or undefined. LMDB trusts
 * its pages: a flipped bit in a leaf node's size had the store open clean and end the process with
 * SIGSEGV at the first read of that record, in `verify` and in `repair` too (a hostile pass). Every
 * page in use is read once, at every open and in the tools (verify, repair). For a file
 * checkLmdbFile() found 'whole'.
 */
export function checkLmdbStructure(path: string): MalformedPage | undefined {
  return withNewestMeta(
    path,
    (fd, meta) => new PageWalk(fd, fstatSync(fd).size, meta.pageSize).firstMalformed(meta),
    (page, pageSize) => ({ page, pageSize, what: 'not an LMDB meta page' }),
  );
}

/**
 * `read(fd, meta)` of the file at `path` open for reading, `meta` the newer of its two metas;
 * `none(page, pageSize)` when meta page `page` does not read as one.
 */
function withNewestMeta<T>(path: string, read: (fd: number, meta: Meta) => T, none: (page: number, pageSize: number) => T): T {
  const fd = openSync(path, 'r');
  try {
    const zero = readMeta(fd, 0);
    if (zero === undefined) return none(0, STORE_PAGE);
    const one = readMeta(fd, zero.pageSize);
    if (one === undefined) return none(1, zero.pageSize);
    return read(fd, newest(zero, one));
  } finally {
    closeSync(fd);
  }
}

/** Visits the pages of B-trees with positioned reads, one page at a time, each page once. */
class PageWalk {
  private readonly page: Buffer;
  private readonly pages: number;
  private readonly seen = new Set<number>();

  constructor(
    private readonly fd: number,
    size: number,
    private readonly pageSize: number,
  ) {
    this.page = Buffer.alloc(pageSize);
    this.pages = Math.floor(size / pageSize);
  }

  /** The first page reachable from `roots` that lies past the file's end, or undefined when none does. */
  firstPastEnd(roots: readonly bigint[]): number | undefined {
    return this.walk(roots, (p, push) => {
      if (p >= this.pages) return p;
      readSync(this.fd, this.page, 0, this.pageSize, p * this.pageSize);
      const flags = this.page.readUInt16LE(18);
      if ((flags & P_LEAF2) !== 0) return undefined;
      const count = this.page.readUInt16LE(20) >> 1;
      for (let i = 0; i < count; i++) {
        const at = HEADER + this.page.readUInt16LE(HEADER + 2 * i);
        // A node offset past the page is damage inside it: LMDB's own business, not truncation.
        if (at + NODE_HEADER > this.pageSize) break;
        const nodeFlags = this.page.readUInt16LE(at + 4);
        if ((flags & P_BRANCH) !== 0) {
          push(childOf(this.page, at));
        } else if ((flags & P_LEAF) !== 0) {
          const data = at + NODE_HEADER + this.page.readUInt16LE(at + 6);
          if ((nodeFlags & F_BIGDATA) !== 0 && data + 8 <= this.pageSize) {
            const first = Number(this.page.readBigUInt64LE(data));
            if (first >= this.pages) return first;
            const run = this.runAt(first);
            if (run.overflow && first + run.pages - 1 >= this.pages) return this.pages;
          } else if ((nodeFlags & F_SUBDATA) !== 0 && data + DB_ROOT + 8 <= this.pageSize) {
            const root = this.page.readBigUInt64LE(data + DB_ROOT);
            if (root !== NO_PAGE) push(Number(root));
          }
        }
      }
      return undefined;
    });
  }

  /**
   * checkLmdbStructure() over the trees `meta` names (the free pages', the main tree and its
   * sub-databases), pages up to its last page in use. Beyond each node's bounds, what LMDB trusts when
   * it writes (a hostile pass found each of these passing a walk of bounds alone, and then a
   * checkpoint or repair ending the process, or repair dropping intact records): a tree page's
   * flags exactly a branch's or a leaf's, its free space (lower to upper) inside it and every node
   * past it, no page newer than the commit, no page reached twice (a child naming its parent, a
   * sibling, or a page of an overflow run), a run's pages not taken by anything else, no page both
   * in a tree and in the free list, and the sub-databases' records with no flags (a store's tables
   * are plain: a DUPSORT bit had LMDB free memory twice).
   */
  firstMalformed(meta: Meta): MalformedPage | undefined {
    const { lastPage } = meta;
    const bad = (page: number, what: string): MalformedPage => ({ page, pageSize: this.pageSize, what });
    const inUse = (p: number) => Number.isSafeInteger(p) && p >= 2 && p <= lastPage && p < this.pages;
    // The main tree's pages: its leaves hold sub-databases' records and nothing else (a store keeps
    // its data in named sub-databases). A node offset moved by a flipped bit onto bytes that read as
    // some other node had passed the bounds checks, and lmdb-js then opened no table at all.
    const main = new Set<number>(meta.mainRoot === NO_PAGE ? [] : [Number(meta.mainRoot)]);
    const free = new Set<number>(meta.freeRoot === NO_PAGE ? [] : [Number(meta.freeRoot)]);
    /** Pages of the free list's runs (what the free tree's values name). */
    const freed: number[] = [];
    /** Every page a tree or a run holds: a second claim on one is damage. */
    const held = new Set<number>();
    const stack: number[] = [];
    for (const root of [meta.freeRoot, meta.mainRoot]) if (root !== NO_PAGE) stack.push(Number(root));
    while (stack.length > 0) {
      const p = stack.pop()!;
      if (!inUse(p)) return bad(p, `a tree names page ${p}, outside the pages in use (2 to ${Math.min(lastPage, this.pages - 1)})`);
      if (held.has(p)) return bad(p, 'it is reached twice (a tree names it again, or it lies in an overflow run)');
      held.add(p);
      readSync(this.fd, this.page, 0, this.pageSize, p * this.pageSize);
      if (this.page.readBigUInt64LE(0) !== BigInt(p)) return bad(p, `its header names page ${this.page.readBigUInt64LE(0)}`);
      if (this.page.readBigUInt64LE(8) > meta.txnid) return bad(p, `its header names transaction ${this.page.readBigUInt64LE(8)}, newer than the commit's ${meta.txnid}`);
      const kind = this.page.readUInt16LE(18);
      if (kind !== P_BRANCH && kind !== P_LEAF) return bad(p, `its flags (0x${kind.toString(16)}) are not a branch's or a leaf's`);
      const lower = this.page.readUInt16LE(20);
      const upper = this.page.readUInt16LE(22);
      if ((lower & 1) !== 0 || lower > upper || HEADER + upper > this.pageSize) return bad(p, `its free space (lower ${lower}, upper ${upper}) does not lie inside it`);
      const count = lower >> 1;
      for (let i = 0; i < count; i++) {
        const offset = this.page.readUInt16LE(HEADER + 2 * i);
        const at = HEADER + offset;
        if (offset < upper) return bad(p, `node ${i} starts inside the free space`);
        if (at + NODE_HEADER > this.pageSize) return bad(p, `node ${i} starts past the page`);
        const nodeFlags = this.page.readUInt16LE(at + 4);
        const data = at + NODE_HEADER + this.page.readUInt16LE(at + 6);
        if (data > this.pageSize) return bad(p, `node ${i}'s key runs past the page`);
        if (kind === P_BRANCH) {
          const child = childOf(this.page, at);
          if (main.has(p)) main.add(child);
          if (free.has(p)) free.add(child);
          stack.push(child);
          continue;
        }
        // A leaf node's value size: lo:u16 | hi:u16 << 16.
        const size = this.page.readUInt16LE(at) + this.page.readUInt16LE(at + 2) * 0x1_0000;
        if (main.has(p) !== ((nodeFlags & F_SUBDATA) !== 0) || (main.has(p) && ((nodeFlags & F_BIGDATA) !== 0 || size !== DB_BYTES))) {
          return bad(p, main.has(p) ? `node ${i} of the main tree is not a sub-database's record` : `node ${i} holds a sub-database, which only the main tree does`);
        }
        let value: Buffer | undefined;
        if ((nodeFlags & F_BIGDATA) !== 0) {
          if (data + 8 > this.pageSize) return bad(p, `node ${i}'s overflow page number runs past the page`);
          const first = Number(this.page.readBigUInt64LE(data));
          if (!inUse(first)) return bad(p, `node ${i} names overflow page ${first}, outside the pages in use`);
          const run = this.runAt(first);
          if (!run.overflow || run.flags !== P_OVERFLOW || run.pgno !== BigInt(first)) return bad(first, `node ${i} of page ${p} names it as an overflow page, and it is not one`);
          if (run.txnid > meta.txnid) return bad(first, `its header names transaction ${run.txnid}, newer than the commit's ${meta.txnid}`);
          if (HEADER + size > run.pages * this.pageSize || first + run.pages - 1 > lastPage) return bad(first, `its run of ${run.pages} pages does not hold the ${size} bytes of node ${i} of page ${p}`);
          // Each page of the run is the run's alone (LMDB may leave a run longer than its value needs,
          // overwriting one in place): a length grown by a flipped bit over live pages had LMDB free
          // them when the value was replaced.
          for (let q = first; q < first + run.pages; q++) {
            if (held.has(q)) return bad(q, `it lies in the overflow run at page ${first} and is held by another part too`);
            held.add(q);
          }
          if (free.has(p)) {
            value = Buffer.alloc(size);
            readSync(this.fd, value, 0, size, first * this.pageSize + HEADER);
          }
        } else if ((nodeFlags & F_SUBDATA) !== 0) {
          if (data + DB_BYTES > this.pageSize) return bad(p, `node ${i}'s sub-database runs past the page`);
          if (this.page.readUInt16LE(data + 4) !== 0) return bad(p, `node ${i}'s sub-database has flags (0x${this.page.readUInt16LE(data + 4).toString(16)}); a store's tables have none`);
          const root = this.page.readBigUInt64LE(data + DB_ROOT);
          if (root !== NO_PAGE) stack.push(Number(root));
        } else if (data + size > this.pageSize) {
          return bad(p, `node ${i}'s value of ${size} bytes runs past the page`);
        } else if (free.has(p)) {
          value = this.page.subarray(data, data + size);
        }
        // A value of the free tree: a list of freed page numbers, its length first (LMDB's IDL).
        if (value !== undefined) {
          const n = value.length >= 8 ? Number(value.readBigUInt64LE(0)) : -1;
          if (!(n >= 0 && 8 * (n + 1) <= value.length)) return bad(p, `node ${i}'s list of free pages does not read as one`);
          for (let j = 1; j <= n; j++) freed.push(Number(value.readBigUInt64LE(8 * j)));
        }
      }
    }
    for (const q of freed) if (held.has(q)) return bad(q, 'the free list names it, and a tree holds it');
    return undefined;
  }

  /**
   * salvageTables() over the tree at `root` of `table`: its entries in key order (children pushed
   * last first), each part passed over recorded in `skipped`. `subdatabases`:
   * the main tree, whose leaf nodes name sub-databases (their values are the db records, 48 bytes);
   * elsewhere such a node is passed over, as a store keeps none.
   */
  *salvage(table: string, root: bigint, subdatabases: boolean, tree: SalvageLimits, skipped: SkippedPart[]): Generator<SalvagedEntry> {
    if (root === NO_PAGE) return;
    const { lastPage } = tree;
    const pageSize = this.pageSize;
    const page = this.page;
    const skip = (p: number, what: string, node?: number) => void skipped.push({ table, page: p, pageSize, what, ...(node === undefined ? {} : { node }) });
    const inUse = (p: number) => Number.isSafeInteger(p) && p >= 2 && p <= lastPage && p < this.pages;
    const stack = [Number(root)];
    while (stack.length > 0) {
      const p = stack.pop()!;
      if (this.seen.has(p)) {
        skip(p, 'it is reached twice (a tree names it again, or it lies in an overflow run)');
        continue;
      }
      this.seen.add(p);
      if (!inUse(p)) {
        skip(p, `a tree names page ${p}, outside the pages in use (2 to ${Math.min(lastPage, this.pages - 1)})`);
        continue;
      }
      readSync(this.fd, page, 0, pageSize, p * pageSize);
      if (page.readBigUInt64LE(0) !== BigInt(p)) {
        skip(p, `its header names page ${page.readBigUInt64LE(0)}`);
        continue;
      }
      if (page.readBigUInt64LE(8) > tree.txnid) {
        skip(p, `its header names transaction ${page.readBigUInt64LE(8)}, newer than the commit's ${tree.txnid}`);
        continue;
      }
      const kind = page.readUInt16LE(18);
      if (kind !== P_BRANCH && kind !== P_LEAF) {
        skip(p, `its flags (0x${kind.toString(16)}) are not a branch's or a leaf's`);
        continue;
      }
      const lower = page.readUInt16LE(20);
      if ((lower & 1) !== 0 || HEADER + lower > pageSize) {
        skip(p, `its node count (lower ${lower}) runs past the page`);
        continue;
      }
      const count = lower >> 1;
      const children: number[] = [];
      const found: SalvagedEntry[] = [];
      for (let i = 0; i < count; i++) {
        const at = HEADER + page.readUInt16LE(HEADER + 2 * i);
        if (at + NODE_HEADER > pageSize) {
          skip(p, `node ${i} starts past the page`, i);
          continue;
        }
        const data = at + NODE_HEADER + page.readUInt16LE(at + 6);
        if (data > pageSize) {
          skip(p, `node ${i}'s key runs past the page`, i);
          continue;
        }
        if (kind === P_BRANCH) {
          children.push(childOf(page, at));
          continue;
        }
        const nodeFlags = page.readUInt16LE(at + 4);
        const key = Buffer.from(page.subarray(at + NODE_HEADER, data));
        const size = page.readUInt16LE(at) + page.readUInt16LE(at + 2) * 0x1_0000;
        if (subdatabases !== ((nodeFlags & F_SUBDATA) !== 0) || (subdatabases && ((nodeFlags & F_BIGDATA) !== 0 || size !== DB_BYTES))) {
          skip(p, subdatabases ? `node ${i} of the main tree is not a sub-database's record` : `node ${i} holds a sub-database, which only the main tree does`, i);
          continue;
        }
        if ((nodeFlags & F_BIGDATA) !== 0) {
          const value = data + 8 > pageSize ? undefined : this.overflowValue(Number(page.readBigUInt64LE(data)), size, lastPage, inUse);
          if (typeof value === 'string' || value === undefined) {
            skip(p, value ?? `node ${i}'s overflow page number runs past the page`, i);
            continue;
          }
          found.push({ table, key, value });
        } else if (data + size > pageSize) {
          skip(p, `node ${i}'s value of ${size} bytes runs past the page`, i);
        } else {
          found.push({ table, key, value: Buffer.from(page.subarray(data, data + size)) });
        }
      }
      for (let c = children.length - 1; c >= 0; c--) stack.push(children[c]!);
      yield* found;
    }
  }

  /** The `size` bytes of the overflow run at page `first`, or why they cannot be read (a string). */
  private overflowValue(first: number, size: number, lastPage: number, inUse: (p: number) => boolean): Buffer | string {
    if (!inUse(first)) return `a node names overflow page ${first}, outside the pages in use`;
    const run = this.runAt(first);
    if (!run.overflow || run.pgno !== BigInt(first)) return `a node names page ${first} as an overflow page, and it is not one`;
    if (HEADER + size > run.pages * this.pageSize || first + run.pages - 1 > lastPage || first + run.pages > this.pages) return `the overflow run at page ${first} (${run.pages} pages) does not hold a value of ${size} bytes`;
    if (this.seen.has(first)) return `overflow page ${first} is named twice`;
    this.seen.add(first);
    const value = Buffer.alloc(size);
    readSync(this.fd, value, 0, size, first * this.pageSize + HEADER);
    return value;
  }

  /**
   * Calls `visit` with each page reachable from `roots` once, depth first (it hands a page's
   * children to `push`), until it returns a result, which is returned; undefined once every page is visited.
   */
  private walk<R>(roots: readonly bigint[], visit: (page: number, push: (child: number) => void) => R | undefined): R | undefined {
    const stack: number[] = [];
    const push = (child: number) => void stack.push(child);
    for (const root of roots) if (root !== NO_PAGE) push(Number(root));
    while (stack.length > 0) {
      const p = stack.pop()!;
      if (this.seen.has(p)) continue;
      this.seen.add(p);
      const result = visit(p, push);
      if (result !== undefined) return result;
    }
    return undefined;
  }

  /** The header of the page `first` as an overflow run's: the page number it names, whether it is one, and its length in pages. */
  private runAt(first: number): { readonly pgno: bigint; readonly txnid: bigint; readonly flags: number; readonly overflow: boolean; readonly pages: number } {
    const header = Buffer.alloc(HEADER);
    readSync(this.fd, header, 0, HEADER, first * this.pageSize);
    const flags = header.readUInt16LE(18);
    return { pgno: header.readBigUInt64LE(0), txnid: header.readBigUInt64LE(8), flags, overflow: (flags & P_OVERFLOW) !== 0, pages: header.readUInt32LE(20) };
  }
}

/** What salvageTables() passed over: a page (and every page below it), or one node of a page. */
export interface SkippedPart extends MalformedPage {
  /** The sub-database it belongs to, or '' for the main tree. */
  readonly table: string;
  /** The node's index in its page; undefined for the whole page. */
  readonly node?: number;
}

/** One key and value salvageTables() read. */
export interface SalvagedEntry {
  readonly table: string;
  readonly key: Buffer;
  readonly value: Buffer;
}

/**
 * What salvage() checks a tree's pages against: the pages in use and the commit. Not the free
 * list: a page both a tree and the free list name is damage in one of them, and which one is not
 * known (the tree's pointer moved onto an older copy, or the list's number onto a live page); the
 * salvage keeps the tree's page.
 */
interface SalvageLimits {
  readonly lastPage: number;
  readonly txnid: bigint;
}

/**
 * Every key and value of the sub-databases `tables` of the LMDB data file at `path`, as of its
 * newest meta, read with positioned reads and without LMDB, passing over each part LMDB would
 * read past and recording it in `skipped`: a page outside the pages in use, or whose header names
 * another page or no tree page (with every page below it, which nothing else reaches), a node that
 * runs past its page, an overflow run that does not hold its value. A page of the main tree
 * passed over loses the sub-databases it named. For repair, once checkLmdbStructure() found such a
 * part: LMDB itself ends the process there (a flipped bit in a leaf node's size did). Each
 * table's keys come in its tree's order; a table the main tree does not name yields nothing. The
 * values are LMDB's bytes as stored: their own checksums (state.ts, unseal()) say whether they
 * are what was written. Throws what the reads throw; an `skipped` entry on page 0 when the
 * file's metas do not read.
 */
export function* salvageTables(path: string, tables: readonly string[], skipped: SkippedPart[]): Generator<SalvagedEntry> {
  const fd = openSync(path, 'r');
  try {
    const zero = readMeta(fd, 0);
    const one = zero === undefined ? undefined : readMeta(fd, zero.pageSize);
    if (zero === undefined || one === undefined) {
      skipped.push({ table: '', page: zero === undefined ? 0 : 1, pageSize: zero?.pageSize ?? STORE_PAGE, what: 'not an LMDB meta page' });
      return;
    }
    const meta = newest(zero, one);
    const tree = new PageWalk(fd, fstatSync(fd).size, meta.pageSize);
    const limits: SalvageLimits = { lastPage: meta.lastPage, txnid: meta.txnid };
    const roots = new Map<string, number>();
    for (const entry of tree.salvage('', meta.mainRoot, true, limits, skipped)) {
      const name = entry.key.toString('latin1').replace(/\0$/, '');
      if (tables.includes(name) && entry.value.length >= DB_ROOT + 8) roots.set(name, Number(entry.value.readBigUInt64LE(DB_ROOT)));
    }
    for (const table of tables) {
      const root = roots.get(table);
      if (root !== undefined) yield* tree.salvage(table, BigInt(root), false, limits, skipped);
    }
  } finally {
    closeSync(fd);
  }
}

/** The most pages mainTreeKeys() reads: a store's main tree is one page (its few sub-databases); one past this is some other program's. */
const MAIN_TREE_PAGES = 64;

/** The keys of an LMDB file's main tree (mainTreeKeys()); `complete` false when the tree is larger than MAIN_TREE_PAGES pages and only some were read. */
export interface MainTreeKeys {
  readonly keys: readonly string[];
  readonly complete: boolean;
}

/**
 * The keys of the main tree (the names of the sub-databases, and any other key there) of the
 * LMDB data file at `path`, read with positioned reads as of its newest meta, without LMDB: lmdb-js
 * shares one environment per file among the threads of a process, and a look through it (even
 * read-only) from a thread opening a directory another thread holds had broken that thread's store
 * in a compaction (IO "No transaction to renew", then SIGSEGV; a hostile pass). For a file
 * checkLmdbFile() found 'whole' (the caller's look); undefined when its metas or a page of its tree
 * do not read as such (changed since, or damaged).
 */
export function mainTreeKeys(path: string): MainTreeKeys | undefined {
  return withNewestMeta(path, (fd, meta) => mainTreeKeysOf(fd, meta), () => undefined);
}

function mainTreeKeysOf(fd: number, meta: Meta): MainTreeKeys | undefined {
  const keys: string[] = [];
  if (meta.mainRoot === NO_PAGE) return { keys, complete: true };
  const page = Buffer.alloc(meta.pageSize);
  const stack = [Number(meta.mainRoot)];
  const seen = new Set<number>();
  while (stack.length > 0) {
    const p = stack.pop()!;
    if (seen.has(p)) continue;
    seen.add(p);
    if (seen.size > MAIN_TREE_PAGES) return { keys, complete: false };
    if (readSync(fd, page, 0, meta.pageSize, p * meta.pageSize) !== meta.pageSize) return undefined;
    const flags = page.readUInt16LE(18);
    const count = page.readUInt16LE(20) >> 1;
    for (let i = 0; i < count; i++) {
      const at = HEADER + page.readUInt16LE(HEADER + 2 * i);
      if (at + NODE_HEADER > meta.pageSize) return undefined;
      if ((flags & P_BRANCH) !== 0) {
        stack.push(childOf(page, at));
      } else if ((flags & P_LEAF) !== 0) {
        const size = page.readUInt16LE(at + 6);
        if (at + NODE_HEADER + size > meta.pageSize) return undefined;
        // lmdb-js names a sub-database with its C string, the terminating NUL included; lmdb-js read it as the name.
        const key = page.toString('latin1', at + NODE_HEADER, at + NODE_HEADER + size);
        keys.push(key.endsWith('\0') ? key.slice(0, -1) : key);
      } else {
        return undefined;
      }
    }
  }
  return { keys, complete: true };
}
