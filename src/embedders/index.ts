export { useLite, USE_LITE_DIM, USE_LITE_PIECE } from './use-lite.js';
export type { UseLiteOptions } from './use-lite.js';
