/**
 * The part of the stored space a model's projection never reaches: an orthonormal basis of the
 * complement of the column space of W (`rows` x `cols`, row-major float32, a model's components).
 * Empty when W's columns span every row dimension (PCA, or a rotation onto as many dimensions as it
 * takes); the padding of an rq rotation padded to a multiple of 128 dimensions otherwise. Sphere
 * routing subtracts a centroid's part along it from its squared norm (router.ts, RouteSphere).
 *
 * Modified Gram–Schmidt in float64, each vector orthogonalized twice ("twice is enough", Giraud et
 * al. 2005): first W's columns (those independent of the ones before it, by more than RANGE_TOLERANCE
 * of their length, make a basis of its range), then the unit vectors e_0 .. e_{rows−1} against that
 * basis and each other. Cost about cols·k·rows + rows²·(rows − k) steps for a range of k dimensions:
 * once, when a page index is made.
 */

/** A column whose residual is under this share of its length is taken as in the span of those before it: the float32 model's rounding is about 1e-7. */
const RANGE_TOLERANCE = 1e-4;
/** A unit vector whose residual is under this is taken as in the span found so far. */
const COMPLEMENT_TOLERANCE = 1e-3;

/** `v` minus its projection on each vector of `basis`, twice; returns its length after. */
function orthogonalize(v: Float64Array, basis: readonly Float64Array[]): number {
  for (let pass = 0; pass < 2; pass++) {
    for (const b of basis) {
      let d = 0;
      for (let i = 0; i < v.length; i++) d += v[i]! * b[i]!;
      for (let i = 0; i < v.length; i++) v[i] = v[i]! - d * b[i]!;
    }
  }
  let sq = 0;
  for (let i = 0; i < v.length; i++) sq += v[i]! * v[i]!;
  return Math.sqrt(sq);
}

/** The complement's basis, row-major (`rows` floats each), and the dimensions of W's range. */
export function rangeComplement(components: Float32Array, rows: number, cols: number): { complement: Float32Array; range: number } {
  if (components.length !== rows * cols) throw new RangeError(`components hold ${components.length} floats, not ${rows} x ${cols}`);
  const range: Float64Array[] = [];
  for (let c = 0; c < cols && range.length < rows; c++) {
    const v = new Float64Array(rows);
    let sq = 0;
    for (let r = 0; r < rows; r++) {
      v[r] = components[r * cols + c]!;
      sq += v[r]! * v[r]!;
    }
    const length = orthogonalize(v, range);
    if (sq > 0 && length > RANGE_TOLERANCE * Math.sqrt(sq)) range.push(v.map((x) => x / length));
  }
  const found: Float64Array[] = [];
  for (let e = 0; e < rows && range.length + found.length < rows; e++) {
    const v = new Float64Array(rows);
    v[e] = 1;
    const length = orthogonalize(v, [...range, ...found]);
    if (length > COMPLEMENT_TOLERANCE) found.push(v.map((x) => x / length));
  }
  const complement = new Float32Array(found.length * rows);
  found.forEach((v, i) => complement.set(v, i * rows));
  return { complement, range: range.length };
}
