/**
 * Loaded before every test file (`node --import`, see package.json): property tests draw their cases
 * from one fixed seed, so `npm test` on a clean machine tries exactly the cases it tried here and a
 * red run is reproduced by running it again. `PROPERTY_SEED=<integer>` picks another seed and
 * `PROPERTY_SEED=random` a new one per property (to look for cases no fixed seed reaches); a failing
 * property prints its seed and shrunk path either way.
 */
import fc from 'fast-check';

/** The seed `npm test` uses. */
export const DEFAULT_PROPERTY_SEED = 20261202;

const chosen = process.env.PROPERTY_SEED;
if (chosen !== 'random') {
  const seed = chosen === undefined ? DEFAULT_PROPERTY_SEED : Number(chosen);
  if (!Number.isSafeInteger(seed)) throw new Error(`PROPERTY_SEED must be an integer or "random", not ${JSON.stringify(chosen)}`);
  fc.configureGlobal({ ...fc.readConfigureGlobal(), seed });
}
