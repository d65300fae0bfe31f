export { useLite, USE_LITE_DIM } from './use-lite.js';
export type { UseLiteOptions } from './use-lite.js';
