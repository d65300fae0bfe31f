import type { Filter, MetaValue } from '../options.js';

function has(obj: Record<string, unknown>, field: string): boolean {
  return Object.prototype.hasOwnProperty.call(obj, field);
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
      if (!(cond.$in as readonly MetaValue[]).some((v) => v === value)) return false;
    } else if (value !== cond) {
      return false;
    }
  }
  return true;
}
