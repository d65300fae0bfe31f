import { spawn } from 'node:child_process';

/**
 * Runs `node script ...args`, hands every line it prints to `onLine` with a `kill` (SIGKILL) to
 * call when the test decides, and resolves once the child is dead. A child that exits on its own
 * (a crash of the workload, not a kill) rejects with its stderr.
 */
export function runUntilKilled(script: string, args: readonly string[], onLine: (line: string, kill: (afterMs?: number) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buffered = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    const kill = (afterMs = 0) => {
      if (afterMs <= 0) proc.kill('SIGKILL');
      else timer ??= setTimeout(() => proc.kill('SIGKILL'), afterMs);
    };
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) onLine(line, kill);
    });
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL') reject(new Error(`child exited on its own (code ${code}): ${stderr}`));
      else resolve();
    });
  });
}
