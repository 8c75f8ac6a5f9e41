import type { Change, Op, Snapshot } from '../../core/protocol'
import type { Path } from '../../core/path'

/** A log entry as stored: the broadcast change plus the op that produced it (for replay). */
export interface LogEntry extends Change {
  op: Op
}

/** Thrown by `append` when another writer (another node) took the seqs or an op id already exists. */
export class AppendConflictError extends Error {
  constructor(message = 'append conflict') {
    super(message)
    this.name = 'AppendConflictError'
  }
}

export interface OpRecord {
  seq: number
  status: Change['status']
}

/**
 * Server storage for document logs and snapshots. Contract (checked by test/server/storage-conformance.ts,
 * run against every implementation):
 * - `append(doc, entries)` is atomic and durable when it resolves (SQLite synchronous=FULL, PostgreSQL
 *   commit): either every entry lands or none. Entries carry consecutive seqs that must follow the
 *   current head exactly and op ids new to the document; otherwise it rejects with AppendConflictError
 *   and changes nothing. This is how several nodes share one document without a lock.
 * - `readLog(doc, after, limit)` returns entries with seq > after in ascending order.
 * - `findOps` knows every op id ever appended, also after compaction.
 * - `compact(doc, upto)` drops log entries with seq <= upto; only call it with a snapshot at >= upto.
 */
export interface ServerStorage {
  readonly kind: 'memory' | 'sqlite' | 'postgres'
  init(): Promise<void>
  head(doc: string): Promise<number>
  append(doc: string, entries: LogEntry[]): Promise<void>
  readLog(doc: string, after: number, limit?: number): Promise<LogEntry[]>
  findOps(doc: string, ids: readonly string[]): Promise<Map<string, OpRecord>>
  saveSnapshot(doc: string, snapshot: Snapshot): Promise<void>
  loadSnapshot(doc: string): Promise<Snapshot | undefined>
  compact(doc: string, upto: number): Promise<number>
  /** Newest first; entries whose path starts with `path` when given. */
  history(doc: string, query: { path?: Path; limit?: number }): Promise<LogEntry[]>
  listDocs(): Promise<string[]>
  close(): Promise<void>
}

export function pathStartsWith(path: Path, prefix: Path): boolean {
  if (prefix.length > path.length) return false
  for (let i = 0; i < prefix.length; i++) if (String(path[i]) !== String(prefix[i])) return false
  return true
}
