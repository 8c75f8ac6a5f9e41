import { ZyncError, toWireError } from '../core/errors'
import type { Op, OpResult, Snapshot } from '../core/protocol'
import { DocState, toWire } from './doc-state'
import { yieldToLoop } from './json-bytes'
import { sizeOf } from './limits'
import { AppendConflictError, type LogEntry, type ServerStorage } from './storage/types'
import { vvGet } from '../core/vector-clock'


/**
 * About what a log entry weighs as sent (values up to `cap` each, plus ~100 B of the rest): a change
 * sends the resulting value, and for a conflict what was proposed and seen; a history entry also the
 * value before.
 */
export function entryBytes(e: LogEntry, cap: number, history: boolean): number {
  return 100 + sizeOf(e.value, cap) + (history ? sizeOf(e.before, cap) : 0) + (history || e.status === 'conflict' ? sizeOf(e.proposed, cap) + sizeOf(e.prev, cap) : 0)
}

/** Ops between two snapshots unless configured: a snapshot copies the document, so not too often. */
export const DEFAULT_SNAPSHOT_EVERY = 2000
/**
 * Or fewer ops when they wrote this many bytes of values since the last snapshot (large values: a long
 * text edited keystroke by keystroke), so that `keepLog` compacts such a document too.
 */
export const SNAPSHOT_BYTES = 16_000_000
/** A join's log tail larger than this (values, approximately) gets the current state instead. */
export const DEFAULT_MAX_TAIL_BYTES = 8_000_000

export interface DocHostOptions {
  /**
   * Save a snapshot every N ops. Default: every 2000 ops (or fewer once they wrote SNAPSHOT_BYTES of
   * values), or, once the document has more than 4000 fields, every half as many ops as it has fields
   * at least (a snapshot copies the whole document; this keeps its cost per write bounded however large
   * the document grows, also when every op adds a field).
   */
  snapshotEvery?: number
  /** Drop log entries older than the newest snapshot, keeping this many for history. Default: keep all. */
  keepLog?: number
  /** Timestamps further ahead than this are clamped (ms). Default 5000. */
  maxDriftMs?: number
  /**
   * A join's log tail whose values come to more than this many bytes (approximately) gets the current
   * state as a snapshot instead: few ops of large values (a long text edited per keystroke) made a tail
   * many times the document's size, over the connection's send buffer (`maxBufferedBytes`), and the
   * client was dropped and rejoined forever. Default 8,000,000 (DEFAULT_MAX_TAIL_BYTES).
   */
  maxTailBytes?: number
  now?: () => number
  /** Errors that do not fail a request (a snapshot that could not be saved). */
  onError?: (err: unknown) => void
  /** Another node took the seqs this batch wanted: it is applied again on top of theirs. */
  onRetry?: () => void
}

/**
 * Op ids of recent writes kept in memory per loaded document, so that a batch sent again is answered
 * without a storage lookup (new ids are looked up in storage regardless). A soak trial measured ~150 B
 * each: at 20,000 a busy document held ~3 MB of them for as long as it stayed loaded.
 */
const KNOWN_OPS = 2_000
/** Appends tried per batch when other nodes keep winning the race for the next seq. */
const MAX_ATTEMPTS = 30

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** Log entries read at a time for a join's tail. */
const TAIL_PAGE = 5000

/**
 * One document on one server node: its state in memory, its log in storage. Batches are serialized
 * per document in this process; across processes the storage's append (unique seq and op id)
 * arbitrates, and a node that lost the race catches up from the log and tries again.
 */
export class DocHost {
  private state: DocState
  private queue: Promise<unknown> = Promise.resolve()
  private lastSnapshotSeq = 0
  /** Bytes of values this node wrote since the last snapshot (approximate, see SNAPSHOT_BYTES). */
  private bytesSinceSnapshot = 0
  /** The state in memory may hold ops that never reached storage: rebuild before the next use. */
  private stale = false
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
    // Each task starts a new copy-on-write epoch: state handed out by an earlier task (a snapshot not
    // yet serialized, say) is never mutated in place.
    const task = () => {
      this.state.beginBatch()
      return fn()
    }
    const run = this.queue.then(task, task)
    this.queue = run.catch(() => {})
    return run
  }

  /** Apply entries other nodes appended since our last seq; returns them (none when the state was reloaded whole). */
  private async catchUp(): Promise<LogEntry[]> {
    const applied: LogEntry[] = []
    for (;;) {
      const entries = await this.storage.readLog(this.doc, this.state.seq, 1000)
      if (entries.length === 0) return applied
      if (entries[0]!.seq !== this.state.seq + 1) {
        this.state = await loadState(this.doc, this.storage)
        return []
      }
      for (const e of entries) {
        this.state.replay(e)
        this.remember(e.opId, { seq: e.seq, status: e.status })
        applied.push(e)
      }
      if (entries.length < 1000) return applied
    }
  }

  /**
   * Catches up with what other nodes appended (after a Redis outage, whose broadcasts were lost) and
   * returns those entries, for this node to broadcast to its own clients.
   */
  refresh(): Promise<LogEntry[]> {
    return this.exclusive(() => this.catchUp())
  }

  /**
   * Applies a batch: duplicates are acknowledged again (never applied twice), refused ops get typed
   * errors, the rest are appended durably before anything is acknowledged.
   */
  submit(ops: Op[], user: string | undefined, shared: boolean): Promise<{ results: OpResult[]; entries: LogEntry[]; seq: number }> {
    return this.exclusive(async () => {
      for (let attempt = 0; ; attempt++) {
        await this.reloadIfStale()
        if (shared || attempt > 0) await this.catchUp()
        const unknown = ops.map((o) => o.id).filter((id) => !this.knownOps.has(id))
        const stored = unknown.length > 0 ? await this.storage.findOps(this.doc, unknown) : new Map<string, { seq: number; status: LogEntry['status'] }>()
        const results: OpResult[] = []
        const entries: LogEntry[] = []
        // The first answer for each op id in this batch: a repeated id gets the same answer again.
        const first = new Map<string, OpResult>()
        const now = (this.o.now ?? Date.now)()
        const ctx = { now, ...(user !== undefined ? { user } : {}), ...(this.o.maxDriftMs !== undefined ? { maxDriftMs: this.o.maxDriftMs } : {}) }
        for (const op of ops) {
          const again = first.get(op.id)
          if (again) {
            results.push(again.ok ? { ...again, duplicate: true } : again)
            continue
          }
          let r: OpResult
          const prior = this.knownOps.get(op.id) ?? stored.get(op.id)
          if (prior) {
            const logged = await this.entryAt(prior.seq, entries)
            r = { id: op.id, ok: true, seq: prior.seq, status: prior.status, duplicate: true, ...(logged ? { change: toWire(logged) } : {}) }
          } else {
            try {
              // DocState.check covers other clients' counters; a claim on this client's own ops the
              // server never saw is invented history too.
              if (vvGet(op.base, op.client) > vvGet(this.state.clientMax, op.client)) {
                throw new ZyncError('UNKNOWN_HISTORY', `[zync] op ${op.id} claims ops of its own client this server never saw`, { opId: op.id })
              }
              this.state.check(op, user)
              const e = this.state.applyOp(op, ctx)
              entries.push(e)
              // Only a conflict's answer carries its change (see ackResult): the others reach the author in
              // the broadcast or the ack's own changes.
              r = e.status === 'conflict' ? { id: op.id, ok: true, seq: e.seq, status: e.status, change: toWire(e) } : { id: op.id, ok: true, seq: e.seq, status: e.status }
            } catch (err) {
              r = { ...toWireError(err, op.id), id: op.id }
            }
          }
          first.set(op.id, r)
          results.push(r)
        }
        if (entries.length === 0) return { results, entries, seq: this.state.seq }
        try {
          await this.storage.append(this.doc, entries)
        } catch (err) {
          // Nothing was written but the state in memory has the batch applied: rebuild it from storage
          // (or on the next request, if storage is down), then retry (another node won the race) or fail.
          this.stale = true
          await this.reloadIfStale().catch(() => {})
          if (err instanceof AppendConflictError && attempt < MAX_ATTEMPTS) {
            this.o.onRetry?.()
            // Another node appended first. Back off a random while (growing) so the racers spread
            // out instead of colliding again in lockstep.
            await sleep(Math.random() * Math.min(100, 2 ** attempt))
            continue
          }
          const e =
            err instanceof AppendConflictError
              ? new ZyncError('INTERNAL', '[zync] too much contention on this document; retry', { retryable: true })
              : err instanceof ZyncError
                ? err
                : new ZyncError('STORAGE_UNAVAILABLE', `[zync] storage failed: ${(err as Error).message}`, { retryable: true })
          return { results: ops.map((op) => ({ ...toWireError(e, op.id), id: op.id })), entries: [], seq: this.state.seq }
        }
        for (const e of entries) {
          this.remember(e.opId, { seq: e.seq, status: e.status })
          if (this.bytesSinceSnapshot < SNAPSHOT_BYTES) this.bytesSinceSnapshot += sizeOf(e.value, SNAPSHOT_BYTES)
        }
        // The batch is committed. Snapshots run after the acknowledgement, off its latency, and a failed
        // snapshot never turns an acknowledgement into an error.
        if (this.snapshotDue() && !this.snapshotQueued && !this.saving) {
          this.snapshotQueued = true
          setImmediate(() => {
            void this.exclusive(async () => {
              this.snapshotQueued = false
              await this.startSnapshot()
            }).catch((err: unknown) => this.o.onError?.(err))
          })
        }
        return { results, entries, seq: this.state.seq }
      }
    })
  }

  private async reloadIfStale(): Promise<void> {
    if (!this.stale) return
    this.state = await loadState(this.doc, this.storage)
    this.lastSnapshotSeq = Math.min(this.lastSnapshotSeq, this.state.seq)
    this.stale = false
  }

  /** Recently sequenced op ids, bounded; older ones are found in storage. */
  private remember(id: string, r: { seq: number; status: LogEntry['status'] }): void {
    this.knownOps.set(id, r)
    if (this.knownOps.size > KNOWN_OPS) {
      for (const k of this.knownOps.keys()) {
        this.knownOps.delete(k)
        if (this.knownOps.size <= KNOWN_OPS / 2) break
      }
    }
  }

  private async entryAt(seq: number, fresh: LogEntry[]): Promise<LogEntry | undefined> {
    const f = fresh.find((e) => e.seq === seq)
    if (f) return f
    const [e] = await this.storage.readLog(this.doc, seq - 1, 1)
    return e && e.seq === seq ? e : undefined
  }

  private snapshotQueued = false

  /** Enough ops since the last snapshot (see `snapshotEvery`). */
  private snapshotDue(): boolean {
    const since = this.state.seq - this.lastSnapshotSeq
    if (this.o.snapshotEvery !== undefined) return since >= this.o.snapshotEvery
    // Half the document's size, not all of it: a document that only grows (each op a new field or
    // record: a chat, a log) gains a field per op, so "as many ops as fields" was never reached again
    // and `keepLog` never compacted it. Half doubles the interval each time instead (two fields
    // copied per write, amortized).
    return (since >= DEFAULT_SNAPSHOT_EVERY || this.bytesSinceSnapshot >= SNAPSHOT_BYTES) && since >= this.state.fieldCount() / 2
  }

  /**
   * Takes a snapshot (in the document's lock: a consistent copy of the maps, made in slices, the state
   * shared copy-on-write) and writes it in the background, then compacts behind it. Serializing a big
   * document's snapshot takes many turns of the event loop (storages serialize in slices), and the
   * document's writes go on meanwhile instead of waiting for it. One at a time.
   */
  private async startSnapshot(): Promise<void> {
    // Never snapshot ops that did not reach the log.
    if (this.saving || this.stale || !this.snapshotDue()) return
    const snap = await this.state.snapshot()
    const previous = this.lastSnapshotSeq
    const bytes = this.bytesSinceSnapshot
    this.lastSnapshotSeq = snap.seq
    this.bytesSinceSnapshot = 0
    this.saving = (async () => {
      try {
        await this.storage.saveSnapshot(this.doc, snap)
        if (this.o.keepLog !== undefined) {
          // The newest entry stays even with keepLog 0: a node whose copy is behind (its clients got the
          // changes from other nodes over Redis) tells from it that it is behind. With an empty log it
          // took itself for up to date and served a stale document (an operator trial).
          const upto = snap.seq - Math.max(this.o.keepLog, 1)
          if (upto > 0) await this.storage.compact(this.doc, upto)
        }
      } catch (err) {
        // Not stored: due again at the next write.
        this.lastSnapshotSeq = previous
        this.bytesSinceSnapshot += bytes
        this.o.onError?.(err)
      } finally {
        this.saving = undefined
      }
    })()
  }

  /** The snapshot being written (startSnapshot), if any. */
  private saving: Promise<void> | undefined

  /**
   * What a client that has applied up to `since` needs. Close behind: the log tail. Further behind than
   * `snapshotEvery` ops, or behind the compacted part of the log: the newest stored snapshot plus the
   * tail after it (so a new client never downloads the whole log). A client claiming a seq the server
   * never reached gets the current state as a snapshot: the server's log is the truth.
   */
  since(since: number, shared: boolean, at?: string): Promise<{ changes: ReturnType<typeof toWire>[]; snapshot?: Snapshot; seq: number; rewound?: boolean }> {
    return this.exclusive(async () => {
      await this.reloadIfStale()
      if (shared) await this.catchUp()
      const head = this.state.seq
      // The client's last change is not ours (this log was restored from a backup, then written to):
      // the changes after `since` would mix two histories on it. It gets our state, and is told.
      if (at !== undefined && since > 0 && since <= head) {
        const known = this.knownOps.get(at) ?? (await this.storage.findOps(this.doc, [at])).get(at)
        if (known?.seq !== since) return { changes: [], snapshot: await this.state.publicSnapshot(), seq: head, rewound: true }
      }
      if (since === head) return { changes: [], seq: head }
      if (since < head && head - since <= (this.o.snapshotEvery ?? DEFAULT_SNAPSHOT_EVERY)) {
        const tail = await this.tail(since, head)
        if (tail) return { changes: tail.map(toWire), seq: head }
      }
      // Far behind, compacted, or an impossible `since`: the current state, which this node holds. (It
      // used to be the stored snapshot plus the log after it: parsing a big document's stored snapshot,
      // every field meta included, and a tail that can be longer than the document held the node's
      // event loop for up to a second.) Handed out so that later ops cannot change it before it is serialized.
      return { changes: [], snapshot: await this.state.publicSnapshot(), seq: head }
    })
  }

  /**
   * Log entries after..head, or undefined when some of them are no longer in the log or they come to more
   * than `maxTailBytes` (the current state is sent instead). Read in pages with
   * a turn of the event loop between them: a long tail (a snapshot interval grows with the document) is
   * parsed from storage without holding the node's other clients for all of it at once.
   */
  private async tail(after: number, head: number): Promise<LogEntry[] | undefined> {
    const entries: LogEntry[] = []
    const budget = this.o.maxTailBytes ?? DEFAULT_MAX_TAIL_BYTES
    let bytes = 0
    while (after + entries.length < head) {
      if (entries.length > 0) await yieldToLoop()
      const from = after + entries.length
      const page = await this.storage.readLog(this.doc, from, Math.min(TAIL_PAGE, head - from))
      if (page.length === 0 || page[0]!.seq !== from + 1) return undefined
      for (const e of page) {
        bytes += entryBytes(e, budget, false)
        if (bytes > budget) return undefined
        entries.push(e)
      }
    }
    if (entries.length !== head - after || (entries.length > 0 && entries[entries.length - 1]!.seq !== head)) return undefined
    return entries
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
      // One being written in the background first (this one is newer, and stored after it).
      await this.saving
      // Never snapshot ops that did not reach the log.
      await this.reloadIfStale()
      // Nothing new since the last one (a document only read, or never written): nothing to write, which
      // also keeps documents that were only joined from filling the storage with empty snapshots.
      if (this.state.seq === this.lastSnapshotSeq) return
      await this.storage.saveSnapshot(this.doc, await this.state.snapshot())
      this.lastSnapshotSeq = this.state.seq
    })
  }
}

/** What clients get: state and version vectors, no merge internals or client ownership. */

async function loadState(doc: string, storage: ServerStorage): Promise<DocState> {
  for (let attempt = 1; ; attempt++) {
    const snap = await storage.loadSnapshot(doc)
    const state = snap ? DocState.fromSnapshot(doc, snap) : new DocState(doc)
    let gap = false
    for (;;) {
      const entries = await storage.readLog(doc, state.seq, 5000)
      if (entries.length === 0) break
      // Another node saved a newer snapshot and compacted the log behind it since ours was read: read
      // again (an operator trial saw INTERNAL "log gap" here once, with keepLog 0 on three nodes).
      if (entries[0]!.seq !== state.seq + 1 && attempt < 5) {
        gap = true
        break
      }
      for (const e of entries) state.replay(e)
      if (entries.length < 5000) break
      // A long log (a big document's snapshot interval) is replayed a page per turn of the event loop.
      await yieldToLoop()
    }
    if (!gap) return state
  }
}
