import { ZyncError } from '../../core/errors'
import type { Logger } from '../logger'
import { AppendConflictError, type ServerStorage } from './types'

/**
 * Storage as the server uses it: a failure of the storage itself (a database that is down, a full disk)
 * becomes a retryable `STORAGE_UNAVAILABLE` ZyncError on reads as on writes, so clients back off and
 * retry instead of getting `INTERNAL`. `AppendConflictError` (another node appended first) passes
 * through: the document host retries it. The outage is logged once at error level, and its end once.
 */
export function guardStorage(storage: ServerStorage, log: Logger): ServerStorage & { readonly down: boolean } {
  let down = false
  const guard = <A extends unknown[], R>(name: string, fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        const r = await fn.apply(storage, args)
        if (down) {
          down = false
          log.warn('storage reachable again', { storage: storage.kind })
        }
        return r
      } catch (err) {
        if (err instanceof AppendConflictError || err instanceof ZyncError) throw err
        if (!down) {
          down = true
          log.error('storage failed; answering STORAGE_UNAVAILABLE until it recovers', { storage: storage.kind, during: name, err: String((err as Error)?.message ?? err) })
        }
        throw new ZyncError('STORAGE_UNAVAILABLE', `[zync] storage failed: ${String((err as Error)?.message ?? err)}`, { retryable: true, cause: err })
      }
    }
  return {
    /** The last storage call failed (and none has succeeded since). */
    get down() {
      return down
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
    close: () => storage.close(),
  }
}
