import { Worker } from 'node:worker_threads';

/** One job run in a worker thread of its own (a PCA fit, a plan of pages). */
export interface WorkerJob<T> {
  /** The result. Rejects with the worker's error, or when the thread ends without a result (cancel() included). */
  readonly done: Promise<T>;
  /** Ends the thread; `done` then rejects, unless it has settled already. */
  cancel(): void;
}

/** What a job's worker script is called in errors: `the ${worker} worker sent no ${result}`. */
export interface WorkerJobNames {
  readonly worker: string;
  readonly result: string;
}

/**
 * Starts the worker script at `script` on `input`, moving `transfer` to the thread, and ends the
 * thread at its one message: `resultOf` turns the message into the result, or gives undefined for
 * a message that carries none, whose `error` then rejects `done`. Undefined, and nothing moved,
 * where no thread can start (the permission model without --allow-worker): the caller then does the
 * work in its own thread.
 */
export function startWorkerJob<T, M extends { readonly error?: unknown }>(
  script: URL,
  input: unknown,
  transfer: readonly ArrayBuffer[],
  names: WorkerJobNames,
  resultOf: (message: M) => T | undefined,
): WorkerJob<T> | undefined {
  let worker: Worker;
  try {
    // Without the process's flags: a loader or an --import of the application's has nothing to do here.
    worker = new Worker(script, { execArgv: [] });
  } catch {
    return undefined;
  }
  const done = new Promise<T>((resolve, reject) => {
    worker.once('message', (m: M) => {
      const result = resultOf(m);
      if (result !== undefined) resolve(result);
      else reject(m.error instanceof Error ? m.error : new Error(`the ${names.worker} worker sent no ${names.result}`, { cause: m.error }));
      void worker.terminate();
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the ${names.worker} worker ended (exit code ${code}) before its ${names.result} was made`)));
  });
  worker.postMessage(input, [...transfer]);
  return {
    done,
    cancel() {
      void worker.terminate();
    },
  };
}
