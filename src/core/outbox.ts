import type { OutboxRow } from './storage'
import { PRIORITIES, type Priority } from './types'
import { fieldOf, pathKey, type Path } from './path'

const RANK: Record<Priority, number> = { critical: 0, high: 1, medium: 2, low: 3 }

export interface BackoffOptions {
  /** First retry delay ceiling in ms. Default 500. */
  base?: number
  /** Growth per attempt. Default 2. */
  factor?: number
  /** Largest delay ceiling in ms. Default 30000. */
  cap?: number
}

/** Exponential backoff with full jitter: a uniform delay in [0, min(cap, base * factor^(attempt - 1))) (attempt counts from 1). */
export function backoffDelay(attempt: number, opts: Required<BackoffOptions>, random: () => number): number {
  const ceiling = Math.min(opts.cap, opts.base * opts.factor ** Math.max(0, attempt - 1))
  return Math.floor(random() * ceiling)
}

export interface RowState {
  row: OutboxRow
  persisted: boolean
  inFlight: boolean
  /** Needs writing to storage. */
  dirty: boolean
  /** Acknowledged (or settled) but the delete is not written yet. */
  done: boolean
  /** Settled (`done`) at this seq of the log, its change not applied here yet: still shown (engine settle). */
  acked?: number | undefined
  /** Its coalescing key (doc, owner, path), set once by OutboxIndex.add. */
  pathKey: string
  /** Its entity and field, for ordering within a batch, set once by OutboxIndex.add. */
  fieldKey: string
  /** The client id its op was made under when added (counted per client by OutboxIndex). */
  client: string
  /** Refused as stamped too far in the future (CLOCK_SKEW): held until a join has told the server's time, then stamped anew. */
  restamp?: boolean
  /** Stamped anew once already in this page: a second CLOCK_SKEW makes it a dead letter. */
  restamped?: boolean
  /** 'sync:acked' named it already (its change came in the log while it was in flight again): its answer does not. */
  reported?: boolean
  /**
   * The rows of the capture that made it, or folded into it (one set() that adds a record and bumps a
   * counter makes two), when there are several: shared by them. A row not yet in storage is sent only
   * with all of them still unsent (engine wholeCaptures), so that a crash cannot deliver half a set().
   */
  capture?: RowState[]
}

/** Makes `rows` one capture, with the captures they belonged to already (rows folded into): see RowState.capture. */
export function joinCapture(rows: RowState[]): void {
  const all = new Set<RowState>()
  for (const r of rows) {
    all.add(r)
    if (r.capture) for (const m of r.capture) if (!m.done && !m.row.dead) all.add(m)
  }
  const capture = [...all]
  for (const r of capture) r.capture = capture
}

/** A row state as the engine makes it: OutboxIndex.add fills in its keys. */
export type NewRowState = Omit<RowState, 'pathKey' | 'fieldKey' | 'client'>

/** A row's entity and field as one key (RowState.fieldKey). */
export function fieldKeyOf(entity: string, path: Path): string {
  return entity + '\u0001' + fieldOf(path)
}

/** A row that writes a whole record (or top-level value), not one field of it. */
export function isRecordLevel(s: RowState): boolean {
  return fieldOf(s.row.op.path) === ''
}

function decrement(counts: Map<string, number>, key: string): void {
  const n = (counts.get(key) ?? 0) - 1
  if (n > 0) counts.set(key, n)
  else counts.delete(key)
}

function coalesceKey(doc: string, owner: string, path: OutboxRow['op']['path']): string {
  return doc + '\u0001' + owner + '\u0001' + pathKey(path)
}

/**
 * The in-memory view of the outbox: rows by id, by field path (for coalescing) and by entity (for
 * overlaying pending values on remote state). Storage writes are done by the engine.
 */
export class OutboxIndex {
  readonly rows = new Map<string, RowState>()
  private readonly byPath = new Map<string, string>()
  private readonly byEntity = new Map<string, Set<string>>()
  /**
   * Rows by `order`, kept across adds and removes (a replay settles thousands of rows one by one, and
   * re-sorting them all after each would be quadratic): added rows and a count of removed ones are
   * folded in at the next `ordered()`, into a new array (one handed out is never changed).
   */
  private sorted: RowState[] | null = null
  /** Record-level rows per entity: a field row needs to look for rows to seal only where there are some. */
  private readonly wholeRows = new Map<string, number>()
  /** Rows per client id of their op: whether any row comes from another client id is asked at every op. */
  private readonly byClient = new Map<string, number>()
  private added: RowState[] = []
  private removed = 0
  /** The newest row of each field (`fieldKey`): what the screen shows there while it is pending. */
  private readonly newestOfField = new Map<string, RowState>()

  add(fresh: NewRowState): RowState {
    const { row } = fresh
    // Computed once per row: the pump and every acknowledgement look them up again.
    const state: RowState = Object.assign(fresh, { pathKey: coalesceKey(row.doc, row.owner, row.op.path), fieldKey: fieldKeyOf(row.entity, row.op.path), client: row.op.client })
    this.rows.set(row.id, state)
    this.byClient.set(state.client, (this.byClient.get(state.client) ?? 0) + 1)
    this.index(state)
    const newest = this.newestOfField.get(state.fieldKey)
    if (!newest || newest.row.order < row.order) this.newestOfField.set(state.fieldKey, state)
    if (this.sorted) this.added.push(state)
    return state
  }

  /** The newest live row of a field (entity and field name), if it is still pending. */
  pendingOfField(fieldKey: string): RowState | undefined {
    const s = this.newestOfField.get(fieldKey)
    return s && !s.done && !s.row.dead ? s : undefined
  }

  /**
   * A row loaded from storage or adopted from another tab: persisted, and closed to coalescing. The page
   * that wrote it may have sent it before it closed (its acknowledgement lost with it): a write folded in
   * would go out under an op id the server already has and be dropped as a duplicate.
   */
  addStored(row: OutboxRow): RowState {
    const state = this.add({ row, persisted: true, inFlight: false, dirty: false, done: false })
    this.seal(state)
    return state
  }

  private index(state: RowState): void {
    const { row } = state
    let set = this.byEntity.get(row.entity)
    if (!set) this.byEntity.set(row.entity, (set = new Set()))
    // A later write may only be merged into the newest row it overlaps. Merged into an older one, it
    // would move before the rows made in between (rows go out in order): a record's removal merged into
    // its add would reach the server before a field written in between, which would recreate the
    // record. So the older rows this one overlaps stop taking writes: all of the record's rows for a
    // record-level row, the record-level ones for a field row.
    const recordLevel = isRecordLevel(state)
    if (recordLevel || this.wholeRows.has(row.entity)) {
      for (const id of set) {
        const other = this.rows.get(id)
        if (other && other !== state && (recordLevel || isRecordLevel(other))) this.seal(other)
      }
    }
    if (recordLevel) this.wholeRows.set(row.entity, (this.wholeRows.get(row.entity) ?? 0) + 1)
    if (!row.dead) this.byPath.set(state.pathKey, row.id)
    set.add(row.id)
  }

  /** A row for the same field of the same owner that can still absorb a newer write. */
  coalescible(doc: string, owner: string, path: OutboxRow['op']['path']): RowState | undefined {
    const id = this.byPath.get(coalesceKey(doc, owner, path))
    if (!id) return undefined
    const s = this.rows.get(id)
    if (!s || s.inFlight || s.done || s.row.dead) return undefined
    return s
  }

  /** Stop coalescing into this row (it is in flight or settled). */
  seal(state: RowState): void {
    if (this.byPath.get(state.pathKey) === state.row.id) this.byPath.delete(state.pathKey)
  }

  remove(id: string): RowState | undefined {
    const s = this.rows.get(id)
    if (!s) return undefined
    this.rows.delete(id)
    this.seal(s)
    if (this.newestOfField.get(s.fieldKey) === s) this.newestOfField.delete(s.fieldKey)
    const set = this.byEntity.get(s.row.entity)
    if (set) {
      set.delete(id)
      if (set.size === 0) this.byEntity.delete(s.row.entity)
    }
    if (isRecordLevel(s)) decrement(this.wholeRows, s.row.entity)
    decrement(this.byClient, s.client)
    if (this.sorted) this.removed++
    return s
  }

  changed(): void {
    this.sorted = null
    this.added = []
    this.removed = 0
  }

  entityRows(entity: string): RowState[] {
    const set = this.byEntity.get(entity)
    if (!set) return []
    const out: RowState[] = []
    for (const id of set) {
      const s = this.rows.get(id)
      // Dead letters stay visible until the app retries or discards them: nothing is lost silently.
      // Settled rows whose change is not applied yet (`acked`) too.
      if (s && (!s.done || s.acked !== undefined)) out.push(s)
    }
    return out.sort((a, b) => a.row.order - b.row.order)
  }

  /** The entity's live rows (as entityRows counts them), in no particular order: no copy, no sort. */
  *entityRowsUnordered(entity: string): Iterable<RowState> {
    for (const id of this.byEntity.get(entity) ?? []) {
      const s = this.rows.get(id)
      if (s && (!s.done || s.acked !== undefined)) yield s
    }
  }

  /** A row re-issued under another client id (retry()): counted under it from now on. */
  reissue(s: RowState, client: string): void {
    decrement(this.byClient, s.client)
    s.client = client
    this.byClient.set(client, (this.byClient.get(client) ?? 0) + 1)
  }

  /** Whether a row (live or settling) was made under another client id than `client`. */
  hasOtherClients(client: string): boolean {
    return this.byClient.size > 1 || (this.byClient.size === 1 && !this.byClient.has(client))
  }

  hasEntity(entity: string): boolean {
    return this.byEntity.has(entity)
  }

  /** Live rows (not settled), oldest first. */
  ordered(): RowState[] {
    if (this.sorted && (this.added.length > 0 || this.removed > 0)) {
      let next = this.removed > 0 ? this.sorted.filter((s) => this.rows.get(s.row.id) === s) : this.sorted.slice()
      const last = next.length > 0 ? next[next.length - 1]!.row.order : -Infinity
      const kept = this.added.length > 0 ? new Set(next) : undefined
      const fresh = this.added.filter((s) => this.rows.get(s.row.id) === s && !kept!.has(s) && (kept!.add(s), true)).sort((a, b) => a.row.order - b.row.order)
      // New rows come after the others, unless renumbered (hydration): then sort them all once.
      next = fresh.length === 0 || fresh[0]!.row.order >= last ? next.concat(fresh) : next.concat(fresh).sort((a, b) => a.row.order - b.row.order)
      this.sorted = next
      this.added = []
      this.removed = 0
    }
    if (!this.sorted) this.sorted = [...this.rows.values()].sort((a, b) => a.row.order - b.row.order)
    return this.sorted
  }

  /**
   * The next batch to send: eligible rows of `owner`, higher lanes first, but ops on one entity keep
   * their order (a chain takes the highest lane of its rows). A row waits while an earlier row it
   * overlaps is in flight, backing off or not sendable: one of the same field, or a record-level row
   * (which covers every field of the record). Rows of different fields go out side by side, so a long
   * replay of one record's fields is pipelined too. Dead letters never block anything.
   */
  selectBatch(owner: string, now: number, max: number, canSend: (s: RowState) => boolean): RowState[] {
    // Entities with any waiting row; with a waiting record-level row; and waiting entity + field keys.
    const anyWaiting = new Set<string>()
    const recordWaiting = new Set<string>()
    const fieldWaiting = new Set<string>()
    // Eligible rows in order, each with its entity's chain (whose rank is final after the walk).
    const chains = new Map<string, { rank: number }>()
    const eligible: RowState[] = []
    const chainOf: Array<{ rank: number }> = []
    const rows = this.ordered()
    for (let i = 0; i < rows.length; i++) {
      const s = rows[i]!
      const { row } = s
      if (s.done || row.dead) continue
      if (row.owner !== owner) continue
      const recordLevel = isRecordLevel(s)
      const blocked = recordLevel ? anyWaiting.has(row.entity) : recordWaiting.has(row.entity) || fieldWaiting.has(s.fieldKey)
      if (blocked || s.inFlight || row.nextAt > now || !canSend(s)) {
        anyWaiting.add(row.entity)
        if (recordLevel) recordWaiting.add(row.entity)
        else fieldWaiting.add(s.fieldKey)
        continue
      }
      let c = chains.get(row.entity)
      if (!c) chains.set(row.entity, (c = { rank: RANK[row.lane] }))
      c.rank = Math.min(c.rank, RANK[row.lane])
      eligible.push(s)
      chainOf.push(c)
      // Enough rows: the batch is these, in order, unless a later row could come first (a long replay
      // would otherwise walk every waiting row, with its set lookups, at every pump).
      if (eligible.length === max && nothingOvertakes(rows, i + 1, owner, chainOf)) return eligible
    }
    // By chain rank, then order: one bucket per lane, each filled in walk (= order) order, so no sort
    // of every eligible row is needed when a long replay only sends the first `max` of them.
    const buckets: RowState[][] = PRIORITIES.map(() => [])
    for (let i = 0; i < eligible.length; i++) buckets[chainOf[i]!.rank]!.push(eligible[i]!)
    const out: RowState[] = []
    for (const b of buckets) {
      for (const s of b) {
        if (out.length >= max) return out
        out.push(s)
      }
    }
    return out
  }

  /** Earliest retry time among waiting rows of `owner`. */
  nextRetryAt(owner: string, now: number): number | undefined {
    let min: number | undefined
    for (const s of this.rows.values()) {
      if (s.done || s.row.dead || s.inFlight || s.row.owner !== owner) continue
      if (s.row.nextAt > now && (min === undefined || s.row.nextAt < min)) min = s.row.nextAt
    }
    return min
  }
}

export function higherPriority(a: Priority, b: Priority): Priority {
  return RANK[a] <= RANK[b] ? a : b
}

export function isPriority(p: unknown): p is Priority {
  return typeof p === 'string' && (PRIORITIES as readonly string[]).includes(p)
}

/**
 * Whether the rows after `from` cannot change which rows a batch takes first: every chain seen so far
 * has one and the same rank, and no later row of `owner` has a higher lane. A later row then ranks the
 * same at best and comes after them in order; it cannot raise a chain either.
 */
function nothingOvertakes(rows: readonly RowState[], from: number, owner: string, chains: ReadonlyArray<{ rank: number }>): boolean {
  const rank = chains[0]!.rank
  for (const c of chains) if (c.rank !== rank) return false
  for (let j = from; j < rows.length; j++) {
    const s = rows[j]!
    if (s.done || s.row.dead || s.row.owner !== owner) continue
    if (RANK[s.row.lane] < rank) return false
  }
  return true
}
