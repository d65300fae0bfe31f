import cliProgress from 'cli-progress';

/** What a long task reports: how far it is, out of how much (undefined: not known ahead). */
export type OnProgress = (done: number, total: number | undefined) => void;

/** Plain lines at most this often (ms) when stderr is not a terminal, and at each tenth. */
const LINE_EVERY_MS = 5000;

/**
 * A progress display for a CLI task on stderr: on a terminal, a bar with the counts and an ETA
 * (cli-progress), or the count alone when the total is not known; elsewhere (a pipe, a CI log), a
 * plain line at each tenth of the way and at most every 5 s, so logs stay short. `done()` ends it
 * with a last line.
 */
export class Progress {
  private bar: cliProgress.SingleBar | undefined;
  private lastLine = 0;
  private lastTenth = -1;
  private count = 0;
  private total: number | undefined;

  constructor(
    private readonly label: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  /** The OnProgress to hand the task. */
  readonly report: OnProgress = (done, total) => {
    this.count = done;
    this.total = total;
    if (this.stream.isTTY === true) {
      if (this.bar === undefined) {
        const format = total === undefined ? `${this.label} {value} done` : `${this.label} [{bar}] {percentage}% {value}/{total} ETA {eta_formatted}`;
        this.bar = new cliProgress.SingleBar({ format, stream: this.stream, hideCursor: true, etaBuffer: 50 }, cliProgress.Presets.shades_classic);
        this.bar.start(total ?? 0, done);
      } else {
        if (total !== undefined) this.bar.setTotal(total);
        this.bar.update(done);
      }
      return;
    }
    const now = Date.now();
    const tenth = total === undefined || total === 0 ? -1 : Math.floor((10 * done) / total);
    if (tenth > this.lastTenth || now - this.lastLine >= LINE_EVERY_MS) {
      this.lastTenth = Math.max(this.lastTenth, tenth);
      this.lastLine = now;
      this.stream.write(`${this.line()}\n`);
    }
  };

  /**
   * Runs `task` with this display and ends it whether the task succeeds or fails: a bar left running
   * after an error kept the process alive for good (its redraw timer) with the terminal's cursor
   * hidden (found by a hostile pass).
   */
  async during<T>(task: (report: OnProgress) => Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await task(this.report);
    } catch (e) {
      this.bar?.stop();
      throw e;
    }
    this.done();
    return result;
  }

  done(): void {
    if (this.bar !== undefined) {
      this.bar.stop();
      return;
    }
    this.stream.write(`${this.line()} (done)\n`);
  }

  private line(): string {
    return this.total === undefined ? `${this.label} ${this.count}` : `${this.label} ${this.count}/${this.total} (${Math.floor((100 * this.count) / Math.max(1, this.total))}%)`;
  }
}
