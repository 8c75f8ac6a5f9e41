// Snapshots every N ops, snapshot + tail for new clients, log compaction that never breaks catch-up.
import path from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import type { Change, JoinResponse } from '../../src/core/protocol'
import { setAt } from '../../src/core/patch'
import { createSyncServer, type SyncServer, type SyncServerOptions } from '../../src/server/index'
import { DocHost } from '../../src/server/doc-host'
import { MemoryStorage } from '../../src/server/storage/memory'
import { dataOf, makeBoard, waitFor } from '../helpers'
import { ask, connectRaw, makeOp, tempDir } from './helpers'

const servers: SyncServer[] = []
const cleanups: Array<() => unknown> = []
const dir = tempDir('zync-snap-')
afterAll(async () => {
  for (const c of cleanups.reverse()) await c()
  for (const s of servers) await s.close()
  dir.remove()
})
async function server(opts: Partial<SyncServerOptions>) {
  const s = await createSyncServer({ port: 0, storage: { kind: 'memory' }, logLevel: 'silent', ...opts })
  servers.push(s)
  return s
}
type Joined = Extract<JoinResponse, { ok: true }>

async function writeOps(url: string, doc: string, count: number, client = 'w') {
  const sock = await connectRaw(url)
  await ask(sock, 'zync:join', { v: 2, doc, client, since: 0 })
  const ids: string[] = []
  for (let i = 1; i <= count; i++) {
    const op = makeOp(client, i, ['items', `i${i}`], { i })
    ids.push(op.id)
    const r = await ask<{ ok: boolean }>(sock, 'zync:ops', { doc, ops: [op] })
    expect(r.ok).toBe(true)
  }
  sock.disconnect()
  return ids
}
async function join(url: string, doc: string, since: number): Promise<Joined> {
  const sock = await connectRaw(url)
  try {
    const r = await ask<JoinResponse>(sock, 'zync:join', { v: 2, doc, client: `j${since}`, since })
    if (!r.ok) throw new Error(JSON.stringify(r))
    return r
  } finally {
    sock.disconnect()
  }
}
function rebuild(j: Joined, from: Record<string, unknown> = {}) {
  let state = j.snapshot ? j.snapshot.state : from
  for (const c of j.changes as Change[]) if (c.status === 'applied') state = setAt(state, c.path, c.value, c.kind === 'delete')
  return state
}
const expected = (n: number) => ({ items: Object.fromEntries(Array.from({ length: n }, (_, i) => [`i${i + 1}`, { i: i + 1 }])) })

describe('snapshots and compaction', () => {
  it('snapshots every N ops; a new client gets the current state, not the log (nor the stored snapshot and its tail)', async () => {
    const s = await server({ snapshotEvery: 10 })
    await writeOps(s.url, 'snap', 35)
    const stored = await s.storage.loadSnapshot('snap')
    expect(stored?.seq).toBe(30)
    const fresh = await join(s.url, 'snap', 0)
    expect(fresh.snapshot?.seq).toBe(35)
    expect(fresh.changes).toEqual([])
    expect(fresh.seq).toBe(35)
    expect(rebuild(fresh)).toEqual(expected(35))
    // Clients get state and vectors, not the server's merge internals or client ownership.
    expect(fresh.snapshot!.fields).toEqual({})
    expect(Object.keys(fresh.snapshot!).sort()).toEqual(['fields', 'seq', 'state', 'vv'])
    // A client close behind gets only the tail.
    const close = await join(s.url, 'snap', 31)
    expect(close.snapshot).toBeUndefined()
    expect(close.changes.map((c) => c.seq)).toEqual([32, 33, 34, 35])
    expect(await join(s.url, 'snap', 35)).toMatchObject({ changes: [], seq: 35 })
  })

  it('compacts the log behind the snapshot; clients too far behind get a snapshot, and converge', async () => {
    const s = await server({ snapshotEvery: 10, keepLog: 2 })
    await writeOps(s.url, 'compact', 35)
    const log = await s.storage.readLog('compact', 0)
    expect(log[0]!.seq).toBe(29) // snapshot at 30, two entries kept behind it
    // Behind the compaction point but within snapshotEvery: the tail is gone, the state comes whole.
    const behind = await join(s.url, 'compact', 25)
    expect(behind.snapshot?.seq).toBe(35)
    expect(behind.changes).toEqual([])
    expect(rebuild(behind)).toEqual(expected(35))
    // Still inside the kept log: a tail.
    const inside = await join(s.url, 'compact', 29)
    expect(inside.snapshot).toBeUndefined()
    expect(inside.changes.map((c) => c.seq)).toEqual([30, 31, 32, 33, 34, 35])
    // An op sent again after compaction is still recognized: acknowledged, not applied twice.
    const sock = await connectRaw(s.url)
    await ask(sock, 'zync:join', { v: 2, doc: 'compact', client: 'w', since: 35 })
    const again = await ask<{ results: Array<{ ok: boolean; duplicate?: boolean; seq: number }> }>(sock, 'zync:ops', { doc: 'compact', ops: [{ ...log[0]!.op }] })
    sock.disconnect()
    expect(again.results[0]).toMatchObject({ ok: true, duplicate: true, seq: 29 })
    expect((await s.doc('compact')).seq).toBe(35)
  })

  it('a store that was offline past the compaction point catches up through a snapshot, keeping its own pending edits', async () => {
    const s = await server({ snapshotEvery: 10, keepLog: 0 })
    const away = makeBoard({ name: 'trip', url: s.url })
    const home = makeBoard({ name: 'trip', url: s.url })
    cleanups.push(() => away.sync.destroy(), () => home.sync.destroy())
    await waitFor(() => away.sync.status().connection === 'online' && home.sync.status().connection === 'online', 5000, 'online')
    home.getState().addCard('first', 'before the trip')
    await home.sync.flush()
    await waitFor(() => away.getState().cards.first !== undefined, 5000, 'away has the first card')
    away.sync.disconnect()
    away.getState().addCard('offline', 'made on the road')
    for (let i = 0; i < 45; i++) home.getState().addCard(`h${i}`, `home ${i}`)
    await home.sync.flush()
    // Compacted past away's seq. The snapshot is stored, and the log compacted behind it, in the
    // background (writes go on meanwhile): on a busy machine that ends after the flush.
    const firstSeq = async () => (await s.storage.readLog('trip', 0))[0]?.seq ?? Infinity
    for (const until = Date.now() + 5000; (await firstSeq()) <= 2 && Date.now() < until; ) await new Promise((r) => setTimeout(r, 10))
    expect(await firstSeq()).toBeGreaterThan(2)
    away.sync.connect()
    await away.sync.flush({ timeout: 5000 }).catch((e) => {
      console.log(JSON.stringify(away.sync.status()), JSON.stringify(away.sync.pendingOperations()), JSON.stringify(away.sync.deadLetters()))
      throw e
    })
    await waitFor(() => isDeepStrictEqual(dataOf(away), dataOf(home)), 5000, 'converged')
    expect(Object.keys(away.getState().cards)).toHaveLength(47)
    expect(away.getState().cards.offline?.title).toBe('made on the road')
  })

  it('a restarted server rebuilds from snapshot plus log (SQLite)', async () => {
    const file = path.join(dir.dir, 'snap.db')
    const s1 = await server({ storage: { kind: 'sqlite', file }, snapshotEvery: 10, keepLog: 3 })
    await writeOps(s1.url, 'restart', 27)
    await s1.close()
    const s2 = await server({ storage: { kind: 'sqlite', file }, snapshotEvery: 10, keepLog: 3 })
    const h = await s2.doc('restart')
    expect(h.seq).toBe(27)
    expect(h.current().state).toEqual(expected(27))
    const j = await join(s2.url, 'restart', 0)
    expect(rebuild(j)).toEqual(expected(27))
    expect(j.changes.length).toBeLessThan(27)
  })
})

describe('default snapshot interval', () => {
  it('is 2000 ops, or half as many ops as the document has fields once it has more than 4000 (bounded cost per write)', async () => {
    const storage = new MemoryStorage()
    await storage.init()
    const host = await DocHost.load('big', storage)
    let n = 0
    const write = async (count: number, field: (i: number) => string) => {
      for (let done = 0; done < count; done += 500) {
        const ops = Array.from({ length: 500 }, (_, i) => makeOp('cw', ++n, ['rows', field(done + i)], n))
        const r = await host.submit(ops, undefined, false)
        expect(r.results.every((x) => x.ok)).toBe(true)
        // A due snapshot is taken after the acknowledgement (setImmediate), before the next batch.
        await new Promise((r) => setImmediate(r))
      }
    }
    // Snapshots are saved after the acknowledgement, serialized in slices in the background: the seq of
    // the stored one once it is `want` or 3 s have passed (a loaded machine took more than the 20 ms this
    // waited before); for a snapshot that must not have been taken, what is stored after 20 ms.
    const snapSeq = async (want?: number) => {
      const until = Date.now() + (want === undefined ? 20 : 3000)
      for (;;) {
        await new Promise((r) => setTimeout(r, 10))
        const seq = (await storage.loadSnapshot('big'))?.seq
        if (seq === want || Date.now() >= until) return seq
      }
    }
    // 2000 writes to 2000 fields: due at 2000 ops.
    await write(2000, (i) => `a${i}`)
    expect(await snapSeq(2000)).toBe(2000)
    // 4000 more to new fields: 6000 fields; due at 2000 ops since (4000 fields then), then not before 3000 ops since (6000 fields).
    await write(4000, (i) => `b${i}`)
    expect(await snapSeq(4000)).toBe(4000)
    await write(500, (i) => `a${i}`)
    expect(await snapSeq()).toBe(4000)
    await write(500, (i) => `a${i}`)
    expect(await snapSeq(7000)).toBe(7000)
  })

  it('keeps coming for a document whose every op adds a record, so keepLog bounds its log (it stopped at the first one)', async () => {
    const storage = new MemoryStorage()
    await storage.init()
    const host = await DocHost.load('chat', storage, { keepLog: 100 })
    let n = 0
    for (let batch = 0; batch < 40; batch++) {
      const ops = Array.from({ length: 500 }, () => makeOp('cw', ++n, ['messages', `m${n}`], { text: `message ${n}` }))
      expect((await host.submit(ops, undefined, false)).results.every((x) => x.ok)).toBe(true)
      await new Promise((r) => setImmediate(r))
    }
    // 20,000 records added: snapshots at 2000, 4000, 8000 and 16000 (each after as many ops as before),
    // stored in the background (up to 3 s on a loaded machine).
    for (let i = 0; i < 300 && (await storage.loadSnapshot('chat'))?.seq !== 16000; i++) await new Promise((r) => setTimeout(r, 10))
    expect((await storage.loadSnapshot('chat'))?.seq).toBe(16000)
    // So the log holds what came after the newest snapshot (plus keepLog), not all 20,000 entries.
    expect((await storage.readLog('chat', 0)).length).toBe(20000 - 16000 + 100)
  })
})

describe('large values', () => {
  const big = (i: number) => `${i} `.padEnd(200_000, 'x')

  it("a join's tail of few ops but large values comes as the current state, inside the send buffer (a client fell behind by a long text's keystrokes and was dropped and rejoined forever)", async () => {
    // A 4 MB send buffer: tails up to 1 MB.
    const s = await server({ limits: { maxBufferedBytes: 4_000_000 } })
    const sock = await connectRaw(s.url)
    cleanups.push(() => sock.disconnect())
    await ask(sock, 'zync:join', { v: 2, doc: 'essay', client: 'w', since: 0 })
    for (let i = 1; i <= 20; i++) expect((await ask<{ ok: boolean }>(sock, 'zync:ops', { doc: 'essay', ops: [makeOp('w', i, ['essay', 'body'], big(i))] })).ok).toBe(true)
    // 20 ops behind (far under snapshotEvery) but ~4 MB of values: the state, ~200 KB.
    const far = await join(s.url, 'essay', 0)
    expect(far.changes).toHaveLength(0)
    expect(far.snapshot?.state).toEqual({ essay: { body: big(20) } })
    // A few ops behind, under the budget: the tail, as before.
    const near = await join(s.url, 'essay', 17)
    expect(near.snapshot).toBeUndefined()
    expect((near.changes as Change[]).map((c) => c.seq)).toEqual([18, 19, 20])
  })

  it("ops of large values make a snapshot due before snapshotEvery's count, so keepLog compacts such a document", async () => {
    const storage = new MemoryStorage()
    await storage.init()
    const host = await DocHost.load('essay', storage, { keepLog: 5 })
    // 100 keystrokes of a 200 KB text: 20 MB of values in 100 ops (the count alone waits for 2000).
    for (let n = 1; n <= 100; n++) {
      expect((await host.submit([makeOp('w', n, ['essay', 'body'], big(n))], undefined, false)).results[0]!.ok).toBe(true)
      await new Promise((r) => setImmediate(r))
    }
    for (let i = 0; i < 300 && (await storage.loadSnapshot('essay')) === undefined; i++) await new Promise((r) => setTimeout(r, 10))
    const snap = await storage.loadSnapshot('essay')
    // Due once 16 MB were written (~80 ops of 200 KB); the log keeps 5 before it and what came after.
    expect(snap?.seq).toBeGreaterThanOrEqual(75)
    expect(snap?.seq).toBeLessThanOrEqual(85)
    expect((await storage.readLog('essay', 0)).length).toBe(100 - snap!.seq + 5)
  })
})

describe('snapshots are stored in the background', () => {
  it('the document\'s writes go on while a snapshot is being stored; one that fails is taken again later', async () => {
    const storage = new MemoryStorage()
    await storage.init()
    const save = storage.saveSnapshot.bind(storage)
    let release: (() => void) | undefined
    let calls = 0
    storage.saveSnapshot = async (doc, snap) => {
      calls++
      if (calls === 1) await new Promise<void>((r) => (release = r))
      if (calls === 2) throw new Error('disk full (test)')
      return save(doc, snap)
    }
    const errors: unknown[] = []
    const host = await DocHost.load('bg', storage, { snapshotEvery: 1000, onError: (e) => errors.push(e) })
    let n = 0
    const write = async (count: number) => {
      for (let done = 0; done < count; done += 500) {
        const ops = Array.from({ length: 500 }, (_, i) => makeOp('bw', ++n, ['rows', `r${done + i}`], n))
        expect((await host.submit(ops, undefined, false)).results.every((x) => x.ok)).toBe(true)
        await new Promise((r) => setTimeout(r, 5))
      }
    }
    await write(1000)
    expect(calls).toBe(1) // taken at 1000, its storing held open
    // Writes are acknowledged while it is stored (they used to wait for it: it ran in the document's lock).
    await write(1500)
    expect(release).toBeDefined()
    expect(await storage.loadSnapshot('bg')).toBeUndefined()
    release!()
    const storedAt = async (seq: number) => {
      for (let i = 0; i < 500 && (await storage.loadSnapshot('bg'))?.seq !== seq; i++) await new Promise((r) => setTimeout(r, 10))
      expect((await storage.loadSnapshot('bg'))?.seq).toBe(seq)
    }
    await storedAt(1000)
    expect(calls).toBe(1) // one at a time: none was taken while it was being stored
    // Due again (1500 ops since): taken at the next write, and it fails.
    await write(500)
    await waitFor(() => errors.length === 1)
    expect(String(errors[0])).toContain('disk full')
    expect((await storage.loadSnapshot('bg'))?.seq).toBe(1000)
    // Not stored, so still due: the next write takes it again.
    await write(500)
    await storedAt(3500)
    const state = (await storage.loadSnapshot('bg'))!.state as { rows: Record<string, number> }
    expect(Object.keys(state.rows)).toHaveLength(1500)
  })
})

describe('version vectors stay bounded by the record, not by every client id that ever wrote it', () => {
  it('300 writers of one field: the vector keeps its last writers, a logged base the entries that decided, and concurrency and replay are unchanged', async () => {
    const storage = new MemoryStorage()
    await storage.init()
    const host = await DocHost.load('vv', storage)
    const seen: Record<string, number> = {}
    // 300 stores (a new client id per page load), each writing the title once, each having seen all before it.
    for (let i = 1; i <= 300; i++) {
      const r = await host.submit([makeOp(`c${i}`, 1, ['rows', 'r1', 'title'], `t${i}`, { op: 'replace', base: { ...seen } })], undefined, false)
      expect(r.results[0]).toMatchObject({ ok: true, status: 'applied' })
      seen[`c${i}`] = 1
    }
    const vv = (await host.current().publicSnapshot()).vv['rows/r1']!
    expect(Object.keys(vv).length).toBeLessThanOrEqual(9)
    expect(vv.c300).toBe(1)
    // Each logged op keeps of its 299-entry base only the last writer it was checked against.
    const [last] = await storage.readLog('vv', 299, 1)
    expect(last!.op.base).toEqual({ c299: 1 })
    // A client that had not seen c300's write is still concurrent with it (a conflict under 'manual')...
    const stale = { ...seen }
    delete stale.c300
    const late = await host.submit([makeOp('late', 1, ['rows', 'r1', 'title'], 'late', { op: 'replace', base: stale, policy: 'manual' })], undefined, false)
    expect(late.results[0]).toMatchObject({ ok: true, status: 'conflict' })
    // ...and one that had, is not.
    const fresh = await host.submit([makeOp('fresh', 1, ['rows', 'r1', 'title'], 'fresh', { op: 'replace', base: seen, policy: 'manual' })], undefined, false)
    expect(fresh.results[0]).toMatchObject({ ok: true, status: 'applied' })
    // Replaying the log (no snapshot) rebuilds the same document.
    const replayed = await DocHost.load('vv', storage, { snapshotEvery: 1_000_000 })
    expect(replayed.current().state).toEqual(host.current().state)
    expect(replayed.seq).toBe(302)
  })

  it('a store reusing its clientId after a snapshot join continues its counter from the server (its own vector entries were pruned)', async () => {
    const s = await server({ snapshotEvery: 5 })
    const doc = 'reuse'
    const mine = await connectRaw(s.url)
    expect((await ask(mine, 'zync:join', { v: 2, doc, client: 'fixed', since: 0 })).ok).toBe(true)
    expect((await ask<{ ok: boolean }>(mine, 'zync:ops', { doc, ops: [makeOp('fixed', 7, ['rows', 'r1', 'title'], 'mine')] })).ok).toBe(true)
    const others = await connectRaw(s.url)
    expect((await ask(others, 'zync:join', { v: 2, doc, client: 'o0', since: 0 })).ok).toBe(true)
    for (let i = 1; i <= 12; i++) {
      const r = await ask<{ ok: boolean }>(others, 'zync:ops', { doc, ops: [makeOp(`o${i}`, 1, ['rows', 'r1', 'title'], `o${i}`, { op: 'replace', base: { fixed: 7 } })] })
      expect(r.ok).toBe(true)
    }
    // Joining from zero gets a snapshot whose vector no longer names 'fixed', and the counter it had reached.
    const again = await ask<JoinResponse>(mine, 'zync:join', { v: 2, doc, client: 'fixed', since: 0 })
    if (!again.ok) throw new Error('refused')
    expect(again.snapshot?.vv['rows/r1']?.fixed).toBeUndefined()
    expect(again.n).toBe(7)
    // A store with that id on a fresh device database (nothing saved) takes its next op after 7.
    const store = makeBoard({ url: s.url, name: doc, clientId: 'fixed' })
    await waitFor(() => store.sync.status().connection === 'online', 5000, 'online')
    store.getState().addCard('c1', 'from the store')
    await store.sync.flush({ timeout: 5000 })
    const [entry] = await s.history(doc, { limit: 1 })
    expect(entry).toMatchObject({ client: 'fixed', n: 8 })
    await store.sync.destroy()
  })
})

describe('copy-on-write across batches', () => {
  it('a snapshot handed out (to storage or a joining client) is never changed by later batches (which otherwise share one copy-on-write epoch)', async () => {
    const storage = new MemoryStorage()
    // Snapshots only when asked, so batches share one copy-on-write epoch until a snapshot is taken.
    const host = await DocHost.load('cow', storage, { snapshotEvery: 1_000_000 })
    const write = (n: number, p: Array<string | number>, v: unknown) => host.submit([makeOp('w', n, p, v, { op: 'replace' })], 'u', false)
    await write(1, ['items', 'a', 'title'], 'one')
    await write(2, ['items', 'b', 'title'], 'two')
    // A client claiming a seq the server never reached gets the current state as a snapshot.
    const joined = await host.since(999, false)
    const handed = joined.snapshot!.state as { items: Record<string, { title: string }> }
    const copy = structuredClone(handed)
    await host.flushSnapshot()
    const stored = (await storage.loadSnapshot('cow'))!
    // Later batches write the same record, a new record and the same field again.
    await write(3, ['items', 'a', 'title'], 'three')
    await write(4, ['items', 'c', 'title'], 'four')
    await write(5, ['items', 'a'], { title: 'five' })
    expect(handed).toEqual(copy)
    expect(handed.items.a!.title).toBe('one')
    expect(stored.state).toEqual(copy)
    expect(host.current().state).toEqual({ items: { a: { title: 'five' }, b: { title: 'two' }, c: { title: 'four' } } })
  })

  it('the state read through current().state (SyncServer.doc) is not changed by later batches either', async () => {
    const host = await DocHost.load('cow-read', new MemoryStorage(), { snapshotEvery: 1_000_000 })
    const write = (n: number, p: Array<string | number>, v: unknown) => host.submit([makeOp('w', n, p, v, { op: 'replace' })], 'u', false)
    await write(1, ['items', 'a', 'title'], 'one')
    await write(2, ['items', 'b', 'title'], 'two')
    const held = host.current().state as { items: Record<string, { title: string }> }
    await write(3, ['items', 'a', 'title'], 'three')
    await write(4, ['items', 'c', 'title'], 'four')
    expect(held).toEqual({ items: { a: { title: 'one' }, b: { title: 'two' } } })
    expect(host.current().state).toEqual({ items: { a: { title: 'three' }, b: { title: 'two' }, c: { title: 'four' } } })
  })
})
