import type { Filter, MetaValue } from '../options.js';

function has(obj: Record<string, unknown>, field: string): boolean {
  return Object.prototype.hasOwnProperty.call(obj, field);
}

/** Sets of the long `$in` lists seen, by list: a filter is tested against many records (compact()'s sweep lists every expired time). */
const inSets = new WeakMap<readonly MetaValue[], Set<unknown>>();

/**
 * Whether `value` is one of `list` by strict equality. A long list is looked up in a Set, built once
 * per list: the same answer, as stored values are never NaN (SameValueZero and === differ only there).
 */
function isIn(list: readonly MetaValue[], value: unknown): boolean {
  if (list.length <= 16) return list.some((v) => v === value);
  let set = inSets.get(list);
  if (set === undefined) {
    set = new Set(list);
    inSets.set(list, set);
  }
  return set.has(value);
}

/**
 * True when `meta` satisfies every condition of `filter`: a field equals the given value (strict
 * equality), or one of the values of `$in`. A field the record does not have matches nothing,
 * not even `null`.
 */
export function matchesFilter(meta: Record<string, unknown> | undefined, filter: Filter): boolean {
  for (const field of Object.keys(filter)) {
    if (meta === undefined || !has(meta, field)) return false;
    const value = meta[field];
    const cond = filter[field]!;
    if (cond !== null && typeof cond === 'object') {
      if (!isIn(cond.$in as readonly MetaValue[], value)) return false;
    } else if (value !== cond) {
      return false;
    }
  }
  return true;
}
