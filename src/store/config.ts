import { MemstoreError } from '../errors.js';
import { MAX_PCA_DIM } from '../limits.js';
import { PAGES_DEFAULTS, type PagesOptions, type ResolvedOpenOptions } from '../options.js';
import { FORMAT_VERSION, type StoreConfig } from './state.js';

/** The configuration a create would persist; INVALID_OPTION, before anything exists on disk, when it cannot be made. */
export function createConfig(opts: ResolvedOpenOptions, dir: string): StoreConfig {
  if (opts.dim === undefined) throw new MemstoreError('INVALID_OPTION', `${dir} holds no store, and dim is required to create one`, { field: 'dim' });
  if (opts.pca !== undefined && 'dims' in opts.pca && opts.pca.dims > opts.dim) {
    throw new MemstoreError('INVALID_OPTION', `pca.dims (${opts.pca.dims}) exceeds dim (${opts.dim})`, { field: 'pca.dims' });
  }
  // The model is fitted inside an add, blocking the process for a time cubic in dim: refused
  // here, before anything exists, rather than there.
  if (opts.pca !== undefined && opts.dim > MAX_PCA_DIM) {
    throw new MemstoreError('INVALID_OPTION', `pca needs dim ${MAX_PCA_DIM} at most (fitting it is cubic in dim), got ${opts.dim}`, { field: 'dim' });
  }
  return {
    formatVersion: FORMAT_VERSION,
    dim: opts.dim,
    metric: opts.metric ?? 'cosine',
    codec: opts.codec ?? 'int8',
    pca: opts.pca ?? null,
    keepFull: opts.rescore ?? true,
    trainSize: opts.trainSize ?? 4096,
    pages: completePages(opts.pages ?? PAGES_DEFAULTS, undefined),
  };
}

/** `given` with each field it leaves out taken from `kept` (the store's own settings), else the default. */
function completePages(given: Readonly<PagesOptions> | false, kept: Readonly<Required<PagesOptions>> | false | undefined): Readonly<Required<PagesOptions>> | false {
  if (given === false) return false;
  const base = kept === false || kept === undefined ? PAGES_DEFAULTS : kept;
  return Object.freeze({ from: given.from ?? base.from, maxPage: given.maxPage ?? base.maxPage });
}

/**
 * The page settings a store runs with: those given to open (a field left out: the store's own),
 * else those it persisted, else (a store made before they were kept) the defaults; and the
 * configuration to persist when they differ from what it holds (undefined when nothing changes).
 */
export function settlePages(config: StoreConfig, opts: ResolvedOpenOptions): { pages: Readonly<Required<PagesOptions>> | false; rewrite: StoreConfig | undefined } {
  if (opts.pages === undefined) return { pages: config.pages ?? PAGES_DEFAULTS, rewrite: undefined };
  const pages = completePages(opts.pages, config.pages);
  const kept = config.pages;
  const same = pages === false || kept === false || kept === undefined ? pages === kept : pages.from === kept.from && pages.maxPage === kept.maxPage;
  return { pages, rewrite: same ? undefined : { ...config, pages } };
}

/** DIM_MISMATCH or OPTION_MISMATCH when options given on reopen contradict what the store was created with. */
export function checkReopen(config: StoreConfig, opts: ResolvedOpenOptions): void {
  if (opts.dim !== undefined && opts.dim !== config.dim) {
    throw new MemstoreError('DIM_MISMATCH', `store has dim ${config.dim}, opened with ${opts.dim}`, { field: 'dim' });
  }
  const mismatch = (what: string, stored: unknown, given: unknown): MemstoreError =>
    new MemstoreError('OPTION_MISMATCH', `store was created with ${what} ${JSON.stringify(stored)}, opened with ${JSON.stringify(given)}`, { field: what });
  if (opts.metric !== undefined && opts.metric !== config.metric) throw mismatch('metric', config.metric, opts.metric);
  if (opts.codec !== undefined && opts.codec !== config.codec) throw mismatch('codec', config.codec, opts.codec);
  if (opts.pca !== undefined && JSON.stringify(opts.pca) !== JSON.stringify(config.pca)) throw mismatch('pca', config.pca, opts.pca);
  if (opts.rescore === true && !config.keepFull) throw mismatch('rescore', false, true);
  if (opts.trainSize !== undefined && opts.trainSize !== config.trainSize) throw mismatch('trainSize', config.trainSize, opts.trainSize);
}
