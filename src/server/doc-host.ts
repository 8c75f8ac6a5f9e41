import { ZyncError, toWireError } from '../core/errors'
import type { Op, OpResult, Snapshot } from '../core/protocol'
import { DocState, toChange } from './doc-state'
import { AppendConflictError, type LogEntry, type ServerStorage } from './storage/types'

export interface DocHostOptions {
  /** Save a snapshot every N ops. Default 500. */
  snapshotEvery?: number
  /** Drop log entries older than the newest snapshot, keeping this many for history. Default: keep all. */
  keepLog?: number
  /** Timestamps further ahead than this are clamped (ms). Default 60000. */
  maxDriftMs?: number
  now?: () => number
}

/**
 * One document on one server node: its state in memory, its log in storage. Batches are serialized
 * per document in this process; across processes the storage's append (unique seq and op id)
 * arbitrates, and a node that lost the race catches up from the log and tries again.
 */
export class DocHost {
  private state: DocState
  private tail: Promise<unknown> = Promise.resolve()
  private lastSnapshotSeq = 0
  private readonly knownOps = new Map<string, { seq: number; status: LogEntry['status'] }>()

  private constructor(
    readonly doc: string,
    private readonly storage: ServerStorage,
    private readonly o: DocHostOptions,
    state: DocState,
  ) {
    this.state = state
    this.lastSnapshotSeq = state.seq
  }

  static async load(doc: string, storage: ServerStorage, o: DocHostOptions = {}): Promise<DocHost> {
    const state = await loadState(doc, storage)
    return new DocHost(doc, storage, o, state)
  }

  get seq(): number {
    return this.state.seq
  }

  /** Serializes work on this document within the process. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn)
    this.tail = run.catch(() => {})
    return run
  }

  /** Apply entries other nodes appended since our last seq. */
  private async catchUp(): Promise<void> {
    for (;;) {
      const entries = await this.storage.readLog(this.doc, this.state.seq, 1000)
      if (entries.length === 0) return
      if (entries[0]!.seq !== this.state.seq + 1) {
        this.state = await loadState(this.doc, this.storage)
        return
      }
      for (const e of entries) {
        this.state.replay(e)
        this.knownOps.set(e.opId, { seq: e.seq, status: e.status })
      }
      if (entries.length < 1000) return
    }
  }

  /**
   * Applies a batch: duplicates are acknowledged again (never applied twice), refused ops get typed
   * errors, the rest are appended durably before anything is acknowledged.
   */
  submit(ops: Op[], user: string | undefined, shared: boolean): Promise<{ results: OpResult[]; entries: LogEntry[]; seq: number }> {
    return this.exclusive(async () => {
      for (let attempt = 0; ; attempt++) {
        if (shared || attempt > 0) await this.catchUp()
        const unknown = ops.map((o) => o.id).filter((id) => !this.knownOps.has(id))
        const stored = unknown.length > 0 ? await this.storage.findOps(this.doc, unknown) : new Map()
        const results: OpResult[] = []
        const entries: LogEntry[] = []
        const seen = new Set<string>()
        const now = (this.o.now ?? Date.now)()
        const before = this.state.seq
        for (const op of ops) {
          const prior = this.knownOps.get(op.id) ?? stored.get(op.id)
          if (prior || seen.has(op.id)) {
            const p = prior ?? { seq: entries.find((e) => e.opId === op.id)!.seq, status: entries.find((e) => e.opId === op.id)!.status }
            const logged = await this.entryAt(p.seq, entries)
            results.push({ id: op.id, ok: true, seq: p.seq, status: p.status, duplicate: true, ...(logged ? { change: toChange(logged) } : {}) })
            continue
          }
          seen.add(op.id)
          try {
            this.state.check(op, user)
            const e = this.state.applyOp(op, { now, ...(user !== undefined ? { user } : {}), ...(this.o.maxDriftMs !== undefined ? { maxDriftMs: this.o.maxDriftMs } : {}) })
            entries.push(e)
            results.push({ id: op.id, ok: true, seq: e.seq, status: e.status, change: toChange(e) })
          } catch (err) {
            results.push({ ...toWireError(err, op.id), id: op.id })
          }
        }
        if (entries.length === 0) return { results, entries, seq: this.state.seq }
        try {
          await this.storage.append(this.doc, entries)
        } catch (err) {
          // Nothing was written: rebuild from storage, then retry (another node won the race) or fail.
          this.state = await loadState(this.doc, this.storage)
          if (err instanceof AppendConflictError && attempt < 8) continue
          const e = err instanceof AppendConflictError ? new ZyncError('INTERNAL', '[zync] too much contention on this document; retry', { retryable: true }) : new ZyncError('INTERNAL', `[zync] storage failed: ${(err as Error).message}`, { retryable: true })
          void before
          return { results: ops.map((op) => ({ ...toWireError(e, op.id), id: op.id })), entries: [], seq: this.state.seq }
        }
        for (const e of entries) this.knownOps.set(e.opId, { seq: e.seq, status: e.status })
        await this.maybeSnapshot()
        return { results, entries, seq: this.state.seq }
      }
    })
  }

  private async entryAt(seq: number, fresh: LogEntry[]): Promise<LogEntry | undefined> {
    const f = fresh.find((e) => e.seq === seq)
    if (f) return f
    const [e] = await this.storage.readLog(this.doc, seq - 1, 1)
    return e && e.seq === seq ? e : undefined
  }

  private async maybeSnapshot(): Promise<void> {
    const every = this.o.snapshotEvery ?? 500
    if (this.state.seq - this.lastSnapshotSeq < every) return
    await this.storage.saveSnapshot(this.doc, this.state.snapshot())
    this.lastSnapshotSeq = this.state.seq
    if (this.o.keepLog !== undefined) {
      const upto = this.state.seq - this.o.keepLog
      if (upto > 0) await this.storage.compact(this.doc, Math.min(upto, this.lastSnapshotSeq))
    }
  }

  /** What a client that has applied up to `since` needs: the log tail, or a snapshot when compacted. */
  since(since: number, shared: boolean): Promise<{ changes: ReturnType<typeof toChange>[]; snapshot?: Snapshot; seq: number }> {
    return this.exclusive(async () => {
      if (shared) await this.catchUp()
      if (since >= this.state.seq) return { changes: [], seq: this.state.seq }
      const entries = await this.storage.readLog(this.doc, since, 5000)
      const contiguous = entries.length > 0 && entries[0]!.seq === since + 1
      const complete = contiguous && entries[entries.length - 1]!.seq === this.state.seq
      if (!complete) return { changes: [], snapshot: this.state.publicSnapshot(), seq: this.state.seq }
      return { changes: entries.map(toChange), seq: this.state.seq }
    })
  }

  history(query: { path?: Op['path']; limit?: number }) {
    return this.storage.history(this.doc, query)
  }

  /** Read access for tests and the simulation. */
  current(): DocState {
    return this.state
  }

  flushSnapshot(): Promise<void> {
    return this.exclusive(async () => {
      await this.storage.saveSnapshot(this.doc, this.state.snapshot())
      this.lastSnapshotSeq = this.state.seq
    })
  }
}

async function loadState(doc: string, storage: ServerStorage): Promise<DocState> {
  const snap = await storage.loadSnapshot(doc)
  const state = snap ? DocState.fromSnapshot(doc, snap) : new DocState(doc)
  for (;;) {
    const entries = await storage.readLog(doc, state.seq, 5000)
    if (entries.length === 0) break
    for (const e of entries) state.replay(e)
    if (entries.length < 5000) break
  }
  return state
}
