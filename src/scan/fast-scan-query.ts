import type { RqCodec } from '../codec/rq.js';
import { FAST_SCAN_GROUP_BYTES, type RqMetric } from '../kernels/contract.js';
import { kernels } from '../kernels/index.js';
import { fastScanGroups } from './fast-scan-layout.js';
import { tableParams, type TableParams } from './fast-scan-lut.js';

/**
 * A query as the fast-scan kernels take it (KERNELS.md, "Fast scan"): its table (fast-scan-lut.ts),
 * built by load() into linear memory this holds, and the constants that turn a lane's sum into a
 * score.
 */
export class FastScanQuery {
  readonly groups: number;
  private table: TableParams = { delta: 0, bias: 0, maxError: 0 };
  private qNormSq = 0;
  /** The vector whose table is loaded (a copy): a search loads one query for its scan, its bound and its pool, and builds its table once. */
  private readonly loaded: Float32Array;
  /** `loaded`'s bits, which load() compares. */
  private readonly loadedBits: Int32Array;
  private anyLoaded = false;
  /**
   * Linear memory: the table (G · 16 bytes), then the table kernel's copy of the query (dim float32)
   * and its two results (f64).
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
    this.loadedBits = new Int32Array(this.loaded.buffer);
    this.memoryBytes = this.groups * FAST_SCAN_GROUP_BYTES + 4 * dim + 16;
    this.ptr = kernels().memory.alloc(this.memoryBytes);
  }

  /** Returns its memory to the allocator; the object is unusable afterwards. */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    kernels().memory.free(this.ptr, this.memoryBytes);
  }

  /** Bytes of linear memory it holds: the table and the table kernel's scratch. */
  get bytes(): number {
    return this.memoryBytes;
  }

  /** Builds the table of `vector` (the rotated query, dim floats), unless the vector loaded last had the same values. */
  load(vector: Float32Array): void {
    const dim = this.dim;
    if (vector.length !== dim) throw new RangeError(`a fast-scan query has ${dim} dimensions, not ${vector.length}`);
    if (this.anyLoaded) {
      // Bit for bit, as integers (a scan and the rescoring bound each ask, a search after a search):
      // the same bits are the same values, and a NaN of another payload only builds the table again.
      const bits = new Int32Array(vector.buffer, vector.byteOffset, dim);
      const loaded = this.loadedBits;
      let i = 0;
      while (i < dim && bits[i] === loaded[i]) i++;
      if (i === dim) return;
    }
    let normSq = 0;
    for (let i = 0; i < dim; i++) normSq += vector[i]! * vector[i]!;
    this.qNormSq = Math.fround(normSq);
    this.loaded.set(vector);
    this.anyLoaded = true;
    const k = kernels();
    const groups = this.groups;
    const q = this.ptr + groups * FAST_SCAN_GROUP_BYTES;
    k.memory.f32().set(this.loaded, q >> 2);
    const outPtr = q + 4 * dim;
    k.fastScanTableFunction(this.codec.bits)(q, groups, this.ptr, outPtr);
    const out = k.memory.f64();
    this.table = tableParams(groups, out[outPtr >> 3]!, out[(outPtr >> 3) + 1]!);
  }

  /** A bound on how far the loaded query's estimate of ⟨ŷ, q⟩ behind a score is from the exact one, for every code. */
  tableError(): number {
    return this.table.maxError;
  }

  /** Scores nBlocks blocks (scales and ‖r‖² 32 float32 per block) against the loaded query. */
  scan(metric: RqMetric, blocksPtr: number, scalesPtr: number, normsPtr: number, nBlocks: number, outPtr: number): void {
    const t = this.table;
    kernels().fastScanFunction(metric)(this.ptr, this.groups, t.delta, t.bias, this.qNormSq, blocksPtr, scalesPtr, normsPtr, nBlocks, outPtr);
  }

  /**
   * The gather form of scan(), vectors given as i32 quadruples at `tablePtr` (block address, lane,
   * factor address, ‖r‖² address): each score is the one scan() gives that vector.
   */
  gather(metric: RqMetric, tablePtr: number, n: number, outPtr: number): void {
    const t = this.table;
    kernels().gatherFastScanFunction(metric)(this.ptr, this.groups, t.delta, t.bias, this.qNormSq, tablePtr, n, outPtr);
  }
}
