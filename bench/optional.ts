/**
 * The packages only `memstore bench` needs (hnswlib-node for the HNSW baseline, vega and vega-lite
 * for the charts, tinybench for the kernel micro-benchmarks) are optional dependencies: the library
 * installs and runs without them (hnswlib-node compiles with a C++ toolchain). The bench loads
 * them here, at first use, and goes on without what is missing or does not load, saying how to get it.
 */

/** Why each package that is installed did not load (its error's message), by name. */
const failures = new Map<string, string>();

/**
 * The package, or undefined when it is not installed or does not load: hnswlib-node installed with
 * `--ignore-scripts` has its JavaScript but not its addon, and its import throws "Could not locate
 * the bindings file", which had ended every bench run, `--no-hnsw` ones too (a hostile pass).
 */
export async function optionalPackage<T>(name: string): Promise<T | undefined> {
  try {
    return (await import(name)) as T;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') failures.set(name, e instanceof Error ? e.message.split('\n')[0]! : String(e));
    return undefined;
  }
}

/** What to tell a user who lacks `name`, for `what`. */
export function missing(name: string, what: string): string {
  const failure = failures.get(name);
  const build = name === 'hnswlib-node' ? '; it compiles with node-gyp and a C++ toolchain' : '';
  if (failure !== undefined) return `${name} is installed but did not load (${failure}), so the bench leaves out ${what} (npm rebuild ${name}${build})`;
  return `${name} is not installed, so the bench leaves out ${what} (npm install ${name}${build})`;
}
