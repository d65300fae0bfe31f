/**
 * The packages only `memstore bench` needs (hnswlib-node for the HNSW baseline, vega and vega-lite
 * for the charts, tinybench for the kernel micro-benchmarks) are optional dependencies: the library
 * installs and runs without them (hnswlib-node compiles with a C++ toolchain). The bench loads
 * them here, at first use, and goes on without what is missing, saying how to get it.
 */
export async function optionalPackage<T>(name: string): Promise<T | undefined> {
  try {
    return (await import(name)) as T;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return undefined;
    throw e;
  }
}

/** What to tell a user who lacks `name`, for `what`. */
export function missing(name: string, what: string): string {
  return `${name} is not installed, so the bench leaves out ${what} (npm install ${name}${name === 'hnswlib-node' ? '; it compiles with node-gyp and a C++ toolchain' : ''})`;
}
