import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const terminal = fileURLToPath(new URL('./stderr-terminal.js', import.meta.url));

/**
 * Runs the `memstore` command with `args`; resolves with its exit code and output whatever the code.
 * With `asTerminal`, its stderr claims to be a terminal (the progress bar draws), and a command
 * still running after `timeoutMs` is killed: its code is then null.
 */
export async function cliResult(args: string[], o: { asTerminal?: boolean; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [...(o.asTerminal === true ? ['--import', terminal] : []), cli, ...args], o.timeoutMs === undefined ? {} : { timeout: o.timeoutMs, killSignal: 'SIGKILL' });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number | string | null; killed?: boolean; stdout: string; stderr: string };
    return { code: err.killed === true || typeof err.code !== 'number' ? null : err.code, stdout: err.stdout, stderr: err.stderr };
  }
}
