import type { FileLayer } from '../../io/file-layer.js';
import type { BlobArena } from '../arena/arena.js';
import { MemstoreError } from '../errors.js';
import type { VectorIndex } from '../index/vector-index.js';
import type { VectorPlace } from '../scan/code-blocks.js';
import type { VectorSpace } from '../space/vector-space.js';
import { indexFilePath } from './files.js';
import { frameSize } from '../arena/format.js';
import { IndexFile, type IndexDamage } from './index-file.js';
import { asMemstoreError, damagedId } from './record-errors.js';
import type { RecordReads } from './record-reads.js';
import type { Checkpoint } from './state.js';

/** What loading a checkpoint fills and reads. */
export interface LoadEnv {
  readonly dir: string;
  readonly files: FileLayer;
  readonly checkpoint: Checkpoint;
  /** Empty; filled with the checkpoint's records. */
  readonly index: VectorIndex;
  readonly space: VectorSpace;
  readonly reads: RecordReads;
  readonly texts: BlobArena;
  readonly vectors: BlobArena;
  /** Full-precision vectors are kept once trained (a record without one is damaged). */
  readonly keepFull: boolean;
  /**
   * For `memstore repair` only: damaged stretches of the index file are collected here and skipped,
   * instead of failing the open with CORRUPTION.
   */
  readonly indexDamage?: IndexDamage[];
  /**
   * For `memstore repair` only: per id, the offset of the block its last record was read from (an
   * id whose last record is a deletion is not there), so that repair can name the records read from
   * blocks before a damaged one.
   */
  readonly indexBlocks?: Map<string, number>;
  /** The index length a columns file describes: the ids of upserts at or past it are returned as `stale`. */
  readonly staleFrom?: number;
}

/** A record set aside at open: the error `get` throws for it, and where its vector is, if known. */
export interface SetAside {
  readonly error: MemstoreError;
  readonly place: VectorPlace | undefined;
}

/**
 * Fills the index from the index file the checkpoint names (INDEX.md: its blocks in file order,
 * each record superseding any earlier one of its id) and tells the vector arena which vectors are
 * live; the text arena's live bytes come from the checkpoint itself. Returns the open index file and
 * the records to set aside as damaged: one without a code once trained, or without a full-precision
 * vector where one is kept. Documents are not read: a record's index entry says whether it has one,
 * and a missing or damaged `docs` value is found when it is read.
 *
 * `stale`: the ids upserted at or past `env.staleFrom`, whose filter columns a columns file cannot vouch for.
 *
 * Before training the index holds the full vectors themselves, read from the vector arena; once
 * trained it holds the codes and where each vector is, and no vector is read.
 */
export async function loadCheckpoint(env: LoadEnv): Promise<{ file: IndexFile; setAside: Map<string, SetAside>; stale: Set<string> }> {
  const { dir, index, space, reads, vectors, checkpoint } = env;
  const stale = new Set<string>();
  const staleFrom = env.staleFrom ?? Infinity;
  const path = indexFilePath(dir, checkpoint.indexGeneration);
  const missing = new Map<string, { what: 'code' | 'vector'; place: VectorPlace | undefined }>();
  // Before training: at most trainSize records, gathered first, their vectors read afterwards.
  const untrained = new Map<string, { place: VectorPlace; documented: boolean }>();
  const codeBytes = index.codec.codeBytes(index.dim);
  // Vectors of the current generation are all one frame size: counted, and marked live at once.
  const vectorGeneration = vectors.stats().generation;
  const vectorFrame = frameSize(reads.vectorRef([0, 1, 0])[3]);
  let liveVectors = 0;
  // Hints past what the committed length can hold are a writer's bug, and must not become a huge
  // allocation: a record takes its flags, id length and one id byte at least, and once trained its
  // scale and code too.
  if (checkpoint.records !== undefined && checkpoint.idBytes !== undefined) {
    const smallest = 4 + (space.trained ? 4 + codeBytes : 0);
    index.reserve(Math.min(Math.max(checkpoint.records, 0), Math.floor(checkpoint.indexBytes / smallest)), Math.min(Math.max(checkpoint.idBytes, 0), checkpoint.indexBytes));
  }
  const releasePlace = (old: VectorPlace | undefined) => {
    if (old !== undefined && old[0] === vectorGeneration) liveVectors--;
  };
  const { file } = await IndexFile.open(
    {
      files: env.files,
      dir,
      generation: checkpoint.indexGeneration,
      committed: checkpoint.indexBytes,
      ...(checkpoint.indexDigest === undefined ? {} : { digest: checkpoint.indexDigest }),
      ...(env.indexDamage === undefined ? {} : { onDamage: (d: IndexDamage) => env.indexDamage!.push(d) }),
    },
    {
      upsert(r) {
        if (r.blockOffset >= staleFrom) stale.add(r.id());
        env.indexBlocks?.set(r.id(), r.blockOffset);
        if (!space.trained) {
          const id = r.id();
          untrained.delete(id);
          if (r.segment === 0) missing.set(id, { what: 'vector', place: undefined });
          else {
            missing.delete(id);
            untrained.set(id, { place: [r.generation, r.segment, r.offset], documented: r.documented });
          }
          return;
        }
        if (!r.hasCode || r.codeBytes !== codeBytes || (env.keepFull && r.segment === 0)) {
          const id = r.id();
          releasePlace(index.placeOf(id));
          index.remove(id);
          missing.set(id, { what: !r.hasCode || r.codeBytes !== codeBytes ? 'code' : 'vector', place: r.segment === 0 ? undefined : [r.generation, r.segment, r.offset] });
          return;
        }
        releasePlace(index.loadRecord(r));
        if (r.segment !== 0 && r.generation === vectorGeneration) liveVectors++;
        // An id set aside by an earlier record of the file and put back by this one.
        if (missing.size > 0) missing.delete(r.id());
      },
      remove(id) {
        missing.delete(id);
        env.indexBlocks?.delete(id);
        if (!space.trained) {
          untrained.delete(id);
          return;
        }
        releasePlace(index.placeOf(id));
        index.remove(id);
      },
    },
  ).catch((e: unknown) => {
    // Damage is CORRUPTION already; anything else (a directory where a file should be, EIO) is IO.
    throw asMemstoreError(e, 'opening the index file');
  });
  vectors.markLiveBytes(liveVectors * vectorFrame);
  env.texts.markLiveBytes(checkpoint.textLiveBytes);
  const setAside = new Map<string, SetAside>();
  for (const [id, { place, documented }] of untrained) {
    try {
      index.put(id, space.storedForm(await reads.vector(id, place)));
    } catch (e) {
      if (damagedId(e) !== id) {
        await file.close().catch(() => undefined);
        throw e;
      }
      setAside.set(id, { error: e as MemstoreError, place });
      continue;
    }
    index.setPlace(id, place);
    index.setDocumented(id, documented);
    vectors.markLive(reads.vectorRef(place));
  }
  for (const [id, { what, place }] of missing) {
    const error = new MemstoreError('CORRUPTION', `${path}: record ${JSON.stringify(id)} has no ${what === 'code' ? 'code' : 'full-precision vector'} in the index file`, {
      file: path,
      offset: `${what}/${id}`,
      id,
    });
    setAside.set(id, { error, place });
  }
  return { file, setAside, stale };
}
