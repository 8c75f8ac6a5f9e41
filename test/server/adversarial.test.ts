// What an adversarial trial (raw sockets and odd but valid input against the real server) found: each
// case lost or changed an acknowledged write, or dropped a healthy client, before its fix.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Socket } from 'socket.io-client'
import { createSyncServer, type SyncServer } from 'zync/server'
import { encodeHlc } from '../../src/core/hlc'
import { entityOf, recordPathOf } from '../../src/core/path'
import type { Op } from '../../src/core/protocol'
import { DocState } from '../../src/server/doc-state'
import { ask, connectRaw, makeOp } from './helpers'

type Result = { ok: boolean; status?: string; code?: string; message?: string }
type Answer = { ok: boolean; code?: string; results?: Result[]; entries?: unknown[]; truncated?: boolean }

let server: SyncServer
let socket: Socket
const now = Date.now()
const stamp = (ms: number, node: string) => encodeHlc({ wall: now + ms, counter: 0, node })

beforeAll(async () => {
  server = await createSyncServer({ port: 0, storage: { kind: 'memory' }, logLevel: 'silent', limits: { opsPerSecond: 1e6, messagesPerSecond: 1e6, bytesPerSecond: 1e10, historyPerSecond: 1e9 } })
  socket = await connectRaw(server.url)
})
afterAll(async () => {
  socket?.disconnect()
  await server?.close()
})

let docs = 0
async function joined(client: string, doc = `adv-${++docs}`): Promise<string> {
  expect((await ask<Answer>(socket, 'zync:join', { v: 2, doc, client, since: 0 })).ok).toBe(true)
  return doc
}
const send = async (doc: string, ...ops: Op[]) => (await ask<Answer>(socket, 'zync:ops', { doc, ops })).results!

describe('entity names', () => {
  it('a top-level key with a slash is not the record it spells: both writes stand, neither is superseded', async () => {
    const doc = await joined('x')
    await joined('y', doc)
    // y's later write first, then x's older concurrent one: one entity, x's was superseded (and lost).
    expect((await send(doc, makeOp('y', 1, ['notes/n1'], { from: 'y' }, { hlc: stamp(2, 'y') })))[0]).toMatchObject({ ok: true, status: 'applied' })
    expect((await send(doc, makeOp('x', 1, ['notes', 'n1'], { from: 'x' }, { hlc: stamp(1, 'x') })))[0]).toMatchObject({ ok: true, status: 'applied' })
    expect((await send(doc, makeOp('y', 2, ['a/b', 'c'], 1, { hlc: stamp(4, 'y') })))[0]).toMatchObject({ status: 'applied' })
    expect((await send(doc, makeOp('x', 2, ['a', 'b/c'], 2, { hlc: stamp(3, 'x') })))[0]).toMatchObject({ status: 'applied' })
    const state = (await server.doc(doc)).current().state
    expect(state).toEqual({ 'notes/n1': { from: 'y' }, notes: { n1: { from: 'x' } }, 'a/b': { c: 1 }, a: { 'b/c': 2 } })
  })

  it('names read as before where nothing needs escaping, and record names come back to their paths', () => {
    expect(entityOf(['cards', 'c1', 'title'])).toBe('cards/c1')
    expect(entityOf(['filter'])).toBe('filter')
    expect(entityOf(['files', 'docs/a.md'])).toBe('files/docs/a.md')
    const odd: Array<Array<string | number>> = [['notes/n1'], ['notes', 'n1'], ['a/b', 'c'], ['a', 'b/c'], ['50%', '2F'], ['c', 'a\u0000b'], ['c%2F', 'x'], ['c/', 'x'], [7, 'x']]
    const names = odd.map(entityOf)
    expect(new Set(names).size).toBe(odd.length)
    for (const p of odd) if (p.length === 2) expect(recordPathOf(entityOf(p))).toEqual(p.map(String))
  })

  it('a NUL in a record id: a state rebuilt from a snapshot decides as the live one did', async () => {
    const live = new DocState('nul')
    const field = makeOp('x', 1, ['col', 'a\u0000b', 'f'], 'X', { op: 'replace', hlc: stamp(10, 'x') })
    const other = makeOp('x', 2, ['other', 'o', 'f'], 1, { op: 'replace', hlc: stamp(11, 'x') })
    for (const op of [field, other]) live.applyOp(op, { now: now + 20 })
    const restored = DocState.fromSnapshot('nul', await live.snapshot())
    // y, concurrently and older, writes the whole record: its stamp loses to x's field on both.
    const record = makeOp('y', 1, ['col', 'a\u0000b'], { f: 'Y', g: 1 }, { op: 'replace', hlc: stamp(-60_000, 'y') })
    const a = live.applyOp(record, { now: now + 30 })
    const b = restored.applyOp({ ...record }, { now: now + 30 })
    expect(b.status).toBe(a.status)
    expect(restored.state).toEqual(live.state)
    expect((live.state.col as Record<string, { f: string }>)['a\u0000b']!.f).toBe('X')
  })
})

describe('removing below a scalar', () => {
  it('removes nothing: the scalar stays (it became {} on the server while the stores that applied the change kept it)', async () => {
    const doc = await joined('rm')
    expect((await send(doc, makeOp('rm', 1, ['names', 'u1'], 'Ann', { op: 'replace', hlc: stamp(1, 'rm') })))[0]).toMatchObject({ ok: true })
    expect((await send(doc, makeOp('rm', 2, ['names', 'u1', 'first'], undefined, { op: 'remove', hlc: stamp(2, 'rm'), base: { rm: 1 } })))[0]).toMatchObject({ ok: true })
    expect((await send(doc, makeOp('rm', 3, ['theme'], 5, { op: 'replace', hlc: stamp(3, 'rm'), base: { rm: 2 } })))[0]).toMatchObject({ ok: true })
    expect((await send(doc, makeOp('rm', 4, ['theme', 'main'], undefined, { op: 'remove', hlc: stamp(4, 'rm'), base: { rm: 3 } })))[0]).toMatchObject({ ok: true })
    expect((await server.doc(doc)).current().state).toEqual({ names: { u1: 'Ann' }, theme: 5 })
  })
})

describe('counters', () => {
  it('an increment that would take a count beyond 2^53 is refused (TOO_LARGE); the count and later increments stay exact', async () => {
    const doc = await joined('cnt')
    const inc = (n: number, delta: number) => makeOp('cnt', n, ['stats', 's', 'hits'], 0, { op: 'replace', policy: 'counter', delta, hlc: stamp(n, 'cnt'), base: n > 1 ? { cnt: n - 1 } : {} })
    expect((await send(doc, inc(1, 1e308)))[0]).toMatchObject({ ok: false, code: 'TOO_LARGE' })
    expect((await send(doc, inc(1, 5)))[0]).toMatchObject({ ok: true })
    expect((await send(doc, inc(2, Number.MAX_SAFE_INTEGER)))[0]).toMatchObject({ ok: false, code: 'TOO_LARGE' })
    expect((await send(doc, inc(2, 3)))[0]).toMatchObject({ ok: true })
    expect((await server.doc(doc)).current().state).toEqual({ stats: { s: { hits: 8 } } })
    // The increments add up past 2^53 before the decrements are taken off: refused too (the count read
    // 9007199254740989 where it was ...990).
    const big = Number.MAX_SAFE_INTEGER - 100
    expect((await send(doc, inc(3, big)))[0]).toMatchObject({ ok: true })
    expect((await send(doc, inc(4, -big)))[0]).toMatchObject({ ok: true })
    expect((await send(doc, inc(5, big)))[0]).toMatchObject({ ok: false, code: 'TOO_LARGE' })
    expect((await server.doc(doc)).current().state).toEqual({ stats: { s: { hits: 8 } } })
  })
})

describe('a counter or set field removed while others add to it', () => {
  // Two stores: alice adds to votes and tags; bob, offline, drops both fields. It went to bob's inbox as a
  // conflict (CONFLICTS.md: counters and sets never conflict), and in the other order the increment
  // revived the field with its own delta alone.
  const seeded = () => {
    const d = new DocState('cs')
    d.applyOp(makeOp('seed', 1, ['cards', 'c'], { votes: 1, tags: ['x'] }, { op: 'replace', hlc: stamp(0, 'seed') }), { now })
    return d
  }
  const inc = (ms: number) => makeOp('alice', 1, ['cards', 'c', 'votes'], 2, { op: 'replace', policy: 'counter', delta: 1, hlc: stamp(ms, 'alice'), base: { seed: 1 } })
  const add = (ms: number) => makeOp('alice', 2, ['cards', 'c', 'tags'], ['x', 'y'], { op: 'replace', policy: 'set', added: ['y'], hlc: stamp(ms, 'alice'), base: { seed: 1, alice: 1 } })
  const drop = (ms: number, n: number, field: string, policy: 'counter' | 'set') => makeOp('bob', n, ['cards', 'c', field], undefined, { op: 'remove', policy, hlc: stamp(ms, 'bob'), base: { seed: 1 } })
  const apply = (d: DocState, ...ops: Op[]) => ops.map((op) => d.applyOp(op, { now }).status)

  it('the later stamp wins, never a conflict, whichever arrives first', () => {
    // The removal is later: removed, in either order.
    let d = seeded()
    expect(apply(d, inc(10), add(11), drop(20, 1, 'votes', 'counter'), drop(21, 2, 'tags', 'set'))).toEqual(['applied', 'applied', 'applied', 'applied'])
    expect(d.state).toEqual({ cards: { c: {} } })
    d = seeded()
    expect(apply(d, drop(20, 1, 'votes', 'counter'), drop(21, 2, 'tags', 'set'), inc(10), add(11))).toEqual(['applied', 'applied', 'superseded', 'superseded'])
    expect(d.state).toEqual({ cards: { c: {} } })
    // The additions are later: they stand, in either order, with what the field held (the seed's vote
    // and tag). Arriving after the removal, they brought it back with their own delta alone: votes 1, tags ['y'].
    d = seeded()
    expect(apply(d, inc(30), add(31), drop(20, 1, 'votes', 'counter'), drop(21, 2, 'tags', 'set'))).toEqual(['applied', 'applied', 'superseded', 'superseded'])
    expect(d.state).toEqual({ cards: { c: { votes: 2, tags: ['x', 'y'] } } })
    d = seeded()
    expect(apply(d, drop(20, 1, 'votes', 'counter'), drop(21, 2, 'tags', 'set'), inc(30), add(31))).toEqual(['applied', 'applied', 'applied', 'applied'])
    expect(d.state).toEqual({ cards: { c: { votes: 2, tags: ['x', 'y'] } } })
  })

  it('written whole (not removed): the later stamp wins in either order too', () => {
    const whole = (ms: number) => makeOp('bob', 1, ['cards', 'c', 'votes'], 10, { op: 'replace', policy: 'counter', hlc: stamp(ms, 'bob'), base: { seed: 1 } })
    // The whole write is later: it stands in either order (an older increment arriving second was added to it: 11).
    let d = seeded()
    expect(apply(d, inc(10), whole(20))).toEqual(['applied', 'applied'])
    expect((d.state as { cards: { c: { votes: number } } }).cards.c.votes).toBe(10)
    d = seeded()
    expect(apply(d, whole(20), inc(10))).toEqual(['applied', 'superseded'])
    expect((d.state as { cards: { c: { votes: number } } }).cards.c.votes).toBe(10)
    // The increment is later: it stands in either order, on the count it saw (1 + 1), not on the whole value.
    d = seeded()
    expect(apply(d, inc(30), whole(20))).toEqual(['applied', 'superseded'])
    expect((d.state as { cards: { c: { votes: number } } }).cards.c.votes).toBe(2)
    d = seeded()
    expect(apply(d, whole(20), inc(30))).toEqual(['applied', 'applied'])
    expect((d.state as { cards: { c: { votes: number } } }).cards.c.votes).toBe(2)
  })

  it('replays to the same state, and entries stored before the rule replay as they were applied', () => {
    const d = seeded()
    const entries = [
      d.applyOp(makeOp('seed', 1, ['cards', 'c'], { votes: 1, tags: ['x'] }, { op: 'replace', hlc: stamp(0, 'seed') }), { now }),
    ]
    const live = new DocState('cs')
    const ops = [entries[0]!.op, drop(20, 1, 'votes', 'counter'), inc(30)]
    const logged = ops.map((op) => live.applyOp(op, { now }))
    expect(logged[2]!.counted).toBe(1)
    const again = new DocState('cs')
    for (const e of logged) again.replay(e)
    expect(again.state).toEqual(live.state)
    // Before the rule, the increment brought the field back with its own delta: so it replays.
    const old = new DocState('cs')
    for (const e of logged) {
      const { counted: _c, ...rest } = e
      old.replay(rest)
    }
    expect(old.state).toEqual({ cards: { c: { votes: 1, tags: ['x'] } } })
  })
})

describe('arrays merged by id', () => {
  it('an op merging by id an array with a repeated or missing id is refused (BAD_REQUEST), not applied with elements dropped', async () => {
    const doc = await joined('ids')
    const list = (n: number, value: unknown[], prev: unknown[] = []) => makeOp('ids', n, ['lists', 'l', 'items'], value, { op: 'replace', idKey: 'id', prev, hlc: stamp(n, 'ids'), base: n > 1 ? { ids: n - 1 } : {} })
    expect((await send(doc, list(1, [{ id: 1, t: 'milk' }, { id: 2, t: 'eggs' }, { id: 1, t: 'bread' }])))[0]).toMatchObject({ ok: false, code: 'BAD_REQUEST' })
    expect((await send(doc, list(1, [{ t: 'no id' }, { t: 'none either' }])))[0]).toMatchObject({ ok: false, code: 'BAD_REQUEST' })
    expect((await send(doc, list(1, [1, 2, 3])))[0]).toMatchObject({ ok: false, code: 'BAD_REQUEST' })
    expect((await send(doc, list(1, [{ id: 1, t: 'milk' }], [{ id: 5 }, { id: 5 }])))[0]).toMatchObject({ ok: false, code: 'BAD_REQUEST' })
    // Without idKey the same array is a whole value, kept as written.
    const whole = makeOp('ids', 1, ['lists', 'l', 'items'], [{ id: 1, t: 'milk' }, { id: 2, t: 'eggs' }, { id: 1, t: 'bread' }], { op: 'replace', hlc: stamp(1, 'ids') })
    expect((await send(doc, whole))[0]).toMatchObject({ ok: true, status: 'applied' })
    expect(((await server.doc(doc)).current().state as { lists: { l: { items: unknown[] } } }).lists.l.items).toHaveLength(3)
  })
})

describe('client ids', () => {
  it('named like Object.prototype members write as any other (they were refused as "belonging to another user")', async () => {
    const s = await connectRaw(server.url, { auth: { user: { id: 'u1' } } })
    try {
      for (const client of ['toString', 'valueOf', 'hasOwnProperty', '__defineGetter__']) {
        const doc = `proto-${client}`
        expect((await ask<Answer>(s, 'zync:join', { v: 2, doc, client, since: 0 })).ok).toBe(true)
        const r = (await ask<Answer>(s, 'zync:ops', { doc, ops: [makeOp(client, 1, ['k', 'v'], 1)] })).results![0]!
        expect(r, client).toMatchObject({ ok: true, status: 'applied' })
      }
    } finally {
      s.disconnect()
    }
  })
})

describe('history', () => {
  it('an answer bigger than a quarter of maxBufferedBytes is cut to the newest entries (truncated), and the asker stays connected', async () => {
    const small = await createSyncServer({ port: 0, storage: { kind: 'memory' }, logLevel: 'silent', limits: { maxBufferedBytes: 4_000_000, opsPerSecond: 1e6, messagesPerSecond: 1e6, bytesPerSecond: 1e10, historyPerSecond: 1e9 } })
    const s = await connectRaw(small.url)
    try {
      const doc = 'big-history'
      expect((await ask<Answer>(s, 'zync:join', { v: 2, doc, client: 'h', since: 0 })).ok).toBe(true)
      // 40 edits of a 100 KB text: each entry holds the value and the value before, ~200 KB.
      for (let n = 1; n <= 40; n++) {
        const r = await ask<Answer>(s, 'zync:ops', { doc, ops: [makeOp('h', n, ['notes', 'n', 'text'], String(n % 10).repeat(100_000), { op: 'replace', base: n > 1 ? { h: n - 1 } : {} })] })
        expect(r.results![0]!.ok).toBe(true)
      }
      const answer = await ask<Omit<Answer, 'entries'> & { entries: Array<{ n: number }> }>(s, 'zync:history', { doc, limit: 40 })
      expect(answer.ok).toBe(true)
      expect(answer.truncated).toBe(true)
      // A quarter of 4 MB is ~5 entries of ~200 KB: the newest ones, in order.
      expect(answer.entries.length).toBeGreaterThanOrEqual(3)
      expect(answer.entries.length).toBeLessThan(8)
      expect(answer.entries.map((e) => e.n)).toEqual(Array.from({ length: answer.entries.length }, (_, i) => 40 - i))
      expect(s.connected).toBe(true)
      const short = await ask<Answer>(s, 'zync:history', { doc, limit: 2 })
      expect(short.entries).toHaveLength(2)
      expect(short.truncated).toBeUndefined()
    } finally {
      s.disconnect()
      await small.close()
    }
  })
})

describe('a reader that stops reading', () => {
  it('is dropped as a slow consumer once what is queued for it passes maxBufferedBytes, however few the packets', async () => {
    const srv = await createSyncServer({ port: 0, storage: { kind: 'memory' }, logLevel: 'silent', limits: { maxBufferedBytes: 2_000_000, opsPerSecond: 1e6, messagesPerSecond: 1e6, bytesPerSecond: 1e10 } })
    const reader = await connectRaw(srv.url)
    const writer = await connectRaw(srv.url)
    try {
      const doc = 'slow'
      expect((await ask<Answer>(reader, 'zync:join', { v: 2, doc, client: 'r', since: 0 })).ok).toBe(true)
      expect((await ask<Answer>(writer, 'zync:join', { v: 2, doc, client: 'w', since: 0 })).ok).toBe(true)
      // The reader's TCP socket stops reading: what the server sends it piles up.
      ;(reader.io.engine.transport as unknown as { ws: { _socket: { pause(): void } } }).ws._socket.pause()
      let n = 0
      // 30 MB in 300 messages of 100 KB, far under the 10,000-packet limit: once the socket's buffer is
      // full, engine.io queues the rest in its own write buffer, which was not counted.
      for (let i = 0; i < 300; i++) {
        n++
        const op = makeOp('w', n, ['big', `b${n % 20}`, 'v'], 'z'.repeat(100_000), { op: 'replace', base: n > 1 ? { w: n - 1 } : {} })
        expect((await ask<Answer>(writer, 'zync:ops', { doc, ops: [op] })).ok).toBe(true)
      }
      const dropped = async () => /zync_disconnects_total\{reason="slow consumer"\} [1-9]/.test(await srv.metrics())
      const until = Date.now() + 5000
      while (!(await dropped()) && Date.now() < until) await new Promise((r) => setTimeout(r, 100))
      expect(await dropped()).toBe(true)
      expect(writer.connected).toBe(true)
    } finally {
      reader.disconnect()
      writer.disconnect()
      await srv.close()
    }
  }, 20_000)
})
