// A big document's join answer is serialized off the event loop's critical path: sent as bytes (socket.io
// neither walks nor stringifies it), built in slices between which the node serves its other clients.
import { afterAll, describe, expect, it } from 'vitest'
import type { Socket } from 'socket.io-client'
import { OLDEST_PROTOCOL_VERSION, PROTOCOL_VERSION, type JoinResponse } from '../../src/core/protocol'
import { decodeJoinResponse } from '../../src/core/wire'
import { createSyncServer, type SyncServer } from '../../src/server/index'
import { jsonBytesYielding } from '../../src/server/json-bytes'
import { parseSnapshotText, snapshotText } from '../../src/server/storage/snapshot-text'
import { DocState } from '../../src/server/doc-state'
import { ask, connectRaw, countTurns, makeOp } from './helpers'

const servers: SyncServer[] = []
const sockets: Socket[] = []
afterAll(async () => {
  for (const s of sockets) s.disconnect()
  for (const s of servers) await s.close()
})

describe('jsonBytesYielding', () => {
  it('writes exactly what JSON.stringify writes', async () => {
    const big = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`r${i}`, { id: i, t: `é ${i} 😀`, a: Array.from({ length: i % 50 }, (_, j) => j), u: undefined }]))
    let deep: unknown = { leaf: [1, 2, 3] }
    for (let i = 0; i < 30; i++) deep = { [`d${i}`]: deep, n: Array.from({ length: 40 }, (_, j) => j) }
    const bare = Object.create(null) as Record<string, unknown>
    bare.x = 1
    const values: unknown[] = [
      { ok: true, snapshot: { seq: 3, state: { items: big, other: { a: 1 } }, vv: {}, fields: {} }, c: Array.from({ length: 100 }, (_, i) => [i, `op${i}`, 'c', i, '1.0', i % 2 ? 0 : ['items', `r${i}`], 0, 0, { v: i }]) },
      { skip: undefined, f: () => 1, list: Array.from({ length: 40 }, (_, i) => (i % 3 === 0 ? undefined : i % 3 === 1 ? null : 'x')), holes: [, 1, , 2] },
      { lone: '\ud800 \udfff "quoted" \\ \n \u0001', when: new Date(0), bare, nested: [[[[[]]]]], empty: {}, neg: -0, big: 1e300 },
      deep,
      [],
      'text',
      42,
      null,
    ]
    for (const v of values) expect((await jsonBytesYielding(v, 0)).toString('utf8')).toBe(JSON.stringify(v))
  })

  it('yields to the event loop between slices of a large value', async () => {
    const value = { state: { items: Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`r${i}`, { id: i, title: 'x'.repeat(50) }])) } }
    const turns = countTurns()
    const bytes = await jsonBytesYielding(value, 0)
    turns.stop()
    expect(bytes.toString('utf8')).toBe(JSON.stringify(value))
    // Every piece (~16 KB of JSON, 1.3 MB here) gave the loop a turn.
    expect(turns.count).toBeGreaterThan(10)
  })
})

describe('the current state for a far-behind join', () => {
  it('copies the vectors of a document of many records in slices, between which the node serves others, and later writes do not reach the copy', async () => {
    // A far-behind join gets the node's current state; its vector map (one entry per record) was copied
    // in one go: ~25-40 ms for 50,000 records, with every other client of the node waiting.
    const vv: Record<string, Record<string, number>> = {}
    for (let i = 0; i < 60_000; i++) vv[`rows/r${i}`] = { c1: i + 1 }
    const state = DocState.fromSnapshot('big', { seq: 60_000, state: { rows: {} }, vv, fields: {} })
    const turns = countTurns()
    const snap = await state.publicSnapshot()
    turns.stop()
    expect(turns.count).toBeGreaterThanOrEqual(2)
    expect(snap.seq).toBe(60_000)
    expect(snap.vv).toEqual(vv)
    expect(snap.fields).toEqual({})
    // A copy: the state's map is not the one handed out.
    ;(state as unknown as { vv: Record<string, unknown> }).vv['rows/new'] = { c2: 1 }
    expect(snap.vv['rows/new']).toBeUndefined()
  })
})

describe('jsonBytesYielding with a Map', () => {
  it('writes a Map as the object of its entries, the rest exactly as JSON.stringify, and yields between slices', async () => {
    const fields = new Map<string, unknown>()
    for (let i = 0; i < 30_000; i++) fields.set(`items/r${i % 5000}\u0000f${Math.floor(i / 5000)}`, { client: 'c1', n: i, hlc: `h${i}`, seq: i, at: 1 })
    fields.set('__proto__', { odd: 'key' })
    fields.set('gone', undefined)
    const snapshot = { seq: 7, state: { items: { a: { t: 'é 😀', list: [1, undefined, 3] } } }, vv: { 'items/a': { c1: 3 } }, fields, clientMax: { c1: 30_000 } }
    const turns = countTurns()
    const text = (await jsonBytesYielding(snapshot, 0)).toString('utf8')
    turns.stop()
    const plain: Record<string, unknown> = {}
    for (const [k, v] of fields) Object.defineProperty(plain, k, { value: v, enumerable: true, writable: true, configurable: true })
    expect(text).toBe(JSON.stringify({ ...snapshot, fields: plain }))
    expect((JSON.parse(text) as { fields: Record<string, unknown> }).fields['items/r42\u0000f3']).toEqual({ client: 'c1', n: 15042, hlc: 'h15042', seq: 15042, at: 1 })
    expect(turns.count).toBeGreaterThan(10)
  })
})

describe('stored snapshots as JSON lines', () => {
  /** The JSON of a snapshot with its field-meta Map as the object of its entries. */
  const plain = (snap: { fields: unknown }) => {
    if (!(snap.fields instanceof Map)) return JSON.stringify(snap)
    const fields: Record<string, unknown> = {}
    for (const [k, v] of snap.fields) Object.defineProperty(fields, k, { value: v, enumerable: true, writable: true, configurable: true })
    return JSON.stringify({ ...snap, fields })
  }

  it('reads back exactly what was written (keys in order, a Map as a Map, own "__proto__" keys), writing and reading in slices', async () => {
    const fields = new Map<string, unknown>()
    for (let i = 0; i < 30_000; i++) fields.set(`items/r${i % 5000}\u0000f${Math.floor(i / 5000)}`, { client: 'c1', n: i, hlc: `h${i}`, seq: i, at: 1 })
    fields.set('__proto__', { odd: 'key' })
    fields.set('gone', undefined)
    // Containers large enough to be opened, deep and in arrays, with keys that are not plain names.
    const wide = JSON.parse(`{${Array.from({ length: 40 }, (_, i) => `"k${i}":${i}`).join(',')},"__proto__":{"own":true}}`) as Record<string, unknown>
    const list = Array.from({ length: 100 }, (_, i) => (i % 10 === 0 ? undefined : i % 10 === 1 ? { ...wide, i } : i % 10 === 2 ? [i, 'line\nbreak', '\u2028'] : `é ${i} 😀`))
    const items = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`r${i}`, { f0: i, f1: 'text "quoted" \\ \n', f2: null, f3: [i, { n: i }] }]))
    const snapshot = { seq: 30_000, state: { items, list, wide, empty: {}, emptyList: [], n: -0, big: 1e300, nested: { a: { b: { c: wide } } } }, vv: { 'items/r1': { c1: 3 } }, fields, clientMax: { c1: 30_000 }, clientUser: {} }
    const written = countTurns()
    const text = await snapshotText(snapshot as never)
    written.stop()
    const read = countTurns()
    const back = await parseSnapshotText(text)
    read.stop()
    // Without slices the loop would not turn at all until the whole text was written or read.
    expect(written.count).toBeGreaterThanOrEqual(2)
    expect(read.count).toBeGreaterThanOrEqual(2)
    expect(back.fields).toBeInstanceOf(Map)
    expect([...(back.fields as Map<string, unknown>)]).toEqual([...fields].filter(([, v]) => v !== undefined))
    expect(plain(back)).toBe(plain(snapshot))
    // A key named __proto__ is an own key, not the prototype, wherever it was.
    const w = (back.state as { wide: Record<string, unknown>; list: Array<Record<string, unknown>> }).wide
    expect(Object.getPrototypeOf(w)).toBe(Object.prototype)
    expect(Object.getOwnPropertyDescriptor(w, '__proto__')?.value).toEqual({ own: true })
    expect(Object.getPrototypeOf((back.state as { list: object[] }).list[1])).toBe(Object.prototype)
    // Lines of bounded size: no line holds the whole collection.
    expect(Math.max(...text.split('\n').map((l) => l.length))).toBeLessThan(JSON.stringify(items).length / 4)
  })

  it('reads a snapshot stored as one JSON object by an earlier version, and refuses a corrupt one with a clear error', async () => {
    const old = { seq: 2, state: { a: { b: 1 } }, vv: { a: { c1: 2 } }, fields: { 'a\u0000b': { client: 'c1', n: 2, hlc: '1.0.c1', seq: 2, at: 0 } } }
    expect(await parseSnapshotText(JSON.stringify(old))).toEqual(old)
    const good = await snapshotText(old)
    await expect(parseSnapshotText(good.replace('["o",["state"]]', '["x",["state"]]'))).rejects.toThrow(/\[zync\] a stored snapshot is corrupt: unknown line "x"/)
    await expect(parseSnapshotText(good.replace('["o",["state"]]', '["o",["nothing","here"]]'))).rejects.toThrow(/\[zync\] a stored snapshot is corrupt: nothing at \["nothing"\]/)
  })
})

describe('join answers as bytes', () => {
  it('a protocol 3 client gets the join answer as UTF-8 JSON bytes; a protocol 2 client still gets the object', async () => {
    const s = await createSyncServer({ port: 0, storage: { kind: 'memory' }, logLevel: 'silent' })
    servers.push(s)
    const writer = await connectRaw(s.url)
    sockets.push(writer)
    expect((await ask(writer, 'zync:join', { v: PROTOCOL_VERSION, doc: 'big', client: 'w', since: 0 })).ok).toBe(true)
    const ops = Array.from({ length: 50 }, (_, i) => makeOp('w', i + 1, ['items', `r${i}`], { id: i, title: `t${i}`, tags: ['a', 'é'] }))
    expect((await ask<{ ok: boolean }>(writer, 'zync:ops', { doc: 'big', ops })).ok).toBe(true)

    const reader = await connectRaw(s.url)
    sockets.push(reader)
    const raw: unknown = await reader.timeout(10_000).emitWithAck('zync:join', { v: PROTOCOL_VERSION, doc: 'big', client: 'r3', since: 0 })
    // Bytes: socket.io sends them as a binary attachment, without walking or stringifying an object tree.
    expect(Buffer.isBuffer(raw)).toBe(true)
    const v3 = decodeJoinResponse(raw) as Extract<JoinResponse, { ok: true }>
    expect(v3).toMatchObject({ ok: true, v: PROTOCOL_VERSION, seq: 50 })
    expect(v3.changes.map((c) => c.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1))

    const old = await connectRaw(s.url)
    sockets.push(old)
    const legacy: unknown = await old.timeout(10_000).emitWithAck('zync:join', { v: OLDEST_PROTOCOL_VERSION, doc: 'big', client: 'r2', since: 0 })
    expect(Buffer.isBuffer(legacy)).toBe(false)
    expect(legacy).toMatchObject({ ok: true, v: OLDEST_PROTOCOL_VERSION, seq: 50 })
    const v2 = decodeJoinResponse(legacy) as Extract<JoinResponse, { ok: true }>
    const { serverTime: _a, v: _b, ...same3 } = v3
    const { serverTime: _c, v: _d, ...same2 } = v2
    expect(same3).toStrictEqual(same2)

    // Refusals stay objects, and other versions are refused as before.
    expect(await old.timeout(10_000).emitWithAck('zync:join', { v: 1, doc: 'big', client: 'r1', since: 0 })).toMatchObject({ ok: false, code: 'PROTOCOL_VERSION' })
  })
})
