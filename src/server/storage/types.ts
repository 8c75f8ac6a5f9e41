import type { Change, FieldMeta, Op, Snapshot } from '../../core/protocol'
import type { Path } from '../../core/path'

/** A log entry as stored: the broadcast change plus the op that produced it (for replay). */
export interface LogEntry extends Change {
  op: Op
  /**
   * A record write merged by key that kept the last writers of the fields absent from it, not only of
   * those it listed unchanged (see DocState.applyOp). Entries stored before that rule have none, and
   * replay as they were applied.
   */
  keep?: 1
  /**
   * A write of a whole top-level key decided against the writes inside the records under it, or that
   * became the last writer of the records it changed (see DocState.applyOp). Entries stored before that
   * rule have none, and replay as they were applied.
   */
  records?: 1
  /**
   * A counter or set write decided against a concurrent removal or whole write of its field by the rule
   * that keeps the count (see DocState.applyOp). Entries stored before it have none, and replay as applied.
   */
  counted?: 1
  /**
   * A record's removal that stood against concurrent edits inside the record, stamped later, that it had
   * not seen (see DocState.applyOp). Entries stored before that rule have none, and replay as decided then.
   */
  removal?: 1
}

/**
 * Bits of a stored op's `_`: the fields left out because the entry around it holds the same (see
 * encodeEntry). Entries stored before this form have no `_` and a whole op.
 */
const SAME_ID = 1
const SAME_CLIENT = 2
const SAME_N = 4
const SAME_PATH = 8
const SAME_HLC = 16
const VALUE_IS_RESULT = 32
const VALUE_IS_PROPOSED = 64

/**
 * A log entry as the storages keep it (JSON text): its op without what the entry already says (id,
 * client, counter, path and stamp, and the value when it is the entry's resulting or proposed value),
 * which is most of a plain write's op: each such key holds 0, and the op's `_` says which they are. An op used to repeat all of it, the value included: ~3x the
 * value on disk with the entry's `value` and `before`.
 */
export function encodeEntry(e: LogEntry): string {
  const op = e.op
  let same = 0
  const slim: Record<string, unknown> = {}
  for (const k in op) {
    const v = (op as unknown as Record<string, unknown>)[k]
    // A field left out keeps its key (with 0), so the op reads back with its keys in the same order.
    slim[k] = 0
    if (k === 'id' && v === e.opId) same |= SAME_ID
    else if (k === 'client' && v === e.client) same |= SAME_CLIENT
    else if (k === 'n' && v === e.n) same |= SAME_N
    else if (k === 'path' && (v === e.path || samePath(v as Path, e.path))) same |= SAME_PATH
    else if (k === 'hlc' && v === e.hlc) same |= SAME_HLC
    else if (k === 'value' && v !== undefined && v === e.value) same |= VALUE_IS_RESULT
    else if (k === 'value' && v !== undefined && v === e.proposed) same |= VALUE_IS_PROPOSED
    else slim[k] = v
  }
  slim._ = same
  return JSON.stringify({ ...e, op: slim })
}

/** A stored entry back, with its whole op (entries stored whole before encodeEntry read as they are). */
export function decodeEntry(json: string): LogEntry {
  const e = JSON.parse(json) as LogEntry & { op: Op & { _?: number } }
  const op = e.op
  const same = op._
  if (typeof same !== 'number') return e
  delete op._
  if (same & SAME_ID) op.id = e.opId
  if (same & SAME_CLIENT) op.client = e.client
  if (same & SAME_N) op.n = e.n
  if (same & SAME_PATH) op.path = e.path.slice()
  if (same & SAME_HLC) op.hlc = e.hlc
  // Shared, as when the op was applied (the entry's value is the op's value there too).
  if (same & VALUE_IS_RESULT) op.value = e.value
  else if (same & VALUE_IS_PROPOSED) op.value = e.proposed
  return e
}

function samePath(a: Path, b: Path): boolean {
  return Array.isArray(a) && a.length === b.length && a.every((s, i) => s === b[i])
}

/**
 * A snapshot as the server hands it to storage: its field metas may be a Map (DocState.fields), and it
 * carries the server's client tables. Storages keep it as the text snapshotText writes (JSON lines read
 * back in slices, snapshot-text.ts), and `loadSnapshot` gives it back through parseSnapshotText: field
 * metas as a Map (as an object from a snapshot stored by an earlier version).
 */
export interface ServerSnapshot extends Omit<Snapshot, 'fields'> {
  fields: Snapshot['fields'] | ReadonlyMap<string, FieldMeta>
  clientMax?: Record<string, number>
  clientUser?: Record<string, string>
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
  saveSnapshot(doc: string, snapshot: ServerSnapshot): Promise<void>
  loadSnapshot(doc: string): Promise<ServerSnapshot | undefined>
  compact(doc: string, upto: number): Promise<number>
  /**
   * Newest first. With `path`: the entries at it or below it, and those at its ancestors (a write of the
   * whole record or collection also wrote the value at `path`, e.g. the record's creation).
   */
  history(doc: string, query: { path?: Path; limit?: number }): Promise<LogEntry[]>
  listDocs(): Promise<string[]>
  /**
   * Optional: a small durable write outside the documents, that rejects when the storage cannot take
   * writes now (a read-only file or database, a full disk, a lost connection). While appends fail,
   * `/readyz` calls it to find out whether writes work again (without it, the node stays not ready
   * until an append succeeds).
   */
  probeWrite?(): Promise<void>
  /**
   * Optional: an id of this storage (a database and schema), the same for every process that opens it,
   * made at the first call and kept. Nodes sharing Redis check with it that they share the storage too.
   */
  clusterId?(): Promise<string>
  close(): Promise<void>
}

export function pathStartsWith(path: Path, prefix: Path): boolean {
  if (prefix.length > path.length) return false
  for (let i = 0; i < prefix.length; i++) if (String(path[i]) !== String(prefix[i])) return false
  return true
}

/** Entries at `prefix`, below it, or at one of its ancestors: what history({ path: prefix }) returns. */
export function inHistoryOf(path: Path, prefix: Path): boolean {
  return pathStartsWith(path, prefix) || pathStartsWith(prefix, path)
}

/**
 * The SQL storages' key of a path, so that "path starts with prefix" becomes "key starts with key(prefix)":
 * every segment becomes the JSON string literal of `String(segment)`. A JSON string literal ends at its
 * first unescaped quote, so concatenated literals split back into segments in one way only (the
 * comparison matches pathStartsWith, where 0 and '0' are the same segment).
 */
export function pathKey(path: Path): string {
  let key = ''
  for (const seg of path) key += JSON.stringify(String(seg))
  return key
}

/**
 * The index lookups of history({ path }) in the SQL storages: the keys of the path and its ancestors
 * (exact matches), and the key range of the paths below it: every such key continues with a segment's
 * opening quote, so it sorts from key + '"' up to (not including) key + '#' in byte order.
 */
export function historyKeys(path: Path): { exact: string[]; below: [string, string] } {
  const exact: string[] = []
  for (let i = 1; i <= path.length; i++) exact.push(pathKey(path.slice(0, i)))
  const key = exact[exact.length - 1]!
  return { exact, below: [key + '"', key + '#'] }
}
