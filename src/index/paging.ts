import { emitWarning } from 'node:process';
import { MemstoreError } from '../errors.js';
import type { PagesOptions } from '../options.js';
import { PageIndex } from './page-index.js';
import { loadPlan, loadPlanInSteps, planInputOf, planPages, replayOnto, type PagePlanInput, type PagePlanShape, type PlanReplay } from './page-plan.js';
import { planThreads, startPagePlan, type PagePlan, type PagePlanJob } from './page-plan-job.js';
import type { VectorIndex } from './vector-index.js';

/**
 * The clustering of a store's codes into pages, off the write (PAGES.md, "Clustering off the
 * write"): once the exact index holds `pages.from` trained codes, a copy of every code goes to a
 * worker thread, which makes the plan (page-plan.ts); searches scan the exact index meanwhile, and
 * each write to it is noted for replay; the plan is taken in with writes held back, the writes
 * noted replayed a step at a time. Compaction's re-clustering goes through a worker the same way.
 * The store (MemStore) owns the index and lends this what it needs (PagingHost).
 */

/** What the clustering needs of its store. */
export interface PagingHost {
  /** The store's directory, for warnings. */
  readonly dir: string;
  /** The store's page settings; false with `pages: false`. */
  pages(): Readonly<Required<PagesOptions>> | false;
  /** The store's index now. */
  index(): VectorIndex;
  /** Whether the store's codes are trained (pages are made of trained codes only). */
  trained(): boolean;
  /** The shape of the store's page index, for a plan of its pages. */
  shape(maxPage: number): PagePlanShape;
  /** An empty page-clustered index over the store's codes. */
  newPageIndex(): PageIndex;
  /**
   * Puts `next` (holding the same ids) in the place of `old`, which it frees: each record's place,
   * document flag and filter columns carried over first (a mismatch throws, with nothing changed).
   */
  adopt(old: VectorIndex, next: PageIndex): void;
  /** Runs `task` with the write gate held (CommitPipeline.exclusive). */
  exclusive(task: () => Promise<void>): Promise<void>;
  /** A run has ended: a background checkpoint held back meanwhile may start. */
  ended(): void;
}

/** Clustering into pages under way off the write. */
interface PagingRun {
  readonly job: PagePlanJob;
  /** The exact index whose codes the plan is of, and their ids in the plan's order. */
  readonly flat: VectorIndex;
  readonly ids: readonly string[];
  readonly idBytes: number;
  /** Writes to the exact index since its codes were copied for the plan, in order. */
  readonly replays: PlanReplay[];
  /** Resolves once the plan is taken in, or has failed or been cancelled; never rejects. */
  readonly settled: Promise<void>;
  /** Resolves `settled` (at once where a compaction takes the plan in: the writes that wait for it are acknowledged before the compaction, in their order). */
  readonly settle: () => void;
}

export class Paging {
  /** Clustering into pages under way in a worker thread (ifDue()); undefined while none is. */
  private run: PagingRun | undefined;
  /** Compaction's re-clustering under way in a worker thread (recluster()). */
  private reclustering = false;

  constructor(private readonly host: PagingHost) {}

  /** Whether clustering, or compaction's re-clustering, runs in a worker now (`stats().clustering`). */
  get underWay(): boolean {
    return this.run !== undefined || this.reclustering;
  }

  /** Whether clustering into pages is under way: background checkpoints wait for it (they would write the exact index, and a crash then reopen other pages). */
  get holdsCheckpoints(): boolean {
    return this.run !== undefined;
  }

  /**
   * Starts clustering once the exact index holds `pages.from` trained codes: a copy of every code
   * goes to a worker thread; the plan comes back as a task of its own, taken in with writes held
   * back (take()); the next checkpoint writes every record with its page. A small plan
   * (planOffThread()), or one where no thread can start, is made here, inside the write.
   */
  ifDue(): void {
    const host = this.host;
    const pages = host.pages();
    // Not whether close() was called: a write accepted before it and applied after clusters as any
    // other (close() waits for it); skipped, the close had checkpointed the exact index past
    // pages.from, and the next open clustered another snapshot (a hostile pass).
    const flat = host.index();
    if (pages === false || flat.paged || !host.trained() || flat.size < pages.from || this.run !== undefined) return;
    let input: PagePlanInput;
    let job: PagePlanJob | undefined;
    let planned: Int32Array | undefined;
    try {
      input = planInputOf(flat, host.shape(pages.maxPage));
      job = startPagePlan(input);
      if (job === undefined) planned = planPages(input);
    } catch (e) {
      this.failed(e);
      return;
    }
    if (job === undefined) {
      // Made here, inside the write, where no write can come in between: taken in at once.
      let next: PageIndex | undefined;
      try {
        next = this.pagesOf(input, planned!);
        host.adopt(flat, next);
      } catch (e) {
        next?.free();
        this.failed(e);
      }
      return;
    }
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    const run: PagingRun = { job, flat, ids: input.ids, idBytes: input.idBytes, replays: [], settled, settle };
    this.run = run;
    void job.done
      .then(
        // The writes it replays stop with the gate held: none can come between the last one noted and
        // the swap. A compaction holding the gate takes the plan in itself (now()).
        (plan) => host.exclusive(async () => this.take(run, plan)),
        (e: unknown) => {
          if (this.run !== run) return;
          this.failed(e);
          this.end(run);
        },
      )
      .catch((e: unknown) => this.failed(e))
      .finally(() => this.end(run));
  }

  /** Notes a put of `form` for `id` (or, with `form` undefined, its removal) into the exact index, for the replay onto the pages under way. */
  noted(id: string, form: Float32Array | undefined): void {
    this.run?.replays.push({ id, form });
  }

  /**
   * While a worker clusters, writes past planThreads.maxReplays noted for replay wait for the pages
   * (CommitPipeline's `lagging`): the replay holds the write gate for its length, and a bulk load
   * during the window had made it longer than the clustering it took off the write (6 s for 134,000
   * puts in one step; a hostile pass), and held every stored form in memory until then.
   */
  full(): Promise<void> | undefined {
    const run = this.run;
    return run !== undefined && run.replays.length >= planThreads.maxReplays ? run.settled : undefined;
  }

  /** Resolves once no clustering into pages is under way (ifDue()). */
  async settled(): Promise<void> {
    for (let run = this.run; run !== undefined; run = this.run) await run.settled;
  }

  /** Ends the worker of the clustering under way, if any; the writes waiting for it resolve. */
  cancel(): void {
    const run = this.run;
    if (run === undefined) return;
    this.run = undefined;
    run.job.cancel();
    run.settle();
  }

  /**
   * With the write gate held (compaction): waits for the plan under way, if any, and takes it in at
   * once. Its own swap waits for the gate, which compaction holds: waiting for that (settled())
   * there would wait for ever, and waiting before taking the gate would let writes called after
   * compact() go ahead of it.
   */
  async now(): Promise<void> {
    const run = this.run;
    if (run === undefined) return;
    let plan: PagePlan;
    try {
      plan = await run.job.done;
    } catch {
      // The run's own handler warns, with the cause.
      return;
    }
    await this.take(run, plan);
  }

  /**
   * Re-clusters the pages for compaction (PageClusters.recluster), with the write gate held: in a
   * worker thread where the plan is large enough (planOffThread()), so that the process goes on
   * answering searches meanwhile (it had stood still: about 30 s at GloVe's 331k), into the pages
   * re-clustering in place makes (the plan loads every vector into its page now, as a reopen does,
   * then re-clusters). True when the pages changed.
   */
  async recluster(): Promise<boolean> {
    const host = this.host;
    const index = host.index();
    const pages = host.pages();
    if (!(index instanceof PageIndex) || pages === false || index.pages < 2) return index.recluster();
    let input: PagePlanInput | undefined;
    let plan: PagePlan | undefined;
    try {
      input = planInputOf(index, host.shape(pages.maxPage), (id) => index.pageOf(id)!);
      const job = startPagePlan(input);
      if (job !== undefined) {
        this.reclustering = true;
        plan = await job.done;
      }
    } catch (e) {
      emitWarning(new MemstoreError('IO', `re-clustering the pages of ${host.dir} in a worker thread failed; they are re-clustered in this one`, { cause: e }));
    } finally {
      this.reclustering = false;
    }
    if (input === undefined || plan === undefined) return index.recluster();
    // Loaded a step at a time: compaction holds writes back, and searches go on with `index` meanwhile.
    const next = host.newPageIndex();
    try {
      await loadPlanInSteps(next, { ...input, ...plan }, plan.pages, planThreads.stepMs, () => true);
      host.adopt(index, next);
    } catch (e) {
      next.free();
      throw e;
    }
    return true;
  }

  /** A new page index holding the codes of `input` in the pages `planned` gives them (loadPlan); freed if that fails. */
  private pagesOf(input: Pick<PagePlanInput, 'ids' | 'codes' | 'scales' | 'idBytes'>, planned: Int32Array): PageIndex {
    const next = this.host.newPageIndex();
    try {
      loadPlan(next, input, planned);
    } catch (e) {
      next.free();
      throw e;
    }
    return next;
  }

  /** Takes in the plan of `run` if it is still the one under way (with the write gate held). */
  private async take(run: PagingRun, plan: PagePlan): Promise<void> {
    const host = this.host;
    if (this.run !== run || host.index() !== run.flat) return;
    const flat = run.flat;
    let next: PageIndex | undefined;
    try {
      next = host.newPageIndex();
      // Cancelled during the load's turns (abandon(), a failed open): nothing to take in.
      const wanted = (): boolean => this.run === run && host.index() === flat;
      if (!(await loadPlanInSteps(next, { ids: run.ids, idBytes: run.idBytes, codes: plan.codes, scales: plan.scales }, plan.pages, planThreads.stepMs, wanted))) {
        next.free();
        return;
      }
      // The writes noted, a step at a time with a turn of the event loop between steps (searches
      // answer from the exact index meanwhile; the gate holds writes back): a burst logged before
      // maxReplays could hold it back had made the swap one long step. Records set aside as damaged
      // meanwhile are noted too, and taken in the steps after.
      const step = Math.max(1, planThreads.replayStep);
      for (let at = 0; at < run.replays.length; ) {
        at = replayOnto(next, run.replays, at, at + step);
        if (at < run.replays.length) {
          await new Promise((resolve) => setImmediate(resolve));
          // Cancelled meanwhile (abandon(), a failed open): nothing to take in.
          if (this.run !== run || host.index() !== flat) {
            next.free();
            return;
          }
        }
      }
      host.adopt(flat, next);
    } catch (e) {
      next?.free();
      this.failed(e);
    }
    this.end(run);
  }

  /**
   * Ends `run` if it is still the one under way: the writes waiting for it resolve, and a background
   * checkpoint held back meanwhile starts, if it is due. (cancel() ends a run of a store going away.)
   */
  private end(run: PagingRun): void {
    if (this.run !== run) return;
    this.run = undefined;
    run.settle();
    this.host.ended();
  }

  private failed(e: unknown): void {
    // The exact index still holds every code: searches go on scanning it, and the next write tries again.
    emitWarning(new MemstoreError('IO', `clustering the codes of ${this.host.dir} into pages failed; it is retried on the next add`, { cause: e }));
  }
}
