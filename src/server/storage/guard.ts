import { ZyncError } from '../../core/errors'
import type { Logger } from '../logger'
import { AppendConflictError, type ServerStorage } from './types'

/** Storage as the server uses it, with what the guard saw of its health. */
export interface GuardedStorage extends ServerStorage {
  /** The last read (any call but `append` and `probeWrite`) failed, and none has succeeded since. */
  readonly down: boolean
  /**
   * The last write (`append`, or `probeWrite`) failed, and none has succeeded since: this node cannot
   * take writes. Reads that succeed meanwhile (a full disk, a read-only file) do not clear it.
   */
  readonly unwritable: boolean
  /** Why the last write failed, while `unwritable`. */
  readonly writeError: string | undefined
}

/**
 * Storage as the server uses it: a failure of the storage itself (a database that is down, a full disk)
 * becomes a retryable `STORAGE_UNAVAILABLE` ZyncError on reads as on writes, so clients back off and
 * retry instead of getting `INTERNAL`. `AppendConflictError` (another node appended first) passes
 * through: the document host retries it.
 *
 * Reads and writes are tracked apart: a failed write marks the storage unwritable until a write
 * succeeds, whatever reads do meanwhile (on a full disk reads go on working). The outage (reads or
 * writes failing) is logged once at error level, when it starts, and its end once at warn, when reads
 * and writes both work again: a client retrying failing batches does not repeat either line.
 * `onWritable` hears every change of `unwritable` (false: writes fail; true: they work again), and
 * `onHealthy` every start (false) and end (true) of the outage the log lines mark.
 */
export function guardStorage(storage: ServerStorage, log: Logger, hooks: { onWritable?: (ok: boolean) => void; onHealthy?: (ok: boolean) => void } = {}): GuardedStorage {
  let down = false
  let unwritable = false
  let writeError: string | undefined
  const set = (write: boolean, failed: boolean, name: string, err?: unknown) => {
    const before = down || unwritable
    if (write) {
      if (unwritable !== failed) hooks.onWritable?.(!failed)
      unwritable = failed
      writeError = failed ? String((err as Error)?.message ?? err) : undefined
    } else {
      down = failed
    }
    const after = down || unwritable
    if (before !== after) hooks.onHealthy?.(!after)
    if (!before && after) log.error('storage failed; answering STORAGE_UNAVAILABLE until it recovers', { storage: storage.kind, during: name, err: String((err as Error)?.message ?? err) })
    if (before && !after) log.warn('storage reachable again', { storage: storage.kind, during: name })
  }
  const guard = <A extends unknown[], R>(name: string, fn: (...args: A) => Promise<R>) => {
    const write = name === 'append' || name === 'probeWrite'
    return async (...args: A): Promise<R> => {
      try {
        const r = await fn.apply(storage, args)
        if (write ? unwritable : down) set(write, false, name)
        return r
      } catch (err) {
        // A conflict (another node appended first) wrote nothing: it says nothing about writes either way.
        if (err instanceof AppendConflictError || err instanceof ZyncError) throw err
        if (!(write ? unwritable : down)) set(write, true, name, err)
        else if (write) writeError = String((err as Error)?.message ?? err)
        throw new ZyncError('STORAGE_UNAVAILABLE', `[zync] storage failed: ${String((err as Error)?.message ?? err)}`, { retryable: true, cause: err })
      }
    }
  }
  const probeWrite = storage.probeWrite
  return {
    get down() {
      return down
    },
    get unwritable() {
      return unwritable
    },
    get writeError() {
      return writeError
    },
    kind: storage.kind,
    init: () => storage.init(),
    head: guard('head', storage.head),
    append: guard('append', storage.append),
    readLog: guard('readLog', storage.readLog),
    findOps: guard('findOps', storage.findOps),
    saveSnapshot: guard('saveSnapshot', storage.saveSnapshot),
    loadSnapshot: guard('loadSnapshot', storage.loadSnapshot),
    compact: guard('compact', storage.compact),
    history: guard('history', storage.history),
    listDocs: guard('listDocs', storage.listDocs),
    ...(probeWrite ? { probeWrite: guard('probeWrite', probeWrite) } : {}),
    close: () => storage.close(),
  }
}
