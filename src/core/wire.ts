/*
 * The compact encoding of change records on the wire (server → client: broadcasts, join catch-up,
 * acknowledgements). A change travels as a positional array instead of an object with long keys:
 *
 *   [seq, opId, client, n, hlc, path, flags, at, value?, extra?]
 *
 * - `hlc` is `wall.counter` in base 36, plus `.node` only when the node is not `client` (it almost always
 *   is); a timestamp that is not in canonical form travels whole (it contains ':').
 * - `flags` = status index + 3 × policy index, + 32 when the result is a deletion (no value follows).
 * - `at` is the server time minus the timestamp's wall time (small, often 0).
 * - `entity` is derived from `path`; `kind` from the flags.
 * - `extra` carries the rare fields by short keys: u user, p proposed, q prev, r resolves, b before,
 *   w winner as [client, hlc, at - wall, user?].
 *
 * A typical applied change is ~100 bytes of JSON instead of ~350. docs/PROTOCOL.md describes it.
 */
import { ZyncError } from './errors'
import { decodeHlc, encodeHlc } from './hlc'
import { entityOf, type Path } from './path'
import type { Change, ChangesMessage, JoinResponse, OpResult, OpsResponse, OpStatus, WirePolicy } from './protocol'

export type WireChange = [seq: number, opId: string, client: string, n: number, hlc: string, path: Path, flags: number, at: number, value?: unknown, extra?: WireExtra]

interface WireExtra {
  u?: string
  p?: unknown
  q?: unknown
  r?: string
  b?: unknown
  w?: [client: string, hlc: string, at: number, user?: string]
}

/** `zync:changes` as sent. */
export interface WireChangesMessage {
  doc: string
  c: WireChange[]
}

const STATUSES: readonly OpStatus[] = ['applied', 'superseded', 'conflict']
const POLICIES: readonly WirePolicy[] = ['lww', 'local', 'remote', 'manual', 'counter', 'set', 'custom']
const DELETE = 32

function packHlc(hlc: string, node: string): [packed: string, wall: number] {
  const t = decodeHlc(hlc)
  // Whole when not canonical, or when the node id has a ':' (the mark of a whole timestamp).
  if (!t || t.node.includes(':') || encodeHlc(t) !== hlc) return [hlc, 0]
  return [`${t.wall.toString(36)}.${t.counter.toString(36)}${t.node === node ? '' : `.${t.node}`}`, t.wall]
}

function unpackHlc(packed: string, node: string): [hlc: string, wall: number] {
  if (packed.includes(':')) return [packed, 0]
  const a = packed.indexOf('.')
  const b = packed.indexOf('.', a + 1)
  const wall = parseInt(packed.slice(0, a), 36)
  const counter = parseInt(b < 0 ? packed.slice(a + 1) : packed.slice(a + 1, b), 36)
  if (a < 0 || !Number.isSafeInteger(wall) || !Number.isSafeInteger(counter)) throw bad('timestamp')
  return [encodeHlc({ wall, counter, node: b < 0 ? node : packed.slice(b + 1) }), wall]
}

const bad = (what: string) => new ZyncError('BAD_REQUEST', `[zync] malformed change from the server (${what}); is the server on the same protocol version?`)

export function encodeChange(c: Change): WireChange {
  const [hlc, wall] = packHlc(c.hlc, c.client)
  const flags = STATUSES.indexOf(c.status) + 3 * POLICIES.indexOf(c.policy) + (c.kind === 'delete' ? DELETE : 0)
  const w: WireChange = [c.seq, c.opId, c.client, c.n, hlc, c.path, flags, c.at - wall]
  let x: WireExtra | undefined
  if (c.user !== undefined) (x ??= {}).u = c.user
  if ('proposed' in c) (x ??= {}).p = c.proposed
  if ('prev' in c) (x ??= {}).q = c.prev
  if (c.resolves !== undefined) (x ??= {}).r = c.resolves
  if ('before' in c) (x ??= {}).b = c.before
  if (c.winner) {
    const [wh, ww] = packHlc(c.winner.hlc, c.winner.client)
    ;(x ??= {}).w = c.winner.user !== undefined ? [c.winner.client, wh, c.winner.at - ww, c.winner.user] : [c.winner.client, wh, c.winner.at - ww]
  }
  if (c.kind !== 'delete') w.push(c.value)
  else if (x) w.push(null)
  if (x) w.push(x)
  return w
}

export function decodeChange(w: unknown): Change {
  if (!Array.isArray(w) || w.length < 8) throw bad('shape')
  const [seq, opId, client, n, packed, path, flags, atDelta] = w as WireChange
  if (typeof seq !== 'number' || typeof opId !== 'string' || typeof client !== 'string' || typeof n !== 'number' || typeof packed !== 'string') throw bad('fields')
  if (!Array.isArray(path) || path.length === 0 || typeof flags !== 'number' || typeof atDelta !== 'number') throw bad('fields')
  const status = STATUSES[(flags & 31) % 3]
  const policy = POLICIES[Math.floor((flags & 31) / 3)]
  if (!status || !policy) throw bad('flags')
  const [hlc, wall] = unpackHlc(packed, client)
  const kind = flags & DELETE ? 'delete' : 'set'
  const c: Change = { seq, opId, client, n, hlc, entity: entityOf(path), path, kind, status, policy, at: wall + atDelta }
  if (kind === 'set') c.value = w[8]
  const x = w[9] as WireExtra | undefined
  if (x !== undefined) {
    if (x === null || typeof x !== 'object') throw bad('extra')
    if (x.u !== undefined) c.user = x.u
    if ('p' in x) c.proposed = x.p
    if ('q' in x) c.prev = x.q
    if (x.r !== undefined) c.resolves = x.r
    if ('b' in x) c.before = x.b
    if (x.w) {
      const [wc, wp, wa, wu] = x.w
      const [wh, ww] = unpackHlc(wp, wc)
      c.winner = { client: wc, hlc: wh, at: ww + wa, ...(wu !== undefined ? { user: wu } : {}) }
    }
  }
  return c
}

export function encodeChangesMessage(msg: ChangesMessage): WireChangesMessage {
  return { doc: msg.doc, c: msg.changes.map(encodeChange) }
}

export function decodeChangesMessage(msg: unknown): ChangesMessage {
  const m = msg as Partial<WireChangesMessage> | null
  if (!m || typeof m.doc !== 'string' || !Array.isArray(m.c)) throw bad('message')
  return { doc: m.doc, changes: m.c.map(decodeChange) }
}

/** Join answer on the wire: `changes` travel encoded as `c`. */
export type WireJoinResponse = Exclude<JoinResponse, { ok: true }> | (Omit<Extract<JoinResponse, { ok: true }>, 'changes'> & { c: WireChange[] })

export function encodeJoinResponse(r: JoinResponse): WireJoinResponse {
  if (!r.ok) return r
  const { changes, ...rest } = r
  return { ...rest, c: changes.map(encodeChange) }
}

export function decodeJoinResponse(r: unknown): JoinResponse {
  const w = r as WireJoinResponse | null
  if (!w || typeof w !== 'object') throw bad('join answer')
  if (!w.ok) return w
  const { c, ...rest } = w
  if (!Array.isArray(c)) throw bad('join answer')
  return { ...rest, changes: c.map(decodeChange) }
}

type WireOpResult = Exclude<OpResult, { ok: true }> | (Omit<Extract<OpResult, { ok: true }>, 'change'> & { c?: WireChange })
export type WireOpsResponse = Exclude<OpsResponse, { ok: true }> | (Omit<Extract<OpsResponse, { ok: true }>, 'results'> & { results: WireOpResult[] })

export function encodeOpsResponse(r: OpsResponse): WireOpsResponse {
  if (!r.ok) return r
  return {
    ...r,
    results: r.results.map((x) => {
      if (!x.ok || !x.change) return x
      const { change, ...rest } = x
      return { ...rest, c: encodeChange(change) }
    }),
  }
}

export function decodeOpsResponse(r: unknown): OpsResponse {
  const w = r as WireOpsResponse | null
  if (!w || typeof w !== 'object') throw bad('ops answer')
  if (!w.ok) return w
  if (!Array.isArray(w.results)) throw bad('ops answer')
  return {
    ...w,
    results: w.results.map((x) => {
      if (!x.ok || x.c === undefined) return x as OpResult
      const { c, ...rest } = x
      return { ...rest, change: decodeChange(c) }
    }),
  }
}
