// Loaded with --import: makes the bench's optional packages unresolvable, as on a machine where
// they were not installed (hnswlib-node without a C++ toolchain), for test/lean-install.test.ts.
import { register } from 'node:module';

const hook = `
const MISSING = new Set(['hnswlib-node', 'vega', 'vega-lite', 'tinybench']);
export async function resolve(specifier, context, next) {
  if (MISSING.has(specifier)) {
    const e = new Error('Cannot find package ' + specifier + ' (hidden by the test)');
    e.code = 'ERR_MODULE_NOT_FOUND';
    throw e;
  }
  return next(specifier, context);
}`;
register(`data:text/javascript,${encodeURIComponent(hook)}`);
