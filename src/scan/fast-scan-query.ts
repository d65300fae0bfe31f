import type { RqCodec } from '../codec/rq.js';
import { FAST_SCAN_GROUP_BYTES, type RqMetric } from '../kernels/contract.js';
import { kernels } from '../kernels/index.js';
import { fastScanGroups } from './fast-scan-layout.js';
import { tableParams, type TableParams } from './fast-scan-lut.js';

/**
 * A query as the fast-scan kernels take it (KERNELS.md, "Fast scan"): its two tables
 * (fast-scan-lut.ts), built by load() into linear memory this holds, the coarse one first and the
 * table of its rounding right after, and the constants that turn a lane's sum into a score.
 */
export class FastScanQuery {
  readonly groups: number;
  private coarse: TableParams = { delta: 0, bias: 0, maxError: 0 };
  private fine: TableParams = { delta: 0, bias: 0, maxError: 0 };
  /**
   * Whether the second table is built for the loaded query. Only the rescoring bound's second step
   * reads it, for candidates whose vectors are not in memory (RESCORING.md): most searches never do,
   * and building it took about half the table kernel's time.
   */
  private fineBuilt = false;
  private qNormSq = 0;
  /** The vector whose tables are loaded (a copy): a search loads one query for its scan, its bound and its pool, and builds its tables once. */
  private readonly loaded: Float32Array;
  private anyLoaded = false;
  /**
   * Linear memory: the two tables (G · 16 bytes each), then the table kernel's copy of the query
   * (dim float32) and its four results (f64).
   */
  private readonly ptr: number;
  private readonly memoryBytes: number;
  private freed = false;

  constructor(
    private readonly codec: RqCodec,
    private readonly dim: number,
  ) {
    this.groups = fastScanGroups(codec.bits, dim);
    this.loaded = new Float32Array(dim);
    this.memoryBytes = 2 * this.groups * FAST_SCAN_GROUP_BYTES + 4 * dim + 32;
    this.ptr = kernels().memory.alloc(this.memoryBytes);
  }

  /** Returns its memory to the allocator; the object is unusable afterwards. */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    kernels().memory.free(this.ptr, this.memoryBytes);
  }

  /** Bytes of linear memory it holds: both tables and the table kernel's scratch. */
  get bytes(): number {
    return this.memoryBytes;
  }

  /** Where the second table starts. */
  private get finePtr(): number {
    return this.ptr + this.groups * FAST_SCAN_GROUP_BYTES;
  }

  /**
   * Builds the first table of `vector` (the rotated query, dim floats), unless the vector loaded last
   * had the same values; the second is built when first asked for (withFine()).
   */
  load(vector: Float32Array): void {
    const dim = this.dim;
    if (vector.length !== dim) throw new RangeError(`a fast-scan query has ${dim} dimensions, not ${vector.length}`);
    if (this.anyLoaded) {
      let same = true;
      for (let i = 0; same && i < dim; i++) same = Object.is(vector[i], this.loaded[i]);
      if (same) return;
    }
    let normSq = 0;
    for (let i = 0; i < dim; i++) normSq += vector[i]! * vector[i]!;
    this.qNormSq = Math.fround(normSq);
    this.loaded.set(vector);
    this.anyLoaded = true;
    this.build(false);
  }

  /**
   * Runs the table kernel over the loaded query: the first table, and the second too when `fine`.
   * The first table and its constants are the same bits either way (the kernel's second pass only
   * adds the second table's entries), so building the second later changes no score of the first.
   */
  private build(fine: boolean): void {
    const k = kernels();
    const groups = this.groups;
    const q = this.finePtr + groups * FAST_SCAN_GROUP_BYTES;
    k.memory.f32().set(this.loaded, q >> 2);
    const outPtr = q + 4 * this.dim;
    k.fastScanTablesFunction(this.codec.bits)(q, groups, this.ptr, this.finePtr, fine ? 1 : 0, outPtr);
    const out = k.memory.f64();
    const o = outPtr >> 3;
    const params = tableParams(groups, out[o]!, out[o + 1]!, fine ? { delta: out[o + 2]!, exactBias: out[o + 3]! } : undefined);
    this.coarse = params.coarse;
    if (params.fine !== undefined) this.fine = params.fine;
    this.fineBuilt = fine;
  }

  /** The second table's constants, the table built first if the loaded query has none yet. */
  private withFine(): TableParams {
    if (!this.fineBuilt) this.build(true);
    return this.fine;
  }

  /**
   * A bound on how far the loaded query's estimate of ⟨ŷ, q⟩ is from the exact one, for every code:
   * of a scan's scores (the coarse table), or of the scores gather() gives with `fine`.
   */
  tableError(fine: boolean): number {
    return fine ? this.withFine().maxError : this.coarse.maxError;
  }

  /** Scores nBlocks blocks (scales and ‖r‖² 32 float32 per block) against the loaded query. */
  scan(metric: RqMetric, blocksPtr: number, scalesPtr: number, normsPtr: number, nBlocks: number, outPtr: number): void {
    const t = this.coarse;
    kernels().fastScanFunction(metric)(this.ptr, this.groups, t.delta, t.bias, this.qNormSq, blocksPtr, scalesPtr, normsPtr, nBlocks, outPtr);
  }

  /**
   * The gather form of scan(), vectors given as i32 quadruples at `tablePtr` (block address, lane,
   * factor address, ‖r‖² address), scored by the first table (`tables` 'first': the scan's scores);
   * 'both': each score is the scan's plus what the second table adds to its estimate
   * (F · (delta₂ · S₂ + bias₂), twice that for l2), the second table's scores written at `finePtr`
   * (n float32) first: a score as from a table with sixteen-bit entries; 'second': what the second
   * table adds, alone (the caller adds the scan's score: the float32 sum is the same).
   */
  gather(metric: RqMetric, tablePtr: number, n: number, outPtr: number, tables: 'first' | 'second' | 'both', finePtr: number): void {
    const k = kernels();
    const t = this.coarse;
    if (tables !== 'second') k.gatherFastScanFunction(metric)(this.ptr, this.groups, t.delta, t.bias, this.qNormSq, tablePtr, n, outPtr);
    if (tables === 'first') return;
    const f = this.withFine();
    const twice = metric === 'l2' ? 2 : 1;
    if (tables === 'second') {
      k.gatherFastScanFunction('dot')(this.finePtr, this.groups, f.delta, f.bias, 0, tablePtr, n, outPtr);
      if (twice !== 1) {
        const out = k.memory.f32();
        for (let j = 0; j < n; j++) out[(outPtr >> 2) + j] = twice * out[(outPtr >> 2) + j]!;
      }
      return;
    }
    k.gatherFastScanFunction('dot')(this.finePtr, this.groups, f.delta, f.bias, 0, tablePtr, n, finePtr);
    const out = k.memory.f32();
    for (let j = 0; j < n; j++) out[(outPtr >> 2) + j] = out[(outPtr >> 2) + j]! + twice * out[(finePtr >> 2) + j]!;
  }
}
