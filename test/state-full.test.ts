import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MemStore } from '../src/index.js';
import { tempDir } from './helpers.js';

const child = fileURLToPath(new URL('./support/state-full-child.js', import.meta.url));

/** Runs the child under `ulimit -f` (KiB) with SIGXFSZ ignored, so a write past the limit fails with EFBIG; its stdout lines. */
function runLimited(dir: string, limitKiB: number): Promise<{ lines: string[]; code: number | null }> {
  return new Promise((resolve, reject) => {
    const p = spawn('bash', ['-c', `trap '' XFSZ; ulimit -f ${limitKiB}; exec "$0" "$1" "$2"`, process.execPath, child, dir], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ lines: out.split('\n').filter((l) => l.length > 0), code });
    });
  });
}

test('a state.mdb that cannot grow (its commit fails inside LMDB): writes are refused with IO, no rejection goes unhandled, close() ends with IO, and every acknowledged batch reopens', async () => {
  const dir = tempDir();
  const { lines, code } = await runLimited(dir, 1024);
  const report = lines.at(-1);
  assert.ok(report?.startsWith('{'), `the child reported how it ended (close() settled), exit ${code}: ${lines.slice(-3).join(' | ')}`);
  const { refused, closed, unhandled } = JSON.parse(report!) as { refused?: string; closed: string; unhandled: string[] };
  assert.equal(code, 0);
  assert.equal(refused, 'IO', 'the write past the limit is refused with IO');
  assert.deepEqual(unhandled, [], 'no rejection was left unhandled');
  assert.ok(closed === 'IO' || closed === 'ok', `close() settled (${closed})`);
  const acked = lines.filter((l) => l.startsWith('ack ')).map((l) => Number(l.slice(4)));
  assert.ok(acked.length > 0, 'some batches were acknowledged before the limit');
  const store = await MemStore.open(dir);
  try {
    for (const b of acked) for (let j = 0; j < 20; j++) assert.ok(store.get(`b${b}-${j}`) !== undefined, `acknowledged b${b}-${j} reopened`);
  } finally {
    await store.close();
  }
});
