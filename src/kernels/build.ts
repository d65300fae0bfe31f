import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { generateWat, type KernelTuning } from './wat.js';

/**
 * Build step (`npm run build` runs it after tsc): assembles the generated kernels with wabt into
 * kernels.wasm next to the compiled loader, and writes kernels.wat beside it for people to read.
 */

/** Assembles WAT text with SIMD enabled; throws wabt's parse or validation error as is. */
export async function assemble(wat: string): Promise<Uint8Array> {
  const wabt = await (await import('wabt')).default();
  const module = wabt.parseWat('kernels.wat', wat, { simd: true });
  try {
    module.validate();
    return module.toBinary({}).buffer;
  } finally {
    module.destroy();
  }
}

/** Indents the generated text by parenthesis depth; the generator emits one form per line. */
function indent(wat: string): string {
  let depth = 0;
  return wat
    .split('\n')
    .map((line) => {
      const text = line.trim();
      const closing = /^\)+/.exec(text)?.[0].length ?? 0;
      const out = '  '.repeat(Math.max(0, depth - closing)) + text;
      for (const ch of text) {
        if (ch === '(') depth++;
        else if (ch === ')') depth--;
      }
      return out;
    })
    .join('\n');
}

export async function buildKernels(outDir: URL, tuning?: KernelTuning): Promise<void> {
  const wat = indent(generateWat(tuning));
  const wasm = await assemble(wat);
  writeFileSync(new URL('kernels.wat', outDir), wat);
  writeFileSync(new URL('kernels.wasm', outDir), wasm);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildKernels(new URL('./', import.meta.url));
}
