// Hostile input: a catalogue of malicious frames, a seeded fuzzer, and raw engine.io / WebSocket
// garbage. Every refusal must be a typed answer, nothing may be applied, the server must stay up for
// everyone else, Object.prototype must stay clean and no document may leak into another.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Socket } from 'socket.io-client'
import { encodeHlc } from '../../src/core/hlc'
import { createSyncServer, type SyncServer, type SyncServerOptions, type ZyncUser } from '../../src/server/index'
import { ask, connectRaw, makeOp } from './helpers'

const CODES = new Set([
  'BAD_REQUEST', 'UNKNOWN_EVENT', 'UNSAFE_PATH', 'TOO_DEEP', 'TOO_LARGE', 'BAD_VECTOR', 'CLOCK_SKEW', 'UNKNOWN_HISTORY', 'CLIENT_MISMATCH', 'SHAPE_MISMATCH',
  'UNAUTHENTICATED', 'FORBIDDEN', 'RATE_LIMITED', 'PROTOCOL_VERSION', 'NOT_JOINED', 'INTERNAL', 'DISCONNECTED',
])

const USERS: Record<string, ZyncUser> = {
  't-alice': { id: 'alice', name: 'Alice' },
  't-bob': { id: 'bob', name: 'Bob' },
  't-mallory': { id: 'mallory', name: 'Mallory' },
}

/** Only bob may touch 'secret'; everyone may touch the h-* documents. */
const options: SyncServerOptions = {
  port: 0,
  storage: { kind: 'memory' },
  logLevel: 'silent',
  authenticate: ({ auth }) => {
    const u = typeof auth.token === 'string' ? USERS[auth.token] : undefined
    if (!u) throw new Error('bad token')
    return u
  },
  authorize: (user, doc) => (doc === 'secret' ? user.id === 'bob' : doc.startsWith('h-')),
}

type Answer = { ok: boolean; code?: string; message?: string; retryable?: boolean; opId?: string; results?: Array<Record<string, unknown>> }

function expectTyped(a: unknown, what: string): asserts a is { ok: false; code: string; message: string } {
  const w = a as Answer
  expect(w, what).toBeTypeOf('object')
  expect(w.ok, what).toBe(false)
  expect(CODES.has(w.code!), `${what}: code ${w.code}`).toBe(true)
  expect(typeof w.message === 'string' && w.message.startsWith('[zync]'), `${what}: message ${w.message}`).toBe(true)
  expect(typeof w.retryable, what).toBe('boolean')
}

/** The first refusal in an answer: the message itself, or the first refused op in it. */
function refusal(a: Answer): Answer | undefined {
  if (!a.ok) return a
  // Object-form requests are answered with `results`; compact ones positionally in `r`.
  const list = (a.results ?? (a as { r?: unknown[] }).r ?? []) as Array<{ ok?: boolean }>
  return list.find((r) => typeof r === 'object' && r?.ok === false) as Answer | undefined
}

const protoNames = () => [Object.getOwnPropertyNames(Object.prototype).sort().join(), Object.getOwnPropertyNames(Array.prototype).sort().join()]
function expectCleanPrototypes(before: string[]) {
  expect(protoNames()).toEqual(before)
  const probe = {} as Record<string, unknown>
  for (const k of ['polluted', 'isAdmin', 'x', 'a', 'evil']) expect(probe[k], k).toBeUndefined()
}

const hlcNow = (node: string) => encodeHlc({ wall: Date.now(), counter: 0, node })
const deep = (levels: number): unknown => {
  let v: unknown = 'bottom'
  for (let i = 0; i < levels; i++) v = { d: v }
  return v
}
const manyKeys = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]))

let server: SyncServer
let alice: Socket
let bob: Socket
let bystander: Socket
const bystanderSaw: unknown[] = []
let protos: string[]

beforeAll(async () => {
  protos = protoNames()
  server = await createSyncServer({ ...options, limits: { messagesPerSecond: 1e6, opsPerSecond: 1e6, bytesPerSecond: 1e9, presencePerSecond: 1e6, joinsPerSecond: 1e6, docsPerSocket: 1e6, historyPerSecond: 1e9 } })
  alice = await connectRaw(server.url, { auth: { token: 't-alice' } })
  bob = await connectRaw(server.url, { auth: { token: 't-bob' } })
  bystander = await connectRaw(server.url, { auth: { token: 't-bob' } })
  bystander.on('zync:changes', (m) => bystanderSaw.push(m))
  expect((await ask(bob, 'zync:join', { v: 2, doc: 'secret', client: 'cb-secret', since: 0 })).ok).toBe(true)
  const secret = await ask<Answer>(bob, 'zync:ops', { doc: 'secret', ops: [makeOp('cb-secret', 1, ['vault', 'code'], 'TOPSECRET')] })
  expect(secret.results?.[0]?.ok).toBe(true)
  for (const [s, c] of [[alice, 'ca'], [bob, 'cb'], [bystander, 'cz']] as const) expect((await ask(s, 'zync:join', { v: 2, doc: 'h-main', client: c, since: 0 })).ok).toBe(true)
  expect((await ask<Answer>(alice, 'zync:ops', { doc: 'h-main', ops: [makeOp('ca', 1, ['cards', 'a'], { title: 'ok' })] })).results?.[0]?.ok).toBe(true)
  expect((await ask<Answer>(bob, 'zync:ops', { doc: 'h-main', ops: [makeOp('cb', 1, ['cards', 'b'], { title: 'ok' })] })).results?.[0]?.ok).toBe(true)
})

afterAll(async () => {
  for (const s of [alice, bob, bystander]) s?.disconnect()
  await server?.close()
})

async function expectAlive() {
  const health = await fetch(`${server.url}/healthz`)
  expect(health.status).toBe(200)
  expect(bystander.connected).toBe(true)
  const s = await connectRaw(server.url, { auth: { token: 't-alice' } })
  try {
    expect((await ask(s, 'zync:join', { v: 2, doc: 'h-alive', client: `alive-${Math.random()}`, since: 0 })).ok).toBe(true)
  } finally {
    s.disconnect()
  }
}

// ---- a catalogue of hostile frames ------------------------------------------------------------

interface Case {
  name: string
  event?: string
  /** Arguments after the event name (an ack is appended). */
  args: () => unknown[]
  code: string
  as?: 'alice' | 'bob'
}

const op = (over: Record<string, unknown> = {}, drop: string[] = []) => {
  const o: Record<string, unknown> = { ...makeOp('ca', 2, ['cards', 'x'], { title: 'evil' }), ...over }
  for (const k of drop) delete o[k]
  return o
}
const ops = (...list: unknown[]) => [{ doc: 'h-main', ops: list }]
/** A compact op (core/wire.ts): [id, client index, n, hlc, kind, path, base, value?, extra?]. */
const cop = (over: Partial<{ id: unknown; ci: unknown; n: unknown; hlc: unknown; kind: unknown; path: unknown; base: unknown; value: unknown }> = {}, extra?: unknown) => {
  const o = makeOp('ca', 2, ['cards', 'x'], { title: 'evil' })
  const w = [over.id ?? o.id, over.ci ?? 0, over.n ?? o.n, over.hlc ?? o.hlc, over.kind ?? 1, 'path' in over ? over.path : o.path, over.base ?? [], 'value' in over ? over.value : o.value]
  if (extra !== undefined) w.push(extra)
  return w
}
const cops = (list: unknown[], k: unknown[] = ['ca']) => [{ doc: 'h-main', o: list, k }]

const CASES: Case[] = [
  // message shapes
  { name: 'message is a string', args: () => ['hello'], code: 'BAD_REQUEST' },
  { name: 'message is an array', args: () => [[]], code: 'BAD_REQUEST' },
  { name: 'message is null', args: () => [null], code: 'BAD_REQUEST' },
  { name: 'message is a number', args: () => [42], code: 'BAD_REQUEST' },
  { name: 'message is binary', args: () => [Buffer.from('{"doc":"h-main"}')], code: 'BAD_REQUEST' },
  { name: 'missing doc', args: () => [{ ops: [op()] }], code: 'BAD_REQUEST' },
  { name: 'missing ops', args: () => [{ doc: 'h-main' }], code: 'BAD_REQUEST' },
  { name: 'extra top-level field', args: () => [{ doc: 'h-main', ops: [op()], admin: true }], code: 'BAD_REQUEST' },
  { name: 'empty batch', args: () => [{ doc: 'h-main', ops: [] }], code: 'BAD_REQUEST' },
  { name: 'batch over 1000 ops', args: () => ops(...Array.from({ length: 1001 }, (_, i) => op({ id: `big${i}`, n: i + 2 }))), code: 'TOO_LARGE' },
  { name: 'two arguments', args: () => [{ doc: 'h-main', ops: [op()] }, 'extra'], code: 'BAD_REQUEST' },
  { name: 'unknown event', event: 'zync:drop', args: () => [{ doc: 'h-main' }], code: 'UNKNOWN_EVENT' },
  { name: 'unknown event admin', event: 'admin:eval', args: () => ['process.exit()'], code: 'UNKNOWN_EVENT' },
  { name: 'event named __proto__', event: '__proto__', args: () => [{}], code: 'UNKNOWN_EVENT' },
  { name: 'event named constructor', event: 'constructor', args: () => [{}], code: 'UNKNOWN_EVENT' },
  // join
  { name: 'join: wrong protocol version', event: 'zync:join', args: () => [{ v: 999, doc: 'h-main', client: 'ca', since: 0 }], code: 'PROTOCOL_VERSION' },
  { name: 'join: negative since', event: 'zync:join', args: () => [{ v: 2, doc: 'h-main', client: 'ca', since: -1 }], code: 'BAD_REQUEST' },
  { name: 'join: since is a string', event: 'zync:join', args: () => [{ v: 2, doc: 'h-main', client: 'ca', since: '0' }], code: 'BAD_REQUEST' },
  { name: 'join: doc id with spaces', event: 'zync:join', args: () => [{ v: 2, doc: 'h main', client: 'ca', since: 0 }], code: 'BAD_REQUEST' },
  { name: 'join: doc id over 256 chars', event: 'zync:join', args: () => [{ v: 2, doc: 'h-' + 'x'.repeat(300), client: 'ca', since: 0 }], code: 'TOO_LARGE' },
  { name: 'join: doc id __proto__', event: 'zync:join', args: () => [{ v: 2, doc: '__proto__', client: 'ca', since: 0 }], code: 'UNSAFE_PATH' },
  { name: 'join: a document the user may not touch', event: 'zync:join', args: () => [{ v: 2, doc: 'secret', client: 'ca', since: 0 }], code: 'FORBIDDEN' },
  { name: 'join: client id __proto__', event: 'zync:join', args: () => [{ v: 2, doc: 'h-main', client: '__proto__', since: 0 }], code: 'UNSAFE_PATH' },
  // ops: document access
  { name: 'ops to a document not joined', args: () => [{ doc: 'h-other', ops: [op()] }], code: 'NOT_JOINED' },
  { name: 'ops to a forbidden document', args: () => [{ doc: 'secret', ops: [op()] }], code: 'NOT_JOINED' },
  // ops: fields
  { name: 'op n is a string', args: () => ops(op({ n: 'two' })), code: 'BAD_REQUEST' },
  { name: 'op n negative', args: () => ops(op({ n: -2 })), code: 'BAD_REQUEST' },
  { name: 'op n NaN (null on the wire)', args: () => ops(op({ n: NaN })), code: 'BAD_REQUEST' },
  { name: 'op n fractional', args: () => ops(op({ n: 2.5 })), code: 'BAD_REQUEST' },
  { name: 'op n huge', args: () => ops(op({ n: 2 ** 60 })), code: 'TOO_LARGE' },
  { name: 'op without id', args: () => ops(op({}, ['id'])), code: 'BAD_REQUEST' },
  { name: 'op with an extra field', args: () => ops(op({ isAdmin: true })), code: 'BAD_REQUEST' },
  { name: "op 'move'", args: () => ops(op({ op: 'move', from: ['cards', 'a'] })), code: 'BAD_REQUEST' },
  { name: "op 'copy'", args: () => ops(op({ op: 'copy' })), code: 'BAD_REQUEST' },
  { name: "op 'test'", args: () => ops(op({ op: 'test' })), code: 'BAD_REQUEST' },
  { name: 'unknown policy', args: () => ops(op({ policy: 'root' })), code: 'BAD_REQUEST' },
  { name: 'delta Infinity (null on the wire)', args: () => ops(op({ policy: 'counter', delta: Infinity })), code: 'BAD_REQUEST' },
  // paths
  { name: 'path __proto__', args: () => ops(op({ path: ['__proto__', 'polluted'] })), code: 'UNSAFE_PATH' },
  { name: 'path constructor.prototype', args: () => ops(op({ path: ['constructor', 'prototype', 'polluted'] })), code: 'UNSAFE_PATH' },
  { name: 'path ending in prototype', args: () => ops(op({ path: ['cards', 'prototype'] })), code: 'UNSAFE_PATH' },
  { name: 'path segment is an object', args: () => ops(op({ path: ['cards', { toString: 'x' }] })), code: 'BAD_REQUEST' },
  { name: 'path segment is a float', args: () => ops(op({ path: ['cards', 1.5] })), code: 'BAD_REQUEST' },
  { name: 'path segment is negative', args: () => ops(op({ path: ['cards', -1] })), code: 'BAD_REQUEST' },
  { name: 'path segment is null', args: () => ops(op({ path: ['cards', null] })), code: 'BAD_REQUEST' },
  { name: 'path segment is a boolean', args: () => ops(op({ path: [true] })), code: 'BAD_REQUEST' },
  { name: 'path too long', args: () => ops(op({ path: ['a', 'b', 'c', 'd'] })), code: 'TOO_LARGE' },
  { name: 'path of 10,000 segments', args: () => ops(op({ path: Array.from({ length: 10_000 }, (_, i) => `s${i}`) })), code: 'TOO_LARGE' },
  { name: 'empty path', args: () => ops(op({ path: [] })), code: 'BAD_REQUEST' },
  { name: 'path is a string', args: () => ops(op({ path: 'cards.x' })), code: 'BAD_REQUEST' },
  // values
  { name: 'value nested 65 deep', args: () => ops(op({ value: deep(65) })), code: 'TOO_DEEP' },
  { name: 'value nested 1,000 deep', args: () => ops(op({ value: deep(1000) })), code: 'TOO_DEEP' },
  { name: 'string over 1 MB', args: () => ops(op({ value: 'x'.repeat(1_000_001) })), code: 'TOO_LARGE' },
  { name: 'object with 10,001 keys', args: () => ops(op({ value: manyKeys(10_001) })), code: 'TOO_LARGE' },
  { name: 'array of 10,001 items', args: () => ops(op({ value: Array.from({ length: 10_001 }, (_, i) => i) })), code: 'TOO_LARGE' },
  { name: 'value with an own __proto__ key', args: () => ops(op({ value: JSON.parse('{"__proto__":{"polluted":"yes"}}') })), code: 'UNSAFE_PATH' },
  { name: 'value with constructor.prototype', args: () => ops(op({ value: { constructor: { prototype: { polluted: 1 } } } })), code: 'UNSAFE_PATH' },
  { name: 'nested __proto__ inside an array', args: () => ops(op({ value: [1, JSON.parse('{"a":{"__proto__":{"polluted":1}}}')] })), code: 'UNSAFE_PATH' },
  { name: 'value is binary (non-plain object)', args: () => ops(op({ value: Buffer.from('abc') })), code: 'BAD_REQUEST' },
  { name: 'set elements with __proto__', args: () => ops(op({ policy: 'set', added: [JSON.parse('{"__proto__":{"x":1}}')] })), code: 'UNSAFE_PATH' },
  { name: 'idKey __proto__', args: () => ops(op({ idKey: '__proto__', value: [] })), code: 'UNSAFE_PATH' },
  { name: 'resolves __proto__', args: () => ops(op({ resolves: '__proto__' })), code: 'UNSAFE_PATH' },
  // version vectors and clocks
  { name: 'vector with a negative counter', args: () => ops(op({ base: { cb: -1 } })), code: 'BAD_REQUEST' },
  { name: 'vector with a huge counter', args: () => ops(op({ base: { cb: 2 ** 60 } })), code: 'TOO_LARGE' },
  { name: 'vector with a NaN counter', args: () => ops(op({ base: { cb: NaN } })), code: 'BAD_REQUEST' },
  { name: 'vector with a string counter', args: () => ops(op({ base: { cb: '1' } })), code: 'BAD_REQUEST' },
  { name: 'vector with a __proto__ key', args: () => ops(op({ base: JSON.parse('{"__proto__":{"polluted":1}}') })), code: 'UNSAFE_PATH' },
  { name: 'vector is an array', args: () => ops(op({ base: [1, 2] })), code: 'BAD_REQUEST' },
  { name: 'malformed clock', args: () => ops(op({ hlc: 'yesterday' })), code: 'BAD_REQUEST' },
  { name: 'clock with a negative wall', args: () => ops(op({ hlc: '-00000000000001:000000:ca' })), code: 'BAD_REQUEST' },
  // Non-canonical stamps that Number() and parseInt() read as a wall of ~1 ms but that sort above every
  // real stamp: accepted, one won every last-writer-wins race for good (adversarial trial).
  { name: 'clock with a hex wall', args: () => ops(op({ hlc: '0x0000000000001:000000:ca' })), code: 'BAD_REQUEST' },
  { name: 'clock with a partly numeric counter', args: () => ops(op({ hlc: '000000000000001:0~~~~~:ca' })), code: 'BAD_REQUEST' },
  { name: 'clock with spaces in its wall', args: () => ops(op({ hlc: '              1:000000:ca' })), code: 'BAD_REQUEST' },
  { name: 'clock with an upper-case counter', args: () => ops(op({ hlc: '000000000000001:ZZZZZZ:ca' })), code: 'BAD_REQUEST' },
  { name: 'timestamp far in the future', args: () => ops(op({ hlc: encodeHlc({ wall: Date.UTC(2100, 0, 1), counter: 0, node: 'ca' }) })), code: 'CLOCK_SKEW' },
  { name: 'claims history of an unknown client', args: () => ops(op({ base: { ghost: 5 } })), code: 'UNKNOWN_HISTORY' },
  { name: 'claims more of a known client than sent', args: () => ops(op({ base: { cb: 50 } })), code: 'UNKNOWN_HISTORY' },
  { name: "claims its own client's future", args: () => ops(op({ base: { ca: 40 } })), code: 'UNKNOWN_HISTORY' },
  { name: "uses another user's client id", args: () => ops(op({ client: 'cb', n: 7, hlc: hlcNow('cb') })), code: 'CLIENT_MISMATCH' },
  // compact ops (the form the zync client sends)
  { name: 'compact: __proto__ in path', args: () => cops([cop({ path: ['__proto__', 'x'] })]), code: 'UNSAFE_PATH' },
  { name: 'compact: value with __proto__', args: () => cops([cop({ value: JSON.parse('{"__proto__":{"polluted":1}}') })]), code: 'UNSAFE_PATH' },
  { name: 'compact: client index outside the table', args: () => cops([cop({ ci: 3 })]), code: 'BAD_REQUEST' },
  { name: 'compact: client index not a number', args: () => cops([cop({ ci: '0' })]), code: 'BAD_REQUEST' },
  { name: 'compact: unknown extra field', args: () => cops([cop({}, { admin: true })]), code: 'BAD_REQUEST' },
  { name: 'compact: extra with __proto__', args: () => cops([cop({}, JSON.parse('{"__proto__":{"polluted":1}}'))]), code: 'UNSAFE_PATH' },
  { name: 'compact: extra is an array', args: () => cops([cop({}, ['p', 'lww'])]), code: 'BAD_REQUEST' },
  { name: 'compact: first op refers to a previous path', args: () => cops([cop({ path: 0 })]), code: 'BAD_REQUEST' },
  { name: 'compact: client table entry __proto__', args: () => cops([cop()], ['__proto__']), code: 'UNSAFE_PATH' },
  { name: 'compact: op is an object', args: () => cops([op()]), code: 'BAD_REQUEST' },
  { name: 'compact: too few items', args: () => cops([['id-x', 0, 2]]), code: 'BAD_REQUEST' },
  { name: 'compact: kind out of range', args: () => cops([cop({ kind: 7 })]), code: 'BAD_REQUEST' },
  { name: 'compact: malformed timestamp', args: () => cops([cop({ hlc: 'no-dots' })]), code: 'BAD_REQUEST' },
  { name: 'compact: timestamp with junk digits', args: () => cops([cop({ hlc: 'zz!.0' })]), code: 'BAD_REQUEST' },
  { name: 'compact: both ops and o', args: () => [{ doc: 'h-main', ops: [op()], o: [cop()], k: ['ca'] }], code: 'BAD_REQUEST' },
  { name: 'compact: no client table', args: () => [{ doc: 'h-main', o: [cop()] }], code: 'BAD_REQUEST' },
  { name: "compact: another user's client id", args: () => cops([cop({ n: 7, hlc: hlcNow('cb') })], ['cb']), code: 'CLIENT_MISMATCH' },
  { name: 'compact: base names a client outside the table', args: () => cops([cop({ base: [4, 1] })]), code: 'BAD_REQUEST' },
  { name: 'compact: base is an object', args: () => cops([cop({ base: { ca: 1 } })]), code: 'BAD_REQUEST' },
  { name: 'compact: base claims an unknown client', args: () => cops([cop({ base: [1, 5] })], ['ca', 'ghost']), code: 'UNKNOWN_HISTORY' },
  { name: 'compact: base with a negative counter', args: () => cops([cop({ base: [1, -1] })], ['ca', 'cb']), code: 'BAD_REQUEST' },
  { name: 'compact: base with a huge counter', args: () => cops([cop({ base: [1, 2 ** 60] })], ['ca', 'cb']), code: 'TOO_LARGE' },
  { name: 'compact: base with a fractional counter', args: () => cops([cop({ base: [1, 0.5] })], ['ca', 'cb']), code: 'BAD_REQUEST' },
  { name: 'compact: base with a string counter', args: () => cops([cop({ base: [1, '1'] })], ['ca', 'cb']), code: 'BAD_REQUEST' },
  { name: 'compact: base names a client twice', args: () => cops([cop({ base: [1, 1, 1, 1] })], ['ca', 'cb']), code: 'BAD_REQUEST' },
  { name: 'compact: base with a __proto__ client', args: () => cops([cop({ base: [1, 1] })], ['ca', '__proto__']), code: 'UNSAFE_PATH' },
  { name: 'compact: batch over 1000 ops', args: () => cops(Array.from({ length: 1001 }, (_, i) => cop({ id: `cbig${i}`, n: i + 2 }))), code: 'TOO_LARGE' },
  // history, presence, leave
  { name: 'history of a forbidden document', event: 'zync:history', args: () => [{ doc: 'secret' }], code: 'FORBIDDEN' },
  { name: 'history path too long', event: 'zync:history', args: () => [{ doc: 'h-main', path: Array.from({ length: 17 }, () => 'a') }], code: 'TOO_LARGE' },
  { name: 'history limit huge', event: 'zync:history', args: () => [{ doc: 'h-main', limit: 1e9 }], code: 'TOO_LARGE' },
  { name: 'presence over 4 KB', event: 'zync:presence', args: () => [{ doc: 'h-main', state: { blob: 'x'.repeat(5000) } }], code: 'TOO_LARGE' },
  { name: 'presence claiming another user', event: 'zync:presence', args: () => [{ doc: 'h-main', state: { x: 1 }, user: { id: 'bob' } }], code: 'BAD_REQUEST' },
  { name: 'presence state with __proto__', event: 'zync:presence', args: () => [{ doc: 'h-main', state: JSON.parse('{"__proto__":{"polluted":1}}') }], code: 'UNSAFE_PATH' },
  { name: 'presence on a document not joined', event: 'zync:presence', args: () => [{ doc: 'secret', state: { x: 1 } }], code: 'NOT_JOINED' },
  { name: 'presence state is an array', event: 'zync:presence', args: () => [{ doc: 'h-main', state: [1] }], code: 'BAD_REQUEST' },
  { name: 'leave with an extra field', event: 'zync:leave', args: () => [{ doc: 'h-main', all: true }], code: 'BAD_REQUEST' },
]

describe('a catalogue of hostile frames', () => {
  it(`has at least 40 kinds (${CASES.length})`, () => {
    expect(CASES.length).toBeGreaterThanOrEqual(40)
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length)
  })

  it.each(CASES.map((c) => [c.name, c] as const))('%s: typed refusal, nothing applied', async (_name, c) => {
    const main = await server.doc('h-main')
    const secret = await server.doc('secret')
    const before = [main.seq, secret.seq]
    const answer = await new Promise<Answer>((resolve, reject) =>
      alice.timeout(15_000).emit(c.event ?? 'zync:ops', ...c.args(), (e: Error | null, r: Answer) => (e ? reject(e) : resolve(r))),
    )
    const r = refusal(answer)
    expect(r, `${c.name}: expected a refusal, got ${JSON.stringify(answer).slice(0, 300)}`).toBeDefined()
    expectTyped(r, c.name)
    expect(r.code, `${c.name}: ${r.message}`).toBe(c.code)
    if (answer.ok) expect((r as Answer).opId, c.name).toBeTypeOf('string')
    expect([main.seq, secret.seq], `${c.name}: something was applied`).toEqual(before)
    expectCleanPrototypes(protos)
    expect(alice.connected).toBe(true)
  })

  it('left the server up, the other clients connected and the secret where it was', async () => {
    await expectAlive()
    const state = (await server.doc('secret')).current().state as { vault: { code: string } }
    expect(state.vault.code).toBe('TOPSECRET')
    expect(JSON.stringify((await server.doc('h-main')).current().state)).not.toContain('evil')
  })
})

// ---- a seeded fuzzer ---------------------------------------------------------------------------

const SEED = Number(process.env.ZYNC_FUZZ_SEED ?? 0x5eed)
const FRAMES = Number(process.env.ZYNC_FUZZ_FRAMES ?? 10_000)

function mulberry32(seed: number) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Sets an own property even for '__proto__' (as JSON.parse would), never the prototype. */
function setOwn(o: Record<string, unknown>, k: string, v: unknown) {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
}

function fuzzer(seed: number) {
  const rnd = mulberry32(seed)
  const int = (n: number) => Math.floor(rnd() * n)
  const pick = <T,>(xs: readonly T[]): T => xs[int(xs.length)]!
  let n = 0
  const hostileValues: Array<() => unknown> = [
    () => null, () => true, () => 0, () => -1, () => 1.5, () => 2 ** 53, () => 2 ** 60, () => 1e308, () => NaN, () => Infinity,
    () => '', () => 'x', () => '__proto__', () => 'constructor', () => 'prototype', () => 'x'.repeat(2000), () => [], () => [null], () => ({}),
    () => deep(70), () => deep(300), () => JSON.parse('{"__proto__":{"polluted":"fuzz"}}'), () => ({ constructor: { prototype: { polluted: 1 } } }),
    () => manyKeys(60), () => Array.from({ length: 200 }, (_, i) => i), () => ({ toString: 'x', valueOf: 1 }), () => Buffer.from([1, 2, 3]),
    () => encodeHlc({ wall: Date.UTC(2200, 0, 1), counter: 0, node: 'cm' }), () => '000000000000000:000000:', () => ['__proto__', 'polluted'],
    () => ['cards', -1], () => ['a', 'b', 'c', 'd', 'e'], () => ({ ghost: 9 }), () => ({ cb: 1e9 }), () => 'secret', () => 'h-fuzz', () => 'secret?',
  ]
  const keys = ['__proto__', 'constructor', 'prototype', 'isAdmin', 'toString', 'hasOwnProperty', '', 'x', 'doc', 'ops', 'user', 'a'.repeat(300)]
  const events = ['zync:join', 'zync:ops', 'zync:ops', 'zync:ops', 'zync:history', 'zync:presence', 'zync:leave', 'zync:changes', 'zync:x', 'admin', '__proto__', 'constructor', 'toString', 'hasOwnProperty', '']
  const docs = ['h-fuzz', 'h-fuzz', 'h-fuzz-2', 'secret', 'SECRET', 'h-main', '__proto__', '', 'x'.repeat(300), 'h-fuzz/../secret', 'h fuzz']
  const value = (): unknown => pick([() => ({ title: `t${int(100)}`, n: int(10) }), () => int(1000), () => `s${int(100)}`, () => [int(5), int(5)], () => null, () => ({ nested: { deeper: [1, { k: 'v' }] } })])()
  const validOp = () => {
    n++
    const path: Array<string | number> = pick([['cards', `c${int(20)}`], ['cards', `c${int(20)}`, pick(['title', 'votes', 'tags'])], ['filter'], ['list', int(5)]])
    return { id: `m-${seed}-${n}`, client: 'cm', n, hlc: encodeHlc({ wall: Date.now(), counter: 0, node: 'cm' }), op: pick(['add', 'replace', 'remove']), path, value: value(), base: {} }
  }
  const base = (): [string, unknown] => {
    switch (int(8)) {
      case 0: return ['zync:join', { v: 2, doc: 'h-fuzz', client: 'cm', since: int(3) }]
      case 1: return ['zync:presence', { doc: 'h-fuzz', state: { cursor: int(100) } }]
      case 2: return ['zync:history', { doc: 'h-fuzz', limit: 1 + int(5) }]
      case 3: return ['zync:leave', { doc: 'h-fuzz-2' }]
      default: return ['zync:ops', { doc: 'h-fuzz', ops: Array.from({ length: 1 + int(3) }, validOp) }]
    }
  }
  /** Every [container, key] in the payload, to mutate one of them. */
  const slots = (root: unknown) => {
    const out: Array<[Record<string | number, unknown>, string | number]> = []
    const stack = [root]
    while (stack.length && out.length < 500) {
      const v = stack.pop()
      if (v === null || typeof v !== 'object' || Buffer.isBuffer(v)) continue
      for (const k of Object.keys(v)) {
        out.push([v as Record<string, unknown>, Array.isArray(v) ? Number(k) : k])
        stack.push((v as Record<string, unknown>)[k])
      }
    }
    return out
  }
  return (): [string, unknown] => {
    let [event, payload] = base()
    const mutations = 1 + int(3)
    for (let m = 0; m < mutations; m++) {
      const what = int(10)
      const all = slots(payload)
      if (what === 0) event = pick(events)
      else if (what === 1) payload = pick(hostileValues)()
      else if (what === 2 && payload && typeof payload === 'object') setOwn(payload as Record<string, unknown>, 'doc', pick(docs))
      else if (all.length === 0) payload = pick(hostileValues)()
      else {
        const [obj, key] = pick(all)
        if (what === 3) delete obj[key]
        else if (what === 4 && !Array.isArray(obj)) setOwn(obj as Record<string, unknown>, pick(keys), pick(hostileValues)())
        else if (what === 5) obj[key] = [obj[key]]
        else if (what === 6) obj[key] = { v: obj[key] }
        else obj[key] = pick(hostileValues)()
      }
    }
    return [event, payload]
  }
}

describe(`a seeded fuzzer (seed ${SEED}, ${FRAMES} frames; replay with ZYNC_FUZZ_SEED)`, () => {
  it('answers every mutated frame with a typed answer, applies nothing it should not, leaks nothing', async () => {
    const started = Date.now()
    const mallory = await connectRaw(server.url, { auth: { token: 't-mallory' } })
    const received: Array<[string, unknown]> = []
    mallory.onAny((event: string, msg: unknown) => received.push([event, msg]))
    expect((await ask(mallory, 'zync:join', { v: 2, doc: 'h-fuzz', client: 'cm', since: 0 })).ok).toBe(true)
    const secretSeq = (await server.doc('secret')).seq
    const next = fuzzer(SEED)
    const codes = new Map<string, number>()
    let applied = 0
    let lost = 0
    const window = 200
    for (let sent = 0; sent < FRAMES; sent += window) {
      const batch = Array.from({ length: Math.min(window, FRAMES - sent) }, next)
      const answers = await Promise.all(
        batch.map(
          ([event, payload]) =>
            new Promise<unknown>((resolve) => {
              try {
                mallory.timeout(10_000).emit(event, payload, (err: Error | null, r: unknown) => resolve(err ? 'lost' : r))
              } catch {
                resolve('not sendable') // socket.io-client refuses its reserved event names
              }
            }),
        ),
      )
      answers.forEach((a, i) => {
        const frame = () => `seed ${SEED} frame ${sent + i}: ${JSON.stringify(batch[i]).slice(0, 300)}`
        if (a === 'not sendable') return
        if (a === 'lost') return void lost++
        const w = a as Answer
        expect(JSON.stringify(w), frame()).not.toContain('TOPSECRET')
        if (typeof w?.message === 'string') expect(w.message.length, frame()).toBeLessThanOrEqual(300)
        expect(typeof w === 'object' && w !== null && typeof w.ok === 'boolean', frame()).toBe(true)
        if (!w.ok) {
          expectTyped(w, frame())
          codes.set(w.code!, (codes.get(w.code!) ?? 0) + 1)
        } else
          for (const r of w.results ?? []) {
            if (r.ok) applied++
            else {
              expectTyped(r, frame())
              codes.set(String(r.code), (codes.get(String(r.code)) ?? 0) + 1)
            }
          }
      })
      expect(mallory.connected, `disconnected after frame ${sent}`).toBe(true)
    }
    expect(lost).toBe(0)
    expect(codes.get('INTERNAL') ?? 0).toBe(0)
    expectCleanPrototypes(protos)
    await expectAlive()
    // Nothing crossed documents: the secret is untouched and never reached mallory; the bystander on
    // h-main heard nothing of the fuzzed documents.
    expect((await server.doc('secret')).seq).toBe(secretSeq)
    expect(((await server.doc('secret')).current().state as { vault: { code: string } }).vault.code).toBe('TOPSECRET')
    for (const [event, msg] of received) {
      expect(JSON.stringify(msg) ?? '').not.toContain('TOPSECRET')
      // Only documents mallory may read (authorize: the h- prefix); 'h-fuzz/../secret' is just a name.
      if (event === 'zync:changes' || event === 'zync:presence') expect((msg as { doc: string }).doc).toMatch(/^h-/)
    }
    for (const m of bystanderSaw) expect((m as { doc: string }).doc).toBe('h-main')
    mallory.disconnect()
    console.log(
      `fuzz seed ${SEED}: ${FRAMES} frames in ${Date.now() - started} ms, ${applied} ops applied, refusals: ${[...codes].sort((x, y) => y[1] - x[1]).map(([c, k]) => `${c} ${k}`).join(', ')}`,
    )
  }, 120_000)
})
