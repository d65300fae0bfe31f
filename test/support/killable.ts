import { spawn } from 'node:child_process';

/** How long a child may print nothing before it counts as stuck. */
const SILENT_MS = 120_000;

/**
 * Runs `node script ...args`, hands every line it prints to `onLine` with a `kill` (SIGKILL) to
 * call when the test decides, and resolves once the child is dead. A child that exits on its own
 * (a crash of the workload, not a kill) rejects with its stderr, and so does one that prints
 * nothing for SILENT_MS (killed then): a workload stuck for good fails its test by name, where it
 * had kept the whole run waiting.
 */
export function runUntilKilled(script: string, args: readonly string[], onLine: (line: string, kill: (afterMs?: number) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buffered = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    let stuck = false;
    const silence = setTimeout(() => {
      stuck = true;
      proc.kill('SIGKILL');
    }, SILENT_MS);
    const kill = (afterMs = 0) => {
      if (afterMs <= 0) proc.kill('SIGKILL');
      else timer ??= setTimeout(() => proc.kill('SIGKILL'), afterMs);
    };
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (chunk: string) => {
      silence.refresh();
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) onLine(line, kill);
    });
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(silence);
      if (stuck) reject(new Error(`child printed nothing for ${SILENT_MS} ms (a workload stuck for good?): ${stderr}`));
      else if (signal !== 'SIGKILL') reject(new Error(`child exited on its own (code ${code}): ${stderr}`));
      else resolve();
    });
  });
}
