/*
 * The authoritative state of one document and the rules that apply an op to it. Pure and
 * synchronous: the socket server, the multi-node host and the deterministic simulation all run
 * exactly this code. Replaying a log through `applyOp` rebuilds the same state (ops are stored with
 * the clamped timestamp and the server time they were applied at).
 */
import { deepEqual, isPlainObject } from '../core/diff'
import { ZyncError } from '../core/errors'
import { clampHlc, compareHlc, decodeHlc, encodeHlc } from '../core/hlc'
import {
  counterValue,
  emptyCounter,
  seedIdArray,
  emptySet,
  idArrayApply,
  idArrayClashes,
  idArrayOrEmpty,
  idArrayValue,
  incrementCounter,
  mergeObject,
  mergesByKey,
  setApply,
  setValue,
  type AwSet,
  type IdArray,
  type PnCounter,
} from '../core/merge'
import { entityOf, fieldOf, type Path } from '../core/path'
import { arrayAlong, getAt, setAtCow } from '../core/patch'
import type { Change, FieldMeta, Op, OpStatus, Snapshot } from '../core/protocol'
import { vvBump, vvGet, type VersionVector } from '../core/vector-clock'
import { yieldToLoop } from './json-bytes'
import type { LogEntry, ServerSnapshot } from './storage/types'

/** Field meta on the server also keeps the merge state of counter, set and id-array fields. */
export interface ServerFieldMeta extends FieldMeta {
  crdt?: { t: 'counter'; s: PnCounter } | { t: 'set'; s: AwSet } | { t: 'ids'; k: string; s: IdArray }
  /** Highest stamp of any write applied to this field (or, for a record write, inside the record). */
  top?: string
  /**
   * A counter or set field removed or written whole: its merge state just before. An increment or an
   * element stamped later that had not seen the write brings the field back from it (see applyOp).
   */
  was?: { t: 'counter'; s: PnCounter } | { t: 'set'; s: AwSet }
}

export interface ApplyContext {
  user?: string
  /** Server time (ms) at which the op is applied. */
  now: number
  /** Timestamps further ahead of `now` than this are clamped. Default 5000 (DEFAULT_MAX_DRIFT_MS). */
  maxDriftMs?: number
  /**
   * Replaying an entry stored before record writes merged by key kept the last writers of the fields
   * absent from them (LogEntry.keep): only those they listed unchanged keep theirs, as when it was applied.
   */
  listedOnly?: boolean
  /**
   * Replaying a whole top-level-key write stored before such writes were checked against the records
   * under the key (LogEntry.records): it is decided as it was then, against the key's own last writer.
   */
  keyOnly?: boolean
  /**
   * Replaying a counter or set write stored before such writes were decided against a concurrent removal
   * or whole write by their stamps alone (LogEntry.counted): it is decided as it was then.
   */
  uncounted?: boolean
  /**
   * Replaying a record's removal stored before a removal stood against concurrent edits inside the record
   * that it had not seen (LogEntry.removal): it is decided as it was then, by the stamps.
   */
  editsWin?: boolean
}

const SEP = '\u0000'
/** Largest counter a timestamp can encode (6 base-36 digits). */
const MAX_HLC_COUNTER = 36 ** 6 - 1

export class DocState {
  seq = 0
  /** The document. Read it through `state`, which marks it handed out (see beginBatch). */
  private root: Record<string, unknown> = {}
  vv: Record<string, VersionVector> = {}
  /**
   * The last writer of each field (`entity SEP field`; `entity SEP` for a whole-record write). A Map: a
   * snapshot copies it (~60 ms for 350k fields, where spreading an object that size took ~300 ms of the
   * event loop).
   */
  fields = new Map<string, ServerFieldMeta>()
  /** Highest counter seen per client: a base vector may not claim more (no invented history). */
  clientMax: Record<string, number> = {}
  /** Which user owns a client id (first one to use it). */
  clientUser: Record<string, string> = {}

  /**
   * Containers copied in the current epoch. Copy-on-write: a container is copied the first time a write
   * lands under it and mutated in place after that, so k ops on a collection of n records cost O(n + k)
   * instead of O(n·k). Log entries never reference such containers while they stay in the state (their
   * values come from the ops). Weak: an epoch can last thousands of batches, and containers a write
   * replaced must not be kept alive by it.
   */
  private fresh = new WeakSet<object>()
  /** `root` was handed out (a snapshot, a read of `state`) since the epoch began: the next batch starts a new one. */
  private handedOut = false

  constructor(readonly doc: string) {}

  /**
   * Starts a batch. A new copy-on-write epoch begins only when the state was handed out since the last
   * one (snapshot(), publicSnapshot(), a read of `state`): until then nothing outside holds its containers, and a batch may
   * keep writing in place what earlier batches copied (one copy of a 1,000-record collection, not one
   * per batch).
   */
  beginBatch(): void {
    if (!this.handedOut) return
    this.fresh = new WeakSet()
    this.handedOut = false
  }

  /**
   * The document, for readers outside (tests, the simulation, `SyncServer.doc(name).current().state`).
   * Marks it handed out, so later batches never write in place what the reader holds.
   */
  get state(): Record<string, unknown> {
    this.handedOut = true
    return this.root
  }

  static fromSnapshot(doc: string, snap: ServerSnapshot): DocState {
    const d = new DocState(doc)
    d.seq = snap.seq
    d.root = snap.state
    d.vv = snap.vv
    // A Map as stored since snapshots are JSON lines (taken as it is: converting an object of 350k field
    // metas took ~0.5 s at once); an object from a snapshot an earlier version stored.
    d.fields = snap.fields instanceof Map ? (snap.fields as Map<string, ServerFieldMeta>) : new Map(Object.entries(snap.fields as Record<string, ServerFieldMeta>))
    d.clientMax = snap.clientMax ?? {}
    d.clientUser = snap.clientUser ?? {}
    return d
  }

  /**
   * A snapshot at this seq. `state` is not written in place once handed out (the next batch starts a new
   * copy-on-write epoch) and vectors and field metas are replaced, never mutated, so shallow copies of
   * the maps are consistent without deep-copying the whole document. The copies are made a slice at a
   * time with a turn of the event loop between slices (a big document's maps took ~150 ms to copy at
   * once): the caller must keep every batch out until it resolves (DocHost holds the document's lock).
   */
  async snapshot(): Promise<ServerSnapshot> {
    this.handedOut = true
    const fields = new Map<string, ServerFieldMeta>()
    let n = 0
    for (const [k, m] of this.fields) {
      fields.set(k, m)
      if (++n % COPY_SLICE === 0) await yieldToLoop()
    }
    return { seq: this.seq, state: this.root, vv: await this.copyVectors(n), fields, clientMax: { ...this.clientMax }, clientUser: { ...this.clientUser } }
  }

  /** The vector map, copied a slice at a time (`n`: entries copied so far by the caller). */
  private async copyVectors(n = 0): Promise<Record<string, VersionVector>> {
    const vv: Record<string, VersionVector> = {}
    for (const e in this.vv) {
      vv[e] = this.vv[e]!
      if (++n % COPY_SLICE === 0) await yieldToLoop()
    }
    return vv
  }

  /** Number of field metas (one per written field or record): about the size a snapshot copies. */
  fieldCount(): number {
    return this.fields.size
  }

  /**
   * Client-facing snapshot: the state and vectors at this seq, no merge internals (field metas), and no
   * copy of the document (see snapshot()). The vector map is copied, a slice at a time as in snapshot()
   * (the caller keeps batches out until it resolves): later batches assign into it, and a join answer
   * is serialized across turns of the event loop.
   */
  async publicSnapshot(): Promise<Snapshot> {
    this.handedOut = true
    return { seq: this.seq, state: this.root, vv: await this.copyVectors(), fields: {} }
  }

  /**
   * Checks that an op is admissible (the schema validated its shape already): the client id belongs to
   * the user and the base vector does not claim history the server never saw.
   */
  check(op: Op, user: string | undefined): void {
    if (user !== undefined) {
      const owner = Object.hasOwn(this.clientUser, op.client) ? this.clientUser[op.client] : undefined
      if (owner !== undefined && owner !== user) throw new ZyncError('CLIENT_MISMATCH', `[zync] client id ${op.client} belongs to another user`, { opId: op.id })
    }
    // Ops write plain-object keys; arrays are whole values. A path through an array is an op made for
    // another shape of the document (an older or newer app version): written, its key would be a
    // hidden array property, kept in memory but not in a snapshot, an acknowledged write lost later.
    const at = arrayAlong(this.root, op.path)
    if (at > 0) {
      throw new ZyncError('SHAPE_MISMATCH', `[zync] op ${op.id} writes ${op.path.join('.')}, but ${op.path.slice(0, at).join('.')} is an array in this document: the op was made for another shape of the state (another version of the app?)`, { opId: op.id })
    }
    for (const c of Object.keys(op.base)) {
      if (c === op.client) continue
      if ((op.base[c] ?? 0) > vvGet(this.clientMax, c)) {
        throw new ZyncError('UNKNOWN_HISTORY', `[zync] op ${op.id} claims to have seen ops of ${c} that this server never saw`, { opId: op.id })
      }
    }
    // Merged by id, an array with a repeated or missing id loses elements: such an array is a whole value.
    if (op.idKey !== undefined && op.op !== 'remove' && (!idArrayOrEmpty(op.value, op.idKey) || (op.prev !== undefined && !idArrayOrEmpty(op.prev, op.idKey)))) {
      throw new ZyncError('BAD_REQUEST', `[zync] op ${op.id} merges ${op.path.join('.')} by "${op.idKey}", but its value or prev is not an array of objects with a distinct "${op.idKey}" each (send it without idKey, as a whole value)`, { opId: op.id })
    }
    // A count beyond 2^53 loses increments, and one that overflows to Infinity travels as null (JSON):
    // later increments were lost and a restart rebuilt another value (adversarial trial).
    if (op.policy === 'counter' && typeof op.delta === 'number' && op.op !== 'remove') {
      const m = this.fields.get(entityOf(op.path) + SEP + fieldOf(op.path))
      // The count it may bring back (a concurrent removal's `was`, see applyOp) is bounded too.
      const from = m?.crdt ?? m?.was
      const c = incrementCounter(from?.t === 'counter' ? from.s : seedCounter(getAt(this.root, op.path)), op.client, op.delta)
      // The sums of increments and of decrements too: counterValue adds them up before subtracting.
      const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0)
      const parts = [...Object.values(c.p), ...Object.values(c.n), sum(c.p), sum(c.n), counterValue(c)]
      if (!parts.every((v) => Math.abs(v) <= Number.MAX_SAFE_INTEGER)) {
        throw new ZyncError('TOO_LARGE', `[zync] op ${op.id} would take the counter ${op.path.join('.')} beyond ±2^53`, { opId: op.id })
      }
    }
  }

  applyOp(op: Op, ctx: ApplyContext): LogEntry {
    const entity = entityOf(op.path)
    const field = fieldOf(op.path)
    const fk = entity + SEP + field
    const meta = this.fields.get(fk)
    const policy = op.policy ?? 'lww'
    const before = getAt(this.root, op.path)
    // The clients whose writes decide whether this op is concurrent (see concurrentWriter): what of its
    // base is stored with it, so a replay decides the same, however many clients the base names.
    // A whole top-level key (`cards` written or dropped at once) covers the records under it too.
    const keyWide = op.path.length === 1 && !ctx.keyOnly
    const consulted = hasMore(op.base, 0) ? this.lastWriters(entity, field, keyWide) : undefined
    let concurrentWith = this.concurrentWriter(op, entity, field)
    const below = keyWide ? this.recordWriters(op) : undefined
    if (below?.unseen && (!concurrentWith || compareHlc(below.unseen.hlc, concurrentWith.hlc) > 0)) concurrentWith = below.unseen
    // A write into a record of a key that is no collection now (dropped, or written as a string) by an op
    // that had not seen that write of the key: concurrent with it (it would replace the string, or bring
    // the dropped key back, with one record).
    const overKey = !concurrentWith && op.path.length >= 2 && !ctx.keyOnly ? this.keyWriteOver(op, entity) : undefined
    if (overKey) concurrentWith = overKey
    const hlc = this.stamp(op, ctx, concurrentWith ? '' : maxStamp(this.topStamp(entity, field), below?.top ?? ''))
    let status: OpStatus = 'applied'
    let newValue: unknown = op.op === 'remove' ? undefined : op.value
    let crdt = meta?.crdt
    let untouched: Set<string> | undefined
    let keep = false
    // A counter increment or set element (not a removal or a whole value of the field).
    const adds = op.op !== 'remove' && ((policy === 'counter' && typeof op.delta === 'number') || (policy === 'set' && (op.added !== undefined || op.removed !== undefined)))
    // Later than a concurrent removal or whole write of its field that it had not seen: it brings the field
    // back from the merge state that write replaced (the other order of arrival keeps it: the removal,
    // older, is superseded), not from nothing.
    const revived = adds && !ctx.uncounted && concurrentWith !== undefined && concurrentWith === meta && crdt === undefined && meta.was !== undefined && compareHlc(hlc, meta.hlc) > 0 ? meta.was : undefined
    /** Decided by the rule above or by an older increment superseded by a whole write (LogEntry.counted). */
    let counted = revived !== undefined
    /** A whole-key write decided against the records under the key, or that wrote their last writers. */
    let records = (below?.unseen !== undefined && below.unseen === concurrentWith) || overKey !== undefined
    // A record's removal against edits inside the record it had not seen (the record's own last write it
    // had): the removal stands, whatever the stamps, as such an edit arriving after it is superseded
    // (below). Whichever reaches the server first, the record goes, as its element in an id-keyed array
    // that lists it does (a move never revives an element): records and the arrays that order them agree.
    const recordMeta = this.fields.get(entity + SEP)
    const removalStands = op.path.length === 2 && op.op === 'remove' && policy === 'lww' && !ctx.editsWin && concurrentWith !== undefined && concurrentWith !== recordMeta && !unseenBy(op, recordMeta)
    let removal = false

    if (op.path.length >= 3 && concurrentWith && this.vv[entity] && getAt(this.root, op.path.slice(0, 2)) === undefined) {
      // Writing a field of a record someone deleted meanwhile: the record's deletion stands, whatever
      // the field's policy (otherwise a counter or set write would resurrect a partial record).
      status = 'superseded'
    } else if (!ctx.keyOnly && op.path.length === 2 && op.op !== 'remove' && concurrentWith && this.vv[entity] && before === undefined && isPlainObject(op.prev) && Object.keys(op.prev).length > 0) {
      // An edit of a whole record its author saw (a record only the store's initial state held, edited
      // for the first time: sent whole, with the record as it was) that someone deleted meanwhile: the
      // deletion stands, as for an edit of one field. A default record deleted on one device came back
      // from another device's offline edit (a docs audit).
      status = 'superseded'
      records = true
    } else if (adds && concurrentWith !== undefined && concurrentWith === meta && crdt === undefined && (before === undefined || !ctx.uncounted) && compareHlc(hlc, concurrentWith.hlc) < 0) {
      // An increment or an element of a field whose own last write, later and concurrent, removed it or
      // wrote it whole: that write stands, as it does when it arrives second (below), whatever the order
      // of arrival.
      status = 'superseded'
      if (before !== undefined) counted = true
    } else if (policy === 'counter' && typeof op.delta === 'number' && op.op !== 'remove') {
      let c = crdt?.t === 'counter' ? crdt.s : revived?.t === 'counter' ? revived.s : seedCounter(before)
      c = incrementCounter(c, op.client, op.delta)
      crdt = { t: 'counter', s: c }
      newValue = counterValue(c)
    } else if (policy === 'set' && (op.added || op.removed) && op.op !== 'remove') {
      let s = crdt?.t === 'set' ? crdt.s : revived?.t === 'set' ? revived.s : seedSet(before)
      s = setApply(s, op.added ?? [], op.removed ?? [], hlc)
      crdt = { t: 'set', s }
      newValue = setValue(s)
    } else if (op.idKey && Array.isArray(op.value) && op.op !== 'remove') {
      // Merge by element identity; element changes that clash with concurrent ones follow the policy.
      const key = op.idKey
      const s0 = crdt?.t === 'ids' && crdt.k === key ? crdt.s : seedIdArray(before, key)
      const prev = Array.isArray(op.prev) ? op.prev : []
      const clashes = idArrayClashes(s0, key, prev, op.value)
      if (clashes.length > 0 && (policy === 'manual' || policy === 'custom')) {
        status = 'conflict'
      } else {
        const rule = policy === 'local' ? 'local' : policy === 'remote' ? 'remote' : 'lww'
        const s = idArrayApply(s0, key, prev, op.value, hlc, rule, clashes)
        crdt = { t: 'ids', k: key, s }
        newValue = idArrayValue(s)
      }
    } else {
      crdt = undefined
      if (concurrentWith) {
        // Which side a clash goes to; undefined for manual and app functions: the author's client decides.
        // A counter or set field removed or written whole (no delta, no elements) meets concurrent
        // increments or elements: never a conflict (as CONFLICTS.md says of counters and sets); the later stamp wins.
        const stamped = policy === 'lww' || policy === 'counter' || policy === 'set'
        const winner = stamped ? (compareHlc(hlc, concurrentWith.hlc) > 0 ? 'mine' : 'theirs') : policy === 'local' ? 'mine' : policy === 'remote' ? 'theirs' : undefined
        if (mergesByKey(op) && isPlainObject(before)) {
          // An object below a field merges by key against what its author saw: concurrent edits of
          // different keys both stand; only keys changed on both sides follow the policy.
          const merged = mergeObject(op.prev, op.value, before, winner ?? 'theirs')
          if (merged.clashes > 0 && winner === undefined) status = 'conflict'
          else {
            newValue = merged.value
            // A whole record merged by key: the fields it did not change keep their last writers (below),
            // those it does not hold as well (a new record's 'manual' title sent as an op of its own:
            // another device's title stays a concurrent write for it, a conflict).
            if (field === '' && isPlainObject(op.prev) && isPlainObject(op.value)) {
              const prev = op.prev
              const value = op.value
              const keys = ctx.listedOnly ? Object.keys(value) : Object.keys({ ...merged.value, ...value })
              untouched = new Set(keys.filter((k) => deepEqual(prev[k], value[k])))
              keep = !ctx.listedOnly
            }
          }
        } else if (winner === undefined) {
          // Both sides wrote the same value: nothing to decide (two people typing the same first key in a
          // 'manual' title raised a conflict over identical values, and its dialog took the next keys).
          if (!deepEqual(op.op === 'remove' ? undefined : op.value, before)) status = 'conflict'
        } else if (winner === 'theirs') {
          if (removalStands) removal = true
          else status = 'superseded'
        }
      }
    }

    this.seq += 1
    const seq = this.seq
    this.vv[entity] = vvBump(this.vv[entity], op.client, op.n)
    if (op.n > vvGet(this.clientMax, op.client)) this.clientMax[op.client] = op.n
    if (ctx.user !== undefined && !Object.hasOwn(this.clientUser, op.client)) this.clientUser[op.client] = ctx.user

    const remove = newValue === undefined
    if (status === 'applied') {
      this.root = setAtCow(this.root, op.path, newValue, remove, this.fresh)
      const m: ServerFieldMeta = { client: op.client, n: op.n, hlc, seq, at: ctx.now }
      if (ctx.user !== undefined) m.user = ctx.user
      if (crdt) m.crdt = crdt
      else if (!adds && (policy === 'counter' || policy === 'set') && field !== '') {
        m.was = meta?.crdt?.t === 'counter' || meta?.crdt?.t === 'set' ? meta.crdt : policy === 'counter' ? { t: 'counter', s: seedCounter(before) } : { t: 'set', s: seedSet(before) }
      }
      const top = maxStamp(this.topStamp(entity, field), hlc)
      if (top !== hlc) m.top = top
      this.fields.set(fk, m)
      this.keysOf(entity).add(fk)
      if (this.records && op.path.length >= 2) this.recordsOf(entity.slice(0, entity.indexOf('/'))).add(entity)
      if (field === '') this.dropFieldMetas(entity, untouched)
      if (keyWide && this.coverRecords(op, entity, before, m)) records = true
    }
    this.pruneVector(entity)
    const current = getAt(this.root, op.path)
    const entry: LogEntry = {
      seq,
      opId: op.id,
      client: op.client,
      n: op.n,
      hlc,
      entity,
      path: op.path,
      kind: current === undefined ? 'delete' : 'set',
      status,
      policy,
      at: ctx.now,
      op: storedOp(op, hlc, consulted),
    }
    if (ctx.user !== undefined) entry.user = ctx.user
    if (current !== undefined) entry.value = current
    if (before !== undefined) entry.before = before
    if (op.resolves) entry.resolves = op.resolves
    if (keep) entry.keep = 1
    if (records) entry.records = 1
    if (counted) entry.counted = 1
    if (removal) entry.removal = 1
    if (status !== 'applied') {
      if (op.op !== 'remove') entry.proposed = op.value
      if ('prev' in op) entry.prev = op.prev
      const w = concurrentWith ?? meta
      if (w) entry.winner = { client: w.client, hlc: w.hlc, at: w.at, ...(w.user ? { user: w.user } : {}) }
    }
    return entry
  }

  /**
   * The op's timestamp as stored. First clamped to `now + maxDriftMs`, so a clock running fast cannot
   * win every last-writer-wins race. Then kept causal: an op that has seen every write of its field
   * (`floor`, the highest of their stamps; '' for a concurrent op) is stamped after them, as a hybrid
   * clock receiving them would. A client can be behind its own causal past (clamping; a reloaded client
   * whose clock never saw the stamps of a snapshot it caught up from); without this its write would lose
   * against writes it had already seen, and last-writer-wins would depend on arrival order.
   */
  private stamp(op: Op, ctx: ApplyContext, floor: string): string {
    const hlc = clampHlc(op.hlc, ctx.now, ctx.maxDriftMs ?? DEFAULT_MAX_DRIFT_MS)
    if (floor === '' || compareHlc(hlc, floor) > 0) return hlc
    const top = decodeHlc(floor)
    if (!top) return hlc
    return top.counter >= MAX_HLC_COUNTER ? encodeHlc({ wall: top.wall + 1, counter: 0, node: op.client }) : encodeHlc({ wall: top.wall, counter: top.counter + 1, node: op.client })
  }

  /** Highest stamp written to this field so far (for a whole record: to anything in it). */
  private topStamp(entity: string, field: string): string {
    if (field !== '') return maxStamp(topOf(this.fields.get(entity + SEP + field)), topOf(this.fields.get(entity + SEP)))
    let top = ''
    for (const k of this.keysOf(entity)) top = maxStamp(top, topOf(this.fields.get(k)))
    return top
  }

  /** Replays a stored entry (from this node's log or another node's) to rebuild state. */
  replay(entry: LogEntry): void {
    if (entry.seq !== this.seq + 1) throw new Error(`[zync] log gap: expected seq ${this.seq + 1}, got ${entry.seq}`)
    this.applyOp(entry.op, { now: entry.at, maxDriftMs: Number.MAX_SAFE_INTEGER, listedOnly: entry.keep !== 1, keyOnly: entry.records !== 1, uncounted: entry.counted !== 1, editsWin: entry.removal !== 1, ...(entry.user !== undefined ? { user: entry.user } : {}) })
  }

  /**
   * The last writer of this field (or of the whole record) that the op's base had not seen, if any.
   * Ops of the same client are causally ordered by construction, so they never conflict.
   */
  private concurrentWriter(op: Op, entity: string, field: string): ServerFieldMeta | undefined {
    if (field === '') {
      // A whole-record write races with any unseen write inside the record.
      let latest: ServerFieldMeta | undefined
      for (const k of this.keysOf(entity)) {
        const m = this.fields.get(k)
        if (!m) continue
        if (unseenBy(op, m) && (!latest || compareHlc(m.hlc, latest.hlc) > 0)) latest = m
      }
      return latest
    }
    const m = this.fields.get(entity + SEP + field)
    if (unseenBy(op, m)) return m
    const rec = this.fields.get(entity + SEP)
    if (unseenBy(op, rec)) return rec
    return undefined
  }

  /**
   * The clients that last wrote the field (and the record), or for a whole-record write, anything in
   * the record: the only entries of a base that concurrentWriter reads.
   */
  private lastWriters(entity: string, field: string, keyWide = false): Set<string> {
    const out = new Set<string>()
    if (field === '') {
      for (const k of this.keysOf(entity)) {
        const m = this.fields.get(k)
        if (m) out.add(m.client)
      }
      if (keyWide) for (const m of this.recordMetas(entity)) out.add(m.client)
      return out
    }
    const m = this.fields.get(entity + SEP + field)
    if (m) out.add(m.client)
    const rec = this.fields.get(entity + SEP)
    if (rec) out.add(rec.client)
    return out
  }

  /**
   * For a write of a whole top-level key: the latest write inside a record under the key that the op's
   * base had not seen (a drop of `cards` races with another device's edit of `cards.a.title`), and the
   * highest stamp written under the key (an op that has seen them all is stamped after them).
   */
  private recordWriters(op: Op): { unseen: ServerFieldMeta | undefined; top: string } {
    let unseen: ServerFieldMeta | undefined
    let top = ''
    for (const m of this.recordMetas(entityOf(op.path))) {
      top = maxStamp(top, topOf(m))
      if (unseenBy(op, m) && (!unseen || compareHlc(m.hlc, unseen.hlc) > 0)) unseen = m
    }
    return { unseen, top }
  }

  /** The field and record metas of every record under a top-level key. */
  private *recordMetas(key: string): Generator<ServerFieldMeta> {
    for (const e of this.recordsOf(key)) {
      for (const k of this.keysOf(e)) {
        const m = this.fields.get(k)
        if (m) yield m
      }
    }
  }

  /** The last whole write of the op's top-level key, when the key holds no collection now and the op had not seen it. */
  private keyWriteOver(op: Op, entity: string): ServerFieldMeta | undefined {
    if (isPlainObject(this.root[op.path[0] as string])) return undefined
    const m = this.fields.get(entity.slice(0, entity.indexOf('/')) + SEP)
    return unseenBy(op, m) ? m : undefined
  }

  /**
   * A whole top-level key was written: every record under it that the write changed (dropped, replaced,
   * or added) has it as its last writer, as a whole-record write would. So a later write inside such a
   * record that had not seen it is concurrent with it, and one into a record it dropped is superseded
   * (no partial record comes back). Returns whether any record was so covered.
   */
  private coverRecords(op: Op, key: string, before: unknown, m: ServerFieldMeta): boolean {
    const after = this.root[op.path[0] as string]
    const ids = new Set([...(isPlainObject(before) ? Object.keys(before) : []), ...(isPlainObject(after) ? Object.keys(after) : [])])
    let covered = false
    for (const id of ids) {
      const b = isPlainObject(before) && Object.hasOwn(before, id) ? before[id] : undefined
      const a = isPlainObject(after) && Object.hasOwn(after, id) ? after[id] : undefined
      if (b === a || deepEqual(b, a)) continue
      const e = entityOf([op.path[0]!, id])
      this.dropFieldMetas(e)
      const rec = e + SEP
      this.fields.set(rec, m)
      this.keysOf(e).add(rec)
      this.recordsOf(key).add(e)
      this.vv[e] = vvBump(this.vv[e], op.client, op.n)
      this.pruneVector(e)
      covered = true
    }
    return covered
  }

  /**
   * Keeps an entity's vector to the clients that last wrote something in it. Concurrency is decided
   * against those writes only, so the others' entries are dead weight: with a new client id per page
   * load, they grew by one per store that ever wrote the record (a soak: 109 per record, 480 KB of
   * vectors in a snapshot of 7.6 KB of state), in every snapshot and every base sent from one.
   */
  private pruneVector(entity: string): void {
    const v = this.vv[entity]
    if (!v || !hasMore(v, VECTOR_KEEP)) return
    const keep = this.lastWriters(entity, '')
    const out: VersionVector = {}
    for (const c in v) if (keep.has(c)) out[c] = v[c]!
    this.vv[entity] = out
  }

  /**
   * A whole-record write covers every field: their own metas go. Except, when it was merged by key with
   * writes it had not seen, the fields it left as they were (`keep`): their last writers are still the
   * ones a later op of those fields must have seen (or it is concurrent with them).
   */
  private dropFieldMetas(entity: string, keep?: Set<string>): void {
    const prefix = entity + SEP
    const keys = this.keysOf(entity)
    for (const k of [...keys]) {
      if (k === prefix || keep?.has(k.slice(prefix.length))) continue
      this.fields.delete(k)
      keys.delete(k)
    }
  }

  /** Field-meta keys per entity, so record-level checks cost the record's size, not the document's. */
  private index: Map<string, Set<string>> | undefined

  private keysOf(entity: string): Set<string> {
    const index = this.fieldIndex()
    let set = index.get(entity)
    if (!set) index.set(entity, (set = new Set()))
    return set
  }

  private fieldIndex(): Map<string, Set<string>> {
    if (!this.index) {
      this.index = new Map()
      for (const k of this.fields.keys()) {
        const e = k.slice(0, k.indexOf(SEP))
        let set = this.index.get(e)
        if (!set) this.index.set(e, (set = new Set()))
        set.add(k)
      }
    }
    return this.index
  }

  /** Record entities with field metas, per top-level key (entity names escape '/' in the key: the first '/' ends it). */
  private records: Map<string, Set<string>> | undefined

  private recordsOf(key: string): Set<string> {
    if (!this.records) {
      this.records = new Map()
      for (const e of this.fieldIndex().keys()) {
        const i = e.indexOf('/')
        if (i <= 0) continue
        let set = this.records.get(e.slice(0, i))
        if (!set) this.records.set(e.slice(0, i), (set = new Set()))
        set.add(e)
      }
    }
    let set = this.records.get(key)
    if (!set) this.records.set(key, (set = new Set()))
    return set
  }
}

/** The change as broadcast to clients: the log entry without the raw op. */
/**
 * The change as sent to syncing clients (broadcasts, catch-up, acks): without the raw op and without
 * `before`, which only the audit history needs. Smaller frames for every reader.
 */
export function toWire(e: LogEntry): Change {
  const { op: _op, before: _before, keep: _keep, records: _records, counted: _counted, removal: _removal, ...change } = e
  return change
}

export function toChange(e: LogEntry): Change {
  const { op: _op, keep: _keep, records: _records, counted: _counted, removal: _removal, ...change } = e
  return change
}

function seedCounter(before: unknown): PnCounter {
  const c = emptyCounter()
  if (typeof before === 'number' && before !== 0) return incrementCounter(c, '~', before)
  return c
}

function seedSet(before: unknown): AwSet {
  return Array.isArray(before) ? setApply(emptySet(), before, [], '0') : emptySet()
}

/**
 * How far ahead of the server's time a stamp may be before it is clamped (ms). Clients stamp with the
 * server's time learnt at their join, so an honest one is within a network delay of it; a clamped stamp
 * wins every race for this long and pins the clocks of those who receive it, so it is short: with a
 * minute, one write from a fast clock left a minute in which concurrent edits were ordered by counter
 * and client id instead of time (a time trial: the later edit won 6 times in 10).
 */
export const DEFAULT_MAX_DRIFT_MS = 5000

/** Entries a vector keeps before it is pruned to the entity's last writers (see pruneVector). */
const VECTOR_KEEP = 8

/** More than `n` keys (counted without building the list: this runs for every op). */
function hasMore(o: object, n: number): boolean {
  for (const _ in o) if (n-- <= 0) return true
  return false
}

/** The op as logged: the stamp used, and of its base only the entries its concurrency was decided on. */
function storedOp(op: Op, hlc: string, consulted: Set<string> | undefined): Op {
  let base = op.base
  if (consulted) {
    for (const c in op.base) {
      if (consulted.has(c)) continue
      base = {}
      for (const k in op.base) if (consulted.has(k)) base[k] = op.base[k]!
      break
    }
  }
  return hlc === op.hlc && base === op.base ? op : { ...op, hlc, base }
}

/** A write of this meta's author that the op's base had not seen (ops of one client are ordered). */
function unseenBy(op: Op, m: ServerFieldMeta | undefined): boolean {
  return m !== undefined && m.client !== op.client && vvGet(op.base, m.client) < m.n
}

/** Highest stamp written at or under this meta's field. */
function topOf(m: ServerFieldMeta | undefined): string {
  return m ? maxStamp(m.top ?? '', m.hlc) : ''
}

function maxStamp(a: string, b: string): string {
  return compareHlc(a, b) >= 0 ? a : b
}

/** Map entries copied per turn of the event loop by snapshot() (~5 ms). */
const COPY_SLICE = 20_000

export function wallOf(hlc: string): number | undefined {
  return decodeHlc(hlc)?.wall
}

export type { Path }
