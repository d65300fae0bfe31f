import { statSync } from 'node:fs';
import type { FileLayer } from './file-layer.js';

/**
 * The device and inode of the file or directory at `path` on the real file system, or undefined
 * where it cannot be stat'ed (gone, or kept in memory by its file layer).
 */
export function fileId(path: string): string | undefined {
  try {
    const st = statSync(path, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/**
 * `files` as a store in `dir` uses it: every operation by path is refused (ESTALE) once `dir` is no
 * longer the directory it was when the view was made, removed or replaced by another of the same
 * name. A store keeps using its open files after its directory is deleted (they are its own), but
 * a file it makes or removes by path would be another store's: one opened in a directory made again
 * under the same name had its log segment deleted and its arena segments written over by the first
 * store's close (its checkpoint, the log's rotation), and read another store's texts after. Handles
 * already open keep reading and writing, but their fsync fails once their file was removed (its
 * bytes would be durable in a file that nothing can find). Without an identity (a directory the real file system cannot stat:
 * an in-memory layer's), `files` itself.
 */
export function rootedLayer(files: FileLayer, dir: string, id = fileId(dir)): FileLayer {
  if (id === undefined) return files;
  const check = (): void => {
    if (fileId(dir) !== id) throw Object.assign(new Error(`${dir} was removed or replaced while the store was open`), { code: 'ESTALE' });
  };
  const later = async <T>(run: () => Promise<T>): Promise<T> => {
    check();
    return run();
  };
  return {
    open: (path, mode) =>
      later(async () => {
        const handle = await files.open(path, mode);
        // An fsync makes a file's bytes durable only while the file has a name: one made after the
        // store's directory was removed went into a file nothing can find, and writes were
        // acknowledged that way (a hostile pass). Such an fsync fails instead, as one the disk
        // refused would: the write is not acknowledged. A directory renamed, or reached through a
        // link that was pointed elsewhere, keeps its files: their fsyncs count.
        const links = handle.links?.bind(handle);
        if (links !== undefined) {
          const sync = handle.sync.bind(handle);
          handle.sync = async () => {
            await sync();
            if ((await links()) === 0) throw Object.assign(new Error(`${path} was removed while the store was open`), { code: 'ESTALE' });
          };
        }
        return handle;
      }),
    readFile: (path) => later(() => files.readFile(path)),
    list: (d) => later(() => files.list(d)),
    remove: (path) => later(() => files.remove(path)),
    rename: (from, to) => later(() => files.rename(from, to)),
    mkdir: (d) => later(() => files.mkdir(d)),
    syncDir: (d) => later(() => files.syncDir(d)),
    exists: (path) => later(() => files.exists(path)),
    createSync: (path, data) => {
      check();
      files.createSync(path, data);
    },
    linkSync: (existing, path) => {
      check();
      files.linkSync(existing, path);
    },
    readFileSync: (path) => {
      check();
      return files.readFileSync(path);
    },
    removeSync: (path) => {
      check();
      files.removeSync(path);
    },
    mtimeSync: (path) => {
      check();
      return files.mtimeSync(path);
    },
  };
}
