import { AppendConflictError, decodeEntry, encodeEntry, type ServerSnapshot, inHistoryOf, type LogEntry, type OpRecord, type ServerStorage } from './types'
import { parseSnapshotText, snapshotText } from './snapshot-text'

/** A stored log entry: its seq and path (for lookups) and the entry as JSON, like the SQL storages keep it. */
interface Stored {
  seq: number
  path: LogEntry['path']
  json: string
}

interface DocData {
  log: Stored[]
  head: number
  ops: Map<string, OpRecord>
  snapshot?: { seq: number; json: string }
}

/**
 * In-process storage: fast, for tests and demos. Nothing survives the process. Entries and snapshots
 * are kept as JSON strings, as SQLite and PostgreSQL keep them: what is stored is a copy, with JSON's
 * semantics, and serializing is cheaper than a structured clone.
 */
export class MemoryStorage implements ServerStorage {
  readonly kind = 'memory' as const
  private readonly docs = new Map<string, DocData>()

  async init(): Promise<void> {}

  private doc(doc: string): DocData {
    let d = this.docs.get(doc)
    if (!d) this.docs.set(doc, (d = { log: [], head: 0, ops: new Map() }))
    return d
  }

  async head(doc: string): Promise<number> {
    return this.docs.get(doc)?.head ?? 0
  }

  async append(doc: string, entries: LogEntry[]): Promise<void> {
    const d = this.doc(doc)
    let expect = d.head + 1
    const ids = new Set<string>()
    for (const e of entries) {
      if (e.seq !== expect++) throw new AppendConflictError(`seq ${e.seq} does not follow head ${d.head}`)
      if (d.ops.has(e.opId) || ids.has(e.opId)) throw new AppendConflictError(`op ${e.opId} already stored`)
      ids.add(e.opId)
    }
    for (const e of entries) {
      d.log.push({ seq: e.seq, path: [...e.path], json: encodeEntry(e) })
      d.ops.set(e.opId, { seq: e.seq, status: e.status })
    }
    if (entries.length > 0) d.head = entries[entries.length - 1]!.seq
  }

  async readLog(doc: string, after: number, limit = Infinity): Promise<LogEntry[]> {
    const d = this.docs.get(doc)
    if (!d) return []
    // The log is in seq order: find the first entry after `after` by bisection, not a scan per read.
    let lo = 0
    let hi = d.log.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (d.log[mid]!.seq <= after) lo = mid + 1
      else hi = mid
    }
    const out: LogEntry[] = []
    for (let i = lo; i < d.log.length && out.length < limit; i++) out.push(decodeEntry(d.log[i]!.json))
    return out
  }

  async findOps(doc: string, ids: readonly string[]): Promise<Map<string, OpRecord>> {
    const d = this.docs.get(doc)
    const out = new Map<string, OpRecord>()
    if (!d) return out
    for (const id of ids) {
      const r = d.ops.get(id)
      if (r) out.set(id, r)
    }
    return out
  }

  async saveSnapshot(doc: string, snapshot: ServerSnapshot): Promise<void> {
    const json = await snapshotText(snapshot)
    const d = this.doc(doc)
    if (!d.snapshot || d.snapshot.seq <= snapshot.seq) d.snapshot = { seq: snapshot.seq, json }
  }

  async loadSnapshot(doc: string): Promise<ServerSnapshot | undefined> {
    const s = this.docs.get(doc)?.snapshot
    return s ? parseSnapshotText(s.json) : undefined
  }

  async compact(doc: string, upto: number): Promise<number> {
    const d = this.docs.get(doc)
    if (!d) return 0
    const before = d.log.length
    d.log = d.log.filter((e) => e.seq > upto)
    return before - d.log.length
  }

  async history(doc: string, query: { path?: LogEntry['path']; limit?: number }): Promise<LogEntry[]> {
    const d = this.docs.get(doc)
    if (!d) return []
    const limit = query.limit ?? 100
    const out: LogEntry[] = []
    for (let i = d.log.length - 1; i >= 0 && out.length < limit; i--) {
      const e = d.log[i]!
      if (!query.path || inHistoryOf(e.path, query.path)) out.push(decodeEntry(e.json))
    }
    return out
  }

  async listDocs(): Promise<string[]> {
    return [...this.docs.keys()]
  }

  async probeWrite(): Promise<void> {}

  async close(): Promise<void> {}
}
