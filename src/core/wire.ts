/*
 * The compact encoding of change records on the wire (server → client: broadcasts, join catch-up,
 * acknowledgements). A change travels as a positional array instead of an object with long keys:
 *
 *   [seq, opId, client, n, hlc, path, flags, at, value?, extra?]
 *
 * - `hlc` is `wall.counter` in base 36, plus `.node` only when the node is not `client` (it almost always
 *   is); a timestamp that is not in canonical form travels whole (it contains ':'). In a list of three
 *   or more changes the wall is relative to the message's base time `t` (its first change's `at`).
 * - `flags` = status index + 3 × policy index, + 32 when the result is a deletion (no value follows),
 *   + 64 × (1 + index of the change's user in the message's `u` table) when it has a user.
 * - `at` is the server time minus the timestamp's wall time (small, often 0).
 * - `path` is 0 when it equals the previous change's path in the same list (bursts on one field).
 * - `entity` is derived from `path`; `kind` from the flags.
 * - `extra` carries the rare fields by short keys: p proposed, q prev, r resolves, b before,
 *   w winner as [client, hlc, at - wall, user?].
 * - Broadcasts leave out `proposed`, `prev` and `winner` of superseded changes: readers only advance
 *   past them (nothing raises a conflict for a superseded op).
 *
 * A typical applied change is ~75 bytes of JSON instead of ~350. Ops (client → server) and their
 * answers have compact forms too (below). docs/PROTOCOL.md describes all of it.
 */
import { ZyncError, type WireError } from './errors'
import { decodeHlc, encodeHlc } from './hlc'
import { entityOf, isUnsafeSegment, type Path } from './path'
import type { Change, ChangesMessage, JoinResponse, Op, OpResult, OpsRequest, OpsResponse, OpStatus, WirePolicy } from './protocol'

export type WireChange = [seq: number, opId: string, client: string, n: number, hlc: string, path: Path | 0, flags: number, at: number, value?: unknown, extra?: WireExtra]

interface WireExtra {
  p?: unknown
  q?: unknown
  r?: string
  b?: unknown
  w?: [client: string, hlc: string, at: number, user?: string]
}

/** `zync:changes` as sent: `u` is the table of user ids the changes' flags point into. */
export interface WireChangesMessage {
  doc: string
  c: WireChange[]
  u?: string[]
  t?: number
}

/** A table of strings sent once per message (user ids, client ids), referenced by index. */
class Table {
  readonly list: string[] = []
  private readonly index = new Map<string, number>()
  of(value: string): number {
    let i = this.index.get(value)
    if (i === undefined) {
      i = this.list.length
      this.list.push(value)
      this.index.set(value, i)
    }
    return i
  }
}

const STATUSES: readonly OpStatus[] = ['applied', 'superseded', 'conflict']
const POLICIES: readonly WirePolicy[] = ['lww', 'local', 'remote', 'manual', 'counter', 'set', 'custom']
const DELETE = 32
const BASE36 = /^[0-9a-z]{1,11}$/
const SIGNED36 = /^-?[0-9a-z]{1,11}$/
const USER = 64

/** `wall.counter[.node]` in base 36, the wall relative to `t`; whole when not canonical. Returns the absolute wall. */
function packHlc(hlc: string, node: string, t = 0): [packed: string, wall: number] {
  const ts = decodeHlc(hlc)
  // Whole when not canonical, or when the node id has a ':' (the mark of a whole timestamp).
  if (!ts || ts.node.includes(':') || encodeHlc(ts) !== hlc) return [hlc, 0]
  return [`${(ts.wall - t).toString(36)}.${ts.counter.toString(36)}${ts.node === node ? '' : `.${ts.node}`}`, ts.wall]
}

function unpackHlc(packed: string, node: string, t = 0): [hlc: string, wall: number] {
  if (packed.includes(':')) return [packed, 0]
  const a = packed.indexOf('.')
  const b = packed.indexOf('.', a + 1)
  const w36 = packed.slice(0, a)
  const c36 = b < 0 ? packed.slice(a + 1) : packed.slice(a + 1, b)
  if (a < 0 || !SIGNED36.test(w36) || !BASE36.test(c36)) throw bad('timestamp')
  const wall = t + parseInt(w36, 36)
  const counter = parseInt(c36, 36)
  if (!Number.isSafeInteger(wall) || wall < 0 || !Number.isSafeInteger(counter) || (b >= 0 && b === packed.length - 1)) throw bad('timestamp')
  return [encodeHlc({ wall, counter, node: b < 0 ? node : packed.slice(b + 1) }), wall]
}

const bad = (what: string) => new ZyncError('BAD_REQUEST', `[zync] malformed change from the server (${what}); is the server on the same protocol version?`)

/** `users`: the message's user table; `t`: its base time (0: none). */
function encodeChange(c: Change, users: Table, t: number, trim: boolean, samePath = false): WireChange {
  const [hlc, wall] = packHlc(c.hlc, c.client, t)
  let flags = STATUSES.indexOf(c.status) + 3 * POLICIES.indexOf(c.policy) + (c.kind === 'delete' ? DELETE : 0)
  if (c.user !== undefined) flags += USER * (1 + users.of(c.user))
  const w: WireChange = [c.seq, c.opId, c.client, c.n, hlc, samePath ? 0 : c.path, flags, c.at - wall]
  const whole = !trim || c.status !== 'superseded'
  let x: WireExtra | undefined
  if (whole && 'proposed' in c) (x ??= {}).p = c.proposed
  if (whole && 'prev' in c) (x ??= {}).q = c.prev
  if (c.resolves !== undefined) (x ??= {}).r = c.resolves
  if ('before' in c) (x ??= {}).b = c.before
  if (whole && c.winner) {
    const [wh, ww] = packHlc(c.winner.hlc, c.winner.client, t)
    ;(x ??= {}).w = c.winner.user !== undefined ? [c.winner.client, wh, c.winner.at - ww, c.winner.user] : [c.winner.client, wh, c.winner.at - ww]
  }
  if (c.kind !== 'delete') w.push(c.value)
  else if (x) w.push(null)
  if (x) w.push(x)
  return w
}

function decodeChange(w: unknown, users: readonly string[] | undefined, previous?: Path, t = 0): Change {
  if (!Array.isArray(w) || w.length < 8) throw bad('shape')
  const [seq, opId, client, n, packed, wirePath, flags, atDelta] = w as WireChange
  if (typeof seq !== 'number' || typeof opId !== 'string' || typeof client !== 'string' || typeof n !== 'number' || typeof packed !== 'string') throw bad('fields')
  const path = wirePath === 0 && previous ? previous.slice() : wirePath
  if (!Array.isArray(path) || path.length === 0 || typeof flags !== 'number' || typeof atDelta !== 'number') throw bad('fields')
  const status = STATUSES[(flags & 31) % 3]
  const policy = POLICIES[Math.floor((flags & 31) / 3)]
  const userIndex = Math.floor(flags / USER) - 1
  const user = userIndex >= 0 ? users?.[userIndex] : undefined
  if (!status || !policy || (userIndex >= 0 && typeof user !== 'string')) throw bad('flags')
  const [hlc, wall] = unpackHlc(packed, client, t)
  const kind = flags & DELETE ? 'delete' : 'set'
  const c: Change = { seq, opId, client, n, hlc, entity: entityOf(path), path, kind, status, policy, at: wall + atDelta }
  if (user !== undefined) c.user = user
  if (kind === 'set') c.value = w[8]
  const x = w[9] as WireExtra | undefined
  if (x !== undefined) {
    if (x === null || typeof x !== 'object') throw bad('extra')
    if ('p' in x) c.proposed = x.p
    if ('q' in x) c.prev = x.q
    if (x.r !== undefined) c.resolves = x.r
    if ('b' in x) c.before = x.b
    if (x.w) {
      const [wc, wp, wa, wu] = x.w
      const [wh, ww] = unpackHlc(wp, wc, t)
      c.winner = { client: wc, hlc: wh, at: ww + wa, ...(wu !== undefined ? { user: wu } : {}) }
    }
  }
  return c
}

/**
 * Encodes a list of changes with its user table; `trim` for broadcasts (see above). `short`: the index a
 * change travels as instead (the short form of an ack's own changes, below), if any.
 */
function encodeList(changes: readonly Change[], trim: boolean): { c: WireChange[]; u?: string[]; t?: number }
function encodeList(changes: readonly Change[], trim: boolean, short: (c: Change) => number | undefined): { c: Array<WireChange | number>; u?: string[]; t?: number }
function encodeList(changes: readonly Change[], trim: boolean, short?: (c: Change) => number | undefined): { c: Array<WireChange | number>; u?: string[]; t?: number } {
  // A base time pays off from three changes on (it costs ~16 bytes, saves ~7 per change).
  const t = changes.length >= 3 && Number.isSafeInteger(changes[0]!.at) ? changes[0]!.at : 0
  const users = new Table()
  let last: Path | undefined
  const c = changes.map((x) => {
    const same = last !== undefined && samePath(last, x.path)
    last = x.path
    return short?.(x) ?? encodeChange(x, users, t, trim, same)
  })
  return { c, ...(users.list.length > 0 ? { u: users.list } : {}), ...(t ? { t } : {}) }
}

function samePath(a: Path, b: Path): boolean {
  return a.length === b.length && a.every((s, i) => s === b[i])
}

/** Decodes a list, resolving path back-references; `short` rebuilds an entry sent as a number (an ack's own change). */
function decodeList(list: readonly unknown[], users: readonly string[] | undefined, t: unknown, short?: (index: number) => Change): Change[] {
  if (t !== undefined && !Number.isSafeInteger(t)) throw bad('base time')
  const out: Change[] = []
  for (const w of list) out.push(typeof w === 'number' && short ? short(w) : decodeChange(w, users, out[out.length - 1]?.path, (t as number | undefined) ?? 0))
  return out
}

function userTable(u: unknown): string[] | undefined {
  if (u === undefined) return undefined
  if (!Array.isArray(u) || !u.every((x) => typeof x === 'string')) throw bad('user table')
  return u
}

/** One change alone (with its own user table), e.g. for tests and tools. */
export function encodeOneChange(c: Change): { c: WireChange; u?: string[] } {
  const { c: [w], u } = encodeList([c], false)
  return u ? { c: w!, u } : { c: w! }
}

export function decodeOneChange(e: { c: unknown; u?: unknown }): Change {
  return decodeChange(e.c, userTable(e.u))
}

export function encodeChangesMessage(msg: ChangesMessage): WireChangesMessage {
  return { doc: msg.doc, ...encodeList(msg.changes, true) }
}

export function decodeChangesMessage(msg: unknown): ChangesMessage {
  const m = msg as Partial<WireChangesMessage> | null
  if (!m || typeof m.doc !== 'string' || !Array.isArray(m.c)) throw bad('message')
  const users = userTable(m.u)
  return { doc: m.doc, changes: decodeList(m.c, users, m.t) }
}

/** Join answer on the wire: `changes` travel encoded as `c`, with their user table `u`. */
export type WireJoinResponse = Exclude<JoinResponse, { ok: true }> | (Omit<Extract<JoinResponse, { ok: true }>, 'changes'> & { c: WireChange[]; u?: string[]; t?: number })

export function encodeJoinResponse(r: JoinResponse): WireJoinResponse {
  if (!r.ok) return r
  const { changes, ...rest } = r
  return { ...rest, ...encodeList(changes, false) }
}

/**
 * Decodes a join answer. Protocol 3 servers send a successful one as bytes (UTF-8 JSON: a Buffer in
 * Node, an ArrayBuffer in browsers); refusals, and answers to protocol 2, are objects.
 */
export function decodeJoinResponse(r: unknown): JoinResponse {
  if (r instanceof ArrayBuffer || ArrayBuffer.isView(r)) {
    try {
      r = JSON.parse(new TextDecoder().decode(r)) as unknown
    } catch {
      throw bad('join answer')
    }
  }
  const w = r as WireJoinResponse | null
  if (!w || typeof w !== 'object') throw bad('join answer')
  if (!w.ok) return w
  const { c, u, t, ...rest } = w
  if (!Array.isArray(c)) throw bad('join answer')
  const users = userTable(u)
  return { ...rest, changes: decodeList(c, users, t) }
}

type WireOpResult = Exclude<OpResult, { ok: true }> | (Omit<Extract<OpResult, { ok: true }>, 'change'> & { c?: WireChange })
/** Ops answer on the wire: a result's change travels as `c`; `u` is the user table of all of them. */
export type WireOpsResponse = Exclude<OpsResponse, { ok: true }> | (Omit<Extract<OpsResponse, { ok: true }>, 'results'> & { results: WireOpResult[]; u?: string[] })

export function encodeOpsResponse(r: OpsResponse): WireOpsResponse {
  if (!r.ok) return r
  const users = new Table()
  const results = r.results.map((x): WireOpResult => {
    if (!x.ok || !x.change) return x
    const { change, ...rest } = x
    return { ...rest, c: encodeChange(change, users, 0, false) }
  })
  return users.list.length > 0 ? { ...r, results, u: users.list } : { ...r, results }
}

/**
 * Decodes an ops answer; `sent` is the request's ops (or only their ids), which a compact answer leaves
 * out. The short form of own changes needs the ops.
 */
export function decodeOpsResponse(r: unknown, sent?: readonly Op[] | readonly string[]): OpsResponse {
  const w = r as WireOpsResponse | WireCompactOpsResponse | null
  if (!w || typeof w !== 'object') throw bad('ops answer')
  if (!w.ok) return w
  if ('r' in w) {
    if (!sent) throw bad('compact ops answer without the request')
    return decodeCompactOpsResponse(w, sent)
  }
  if (!Array.isArray(w.results)) throw bad('ops answer')
  const { u, ...rest } = w
  const users = userTable(u)
  return {
    ...rest,
    results: w.results.map((x) => {
      if (!x.ok || x.c === undefined) return x as OpResult
      const { c, ...more } = x
      return { ...more, change: decodeChange(c, users) }
    }),
  }
}

// ---- ops, client → server ------------------------------------------------------------------------
//
//   { doc, o: [[id, client, n, hlc, op, path, base, value?, extra?], ...], k: [clientId, ...] }
//
// `client` is an index into `k` (a batch holds the ops of one client, or a few after adopting rows);
// `base` is the version vector as flat pairs [client index, counter, ...], its client ids in `k` too
// (a vector names every writer of the entity: as strings they would dominate the op);
// `hlc` is packed as in changes, relative to the op's client; `op` is 0 add, 1 replace, 2 remove;
// `path` is 0 when equal to the previous op's; `value` is present unless the op is a remove (null
// placeholder when `extra` follows); `extra` holds the optional fields: p policy, d delta, a added,
// r removed, i idKey, x removedIds, v prev, s resolves. The server decodes each op to the object form
// and validates it exactly like an object op (a malformed one is refused on its own).

export type WireOp = [id: string, client: number, n: number, hlc: string, op: 0 | 1 | 2, path: Path | 0, base: number[], value?: unknown, extra?: WireOpExtra]

interface WireOpExtra {
  p?: Op['policy']
  d?: number
  a?: unknown[]
  r?: unknown[]
  i?: string
  x?: Array<string | number>
  v?: unknown
  s?: string
}

export interface WireOpsRequest {
  doc: string
  o: WireOp[]
  k: string[]
  /** 1: the client takes its own changes applied as sent in the short form (below). Sent only to a server whose join answer offered it (`shortAcks`). */
  s?: 1
}

const OP_KINDS = ['add', 'replace', 'remove'] as const

export function encodeOpsRequest(req: OpsRequest, shortAcks = false): WireOpsRequest {
  const clients = new Table()
  let last: Path | undefined
  const o = req.ops.map((op): WireOp => {
    const ci = clients.of(op.client)
    const same = last !== undefined && samePath(last, op.path)
    last = op.path
    const base: number[] = []
    for (const [c, n] of Object.entries(op.base)) base.push(clients.of(c), n)
    const w: WireOp = [op.id, ci, op.n, packHlc(op.hlc, op.client)[0], OP_KINDS.indexOf(op.op) as 0 | 1 | 2, same ? 0 : op.path, base]
    let x: WireOpExtra | undefined
    if (op.policy !== undefined) (x ??= {}).p = op.policy
    if (op.delta !== undefined) (x ??= {}).d = op.delta
    if (op.added !== undefined) (x ??= {}).a = op.added
    if (op.removed !== undefined) (x ??= {}).r = op.removed
    if (op.idKey !== undefined) (x ??= {}).i = op.idKey
    if (op.removedIds !== undefined) (x ??= {}).x = op.removedIds
    if ('prev' in op) (x ??= {}).v = op.prev
    if (op.resolves !== undefined) (x ??= {}).s = op.resolves
    if (op.op !== 'remove') w.push(op.value)
    else if (x) w.push(null)
    if (x) w.push(x)
    return w
  })
  return shortAcks ? { doc: req.doc, o, k: clients.list, s: 1 } : { doc: req.doc, o, k: clients.list }
}

const EXTRA_KEYS: ReadonlyArray<[keyof WireOpExtra, keyof Op]> = [
  ['p', 'policy'],
  ['d', 'delta'],
  ['a', 'added'],
  ['r', 'removed'],
  ['i', 'idKey'],
  ['x', 'removedIds'],
  ['v', 'prev'],
  ['s', 'resolves'],
]

/**
 * One compact op back to the object form, for validation. Builds a fresh object from known positions
 * and keys only; types are left to the op schema. `previous` is the path of the op before it.
 */
export function decodeOp(w: unknown, clients: readonly string[], previous: unknown): Record<string, unknown> {
  if (!Array.isArray(w) || w.length < 7 || w.length > 9) throw new ZyncError('BAD_REQUEST', '[zync] a compact op is an array of 7 to 9 items')
  const [id, ci, n, packed, kind, wirePath, base, value, extra] = w as unknown[]
  const client = typeof ci === 'number' && Number.isInteger(ci) ? clients[ci] : undefined
  if (typeof client !== 'string') throw new ZyncError('BAD_REQUEST', '[zync] op client index outside the batch client table')
  if (typeof packed !== 'string') throw new ZyncError('BAD_REQUEST', '[zync] op timestamp must be a string')
  let hlc: string
  try {
    hlc = unpackHlc(packed, client)[0]
  } catch {
    throw new ZyncError('BAD_REQUEST', '[zync] malformed op timestamp')
  }
  const op = OP_KINDS[kind as number]
  if (typeof kind !== 'number' || op === undefined) throw new ZyncError('BAD_REQUEST', '[zync] op kind must be 0, 1 or 2')
  const path = wirePath === 0 ? (Array.isArray(previous) ? previous.slice() : undefined) : wirePath
  if (!Array.isArray(base) || base.length % 2 !== 0) throw new ZyncError('BAD_REQUEST', '[zync] op base must be [client index, counter, ...] pairs')
  // Keys come from the client table, which the envelope schema has already checked (no unsafe keys).
  const vector: Record<string, unknown> = {}
  for (let i = 0; i < base.length; i += 2) {
    const key = typeof base[i] === 'number' && Number.isInteger(base[i]) ? clients[base[i] as number] : undefined
    if (typeof key !== 'string') throw new ZyncError('BAD_REQUEST', '[zync] op base names a client outside the batch client table')
    if (isUnsafeSegment(key)) throw new ZyncError('UNSAFE_PATH', '[zync] client id not allowed')
    if (Object.hasOwn(vector, key)) throw new ZyncError('BAD_REQUEST', '[zync] op base names a client twice')
    vector[key] = base[i + 1]
  }
  const out: Record<string, unknown> = { id, client, n, hlc, op, path, base: vector }
  if (op !== 'remove') out.value = value
  if (extra !== undefined && extra !== null) {
    if (typeof extra !== 'object' || Array.isArray(extra)) throw new ZyncError('BAD_REQUEST', '[zync] op extra must be an object')
    for (const k of Object.keys(extra)) if (!EXTRA_KEYS.some(([short]) => short === k)) throw new ZyncError('BAD_REQUEST', `[zync] unknown op field ${JSON.stringify(k.slice(0, 32))}`)
    for (const [short, long] of EXTRA_KEYS) if (Object.hasOwn(extra, short)) out[long] = (extra as Record<string, unknown>)[short]
  }
  return out
}

// ---- ops answers, compact ------------------------------------------------------------------------
//
// A compact request is answered positionally: `r[i]` answers `o[i]`. A plain applied op is just its
// seq, a superseded one minus its seq; anything else is the result object without its id (the client
// knows it by position).
//
// `x` carries the batch's own changes (when they come in the ack rather than a broadcast). A request
// with `s: 1` takes the short form of them: a change that is its op applied as sent (applied, same
// stamp, the op's own value as the resulting value: no merge, no counter or set) travels as the index
// `i` of that op in the request. The client rebuilds it from its op, its seq `r[i]`, and `x.s`:
// `[at, user?]`, the server time and user shared by every change of one batch.

type CompactResult = number | { ok: true; seq: number; status: OpStatus; c?: WireChange; duplicate?: boolean } | WireError
/** `x`: the batch's own changes (a change list with its tables) when they come in the ack; `s`: the short form's shared fields. */
export type WireCompactOpsResponse = { ok: true; seq: number; r: CompactResult[]; u?: string[]; x?: { c: Array<WireChange | number>; u?: string[]; t?: number; s?: [at: number, user?: string] } }

/**
 * `results` must be in request order. `sent`: the request's ops as the server applied them, when it
 * asked for the short form of its own changes.
 */
export function encodeCompactOpsResponse(r: Extract<OpsResponse, { ok: true }>, sent?: readonly Op[]): WireCompactOpsResponse {
  const users = new Table()
  const out = r.results.map((x): CompactResult => {
    if (x.ok && !x.change && !x.duplicate && x.status === 'applied') return x.seq
    if (x.ok && !x.change && !x.duplicate && x.status === 'superseded') return -x.seq
    if (!x.ok) {
      const { id: _id, ...err } = x
      return err
    }
    const { id: _id, change, ...more } = x
    return change ? { ...more, c: encodeChange(change, users, 0, false) } : more
  })
  const res: WireCompactOpsResponse = { ok: true, seq: r.seq, r: out }
  if (users.list.length > 0) res.u = users.list
  if (r.changes) res.x = sent ? encodeOwnList(r.changes, r.results, out, sent) : encodeList(r.changes, false)
  return res
}

/** The ack's own changes with those applied as sent as their op's index (see above); the rest as in encodeList. */
function encodeOwnList(changes: readonly Change[], results: readonly OpResult[], out: readonly CompactResult[], sent: readonly Op[]): NonNullable<WireCompactOpsResponse['x']> {
  const at = changes[0]!.at
  const user = changes[0]!.user
  const index = new Map<string, number>()
  results.forEach((x, i) => {
    if (x.ok && typeof out[i] === 'number' && (out[i] as number) >= 0) index.set(x.id, i)
  })
  const ops = new Map<string, Op>()
  for (const op of sent) ops.set(op.id, op)
  let short = false
  const res: NonNullable<WireCompactOpsResponse['x']> = encodeList(changes, false, (x) => {
    const i = index.get(x.opId)
    const op = ops.get(x.opId)
    if (i === undefined || !op || out[i] !== x.seq || !asSent(x, op) || x.at !== at || x.user !== user) return undefined
    short = true
    return i
  })
  if (short) res.s = user !== undefined ? [at, user] : [at]
  return res
}

/** The change is `op` applied as its author sent it: what rebuildChange makes of the op. */
function asSent(c: Change, op: Op): boolean {
  if (c.status !== 'applied' || c.opId !== op.id || c.client !== op.client || c.n !== op.n || c.hlc !== op.hlc || c.policy !== (op.policy ?? 'lww') || c.resolves !== op.resolves) return false
  if ('proposed' in c || 'prev' in c || c.winner !== undefined || 'before' in c || !samePath(c.path, op.path)) return false
  return op.op === 'remove' ? c.kind === 'delete' : c.kind === 'set' && c.value === op.value
}

/** The change of an op applied as sent (the short form): `seq` and `s` from the answer, the rest from the op. */
function rebuildChange(op: Op, seq: unknown, s: unknown): Change {
  if (typeof seq !== 'number' || seq < 0 || !Array.isArray(s) || typeof s[0] !== 'number' || (s[1] !== undefined && typeof s[1] !== 'string')) throw bad('own change')
  const c: Change = { seq, opId: op.id, client: op.client, n: op.n, hlc: op.hlc, entity: entityOf(op.path), path: op.path.slice(), kind: op.op === 'remove' ? 'delete' : 'set', status: 'applied', policy: op.policy ?? 'lww', at: s[0] }
  if (s[1] !== undefined) c.user = s[1] as string
  // What the server holds is the value as JSON carried it: a copy, so the store's own objects stay the app's.
  if (op.op !== 'remove') c.value = op.value !== null && typeof op.value === 'object' ? JSON.parse(JSON.stringify(op.value)) : Object.is(op.value, -0) ? 0 : op.value
  if (op.resolves !== undefined) c.resolves = op.resolves
  return c
}

function decodeCompactOpsResponse(w: WireCompactOpsResponse, sent: readonly Op[] | readonly string[]): OpsResponse {
  if (!Array.isArray(w.r) || w.r.length !== sent.length) throw bad('ops answer length')
  const users = userTable(w.u)
  const results = w.r.map((x, i): OpResult => {
    const s = sent[i]!
    const id = typeof s === 'string' ? s : s.id
    if (typeof x === 'number') return x >= 0 ? { id, ok: true, seq: x, status: 'applied' } : { id, ok: true, seq: -x, status: 'superseded' }
    if (!x || typeof x !== 'object') throw bad('ops answer')
    if (!x.ok) return { ...x, id }
    const { c, ...more } = x
    return c === undefined ? { ...more, id } : { ...more, id, change: decodeChange(c, users) }
  })
  if (w.x === undefined) return { ok: true, seq: w.seq, results }
  if (!w.x || typeof w.x !== 'object' || !Array.isArray(w.x.c)) throw bad('ops answer changes')
  const x = w.x
  const changes = decodeList(x.c, userTable(x.u), x.t, (e) => {
    const op = sent[e]
    if (!Number.isInteger(e) || op === undefined || typeof op === 'string') throw bad('own change index')
    return rebuildChange(op, w.r[e], x.s)
  })
  return { ok: true, seq: w.seq, results, changes }
}
