/**
 * Conflicts through the public API, with a real server and stores on fake-indexeddb: detection by
 * version vectors, every policy, the persistent inbox (resolve, reload, moot, tabs, typed errors),
 * audit history, clamped clocks and id-keyed arrays.
 */
import { describe, expect, it } from 'vitest'
import { createStore } from 'zustand/vanilla'
import { io as connect } from 'socket.io-client'
import { sync, ZyncError, type Conflict, type ConflictsConfig, type SyncOptions } from 'zync'
import { freshDb, useCleanup, waitFor } from './helpers'
import { MemoryStorage } from '../src/server/storage/memory'
import type { LogEntry } from '../src/server/storage/types'

type Card = Record<string, unknown>
interface Doc {
  cards: Record<string, Card>
}
type Store = ReturnType<typeof makeStore>

const { cleanups, server } = useCleanup()

/** The larger number wins: an app rule every replica applies the same way. */
const larger = ({ local, remote }: { local: unknown; remote: unknown }) => Math.max(Number(local ?? 0), Number(remote ?? 0))

const CONFLICTS: ConflictsConfig = {
  default: 'lww',
  paths: {
    'cards.*.title': 'manual',
    'cards.*.votes': 'counter',
    'cards.*.tags': 'set',
    'cards.*.owner': 'local',
    'cards.*.status': 'remote',
    'cards.*.score': larger,
    'cards.*.checklist': 'manual',
    'cards.*.links': 'remote',
    'cards.*.refs': 'local',
    'cards.*.spec': 'manual',
    'cards.*.style': 'remote',
  },
}


function makeStore(url: string, opts: Partial<SyncOptions<Doc>> = {}) {
  const store = createStore<Doc>()(sync(() => ({ cards: {} }), { name: 'board', url, dbName: freshDb(), crossTab: false, conflicts: CONFLICTS, onWarning: () => {}, ...opts }))
  cleanups.push(() => store.sync.destroy())
  return store
}

function edit(store: Store, id: string, fields: Card): void {
  store.setState((s) => ({ cards: { ...s.cards, [id]: { ...s.cards[id], ...fields } } }))
}

async function online(...stores: Store[]): Promise<void> {
  await Promise.all(stores.map((s) => s.sync.ready))
  await waitFor(() => stores.every((s) => s.sync.status().connection === 'online'), 5000, 'stores online')
}

/** Everything flushed and every store at the server's head. */
async function settled(srv: Awaited<ReturnType<typeof server>>, ...stores: Store[]): Promise<void> {
  await Promise.all(stores.map((s) => s.sync.flush({ timeout: 5000 })))
  const head = async () => (await srv.doc('board')).seq
  const target = await head()
  await waitFor(() => stores.every((s) => s.sync.status().seq >= target && s.sync.status().pending === 0), 5000, `stores at seq ${target}`)
}

/** Two stores that both saw card c1 created, then went offline. */
async function pair(card: Card = { title: 'base', votes: 0, tags: ['a'], owner: 'nobody', status: 'todo', score: 1, notes: 'n0' }, opts: Partial<SyncOptions<Doc>> = {}, bOpts: Partial<SyncOptions<Doc>> = {}) {
  const srv = await server()
  const a = makeStore(srv.url, { user: { id: 'alice' }, ...opts })
  const b = makeStore(srv.url, { user: { id: 'bob' }, ...opts, ...bOpts })
  await online(a, b)
  edit(a, 'c1', card)
  await settled(srv, a, b)
  await waitFor(() => b.getState().cards.c1 !== undefined)
  a.sync.disconnect()
  b.sync.disconnect()
  return { srv, a, b }
}

/** Alice and Bob (options `bOpts`) both retitle c1 offline; Alice's op lands first: Bob has a conflict. */
async function conflicted(bOpts: Partial<SyncOptions<Doc>> = {}) {
  const ctx = await pair(undefined, {}, bOpts)
  edit(ctx.a, 'c1', { title: 'alice' })
  edit(ctx.b, 'c1', { title: 'bob' })
  await deliver(ctx.srv, ctx.a, ctx.b)
  await waitFor(() => ctx.b.sync.conflicts().length === 1)
  return { ...ctx, conflict: ctx.b.sync.conflicts()[0]! }
}

/** Reconnects the stores one after the other, so the server sees their ops in this order. */
async function deliver(srv: Awaited<ReturnType<typeof server>>, ...stores: Store[]): Promise<void> {
  for (const s of stores) {
    s.sync.connect()
    await online(s)
    await s.sync.flush({ timeout: 5000 })
  }
  await settled(srv, ...stores)
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** An id-keyed checklist. */
const list = (...xs: Array<[string, string]>) => xs.map(([id, text]) => ({ id, text }))

describe('detection by version vectors', () => {
  it('causally ordered edits of one field never conflict, even under manual', async () => {
    const { srv, a, b } = await pair()
    a.sync.connect()
    b.sync.connect()
    await online(a, b)
    edit(a, 'c1', { title: 'first' })
    await settled(srv, a, b)
    await waitFor(() => b.getState().cards.c1?.title === 'first')
    edit(b, 'c1', { title: 'second, having seen the first' })
    await settled(srv, a, b)
    await waitFor(() => a.getState().cards.c1?.title === 'second, having seen the first')
    expect(a.sync.conflicts()).toEqual([])
    expect(b.sync.conflicts()).toEqual([])
    const h = await srv.history('board', { path: ['cards', 'c1', 'title'] })
    // The two edits, then the record's creation: the title ('manual', not the record's 'lww') as an op of
    // its own after the record's.
    expect(h.map((e) => [e.path.join('.'), e.status])).toEqual([
      ['cards.c1.title', 'applied'],
      ['cards.c1.title', 'applied'],
      ['cards.c1.title', 'applied'],
      ['cards.c1', 'applied'],
    ])
    // A dotted path reads the same entries, on the server as on the client.
    expect(await srv.history('board', { path: 'cards.c1.title' })).toEqual(h)
    expect(await a.sync.history({ path: 'cards.c1.title' })).toEqual(h)
  })

  it('concurrent edits of different fields of one record merge and raise nothing', async () => {
    const { srv, a, b } = await pair()
    const raised: Conflict[] = []
    a.sync.on('sync:conflict', ({ conflict }) => raised.push(conflict))
    b.sync.on('sync:conflict', ({ conflict }) => raised.push(conflict))
    edit(a, 'c1', { title: 'title by alice' })
    edit(b, 'c1', { notes: 'notes by bob', status: 'doing' })
    await deliver(srv, a, b)
    for (const s of [a, b]) await waitFor(() => s.getState().cards.c1?.title === 'title by alice' && s.getState().cards.c1?.notes === 'notes by bob')
    expect(a.getState().cards).toEqual(b.getState().cards)
    expect(b.getState().cards.c1).toMatchObject({ title: 'title by alice', notes: 'notes by bob', status: 'doing' })
    expect(raised).toEqual([])
    const statuses = (await srv.history('board')).map((e) => e.status)
    expect(statuses.every((s) => s === 'applied')).toBe(true)
  })

  it('concurrent edits of a manual field to the same value are no conflict: nothing to decide', async () => {
    // A re-check in Chromium: two people typing in a 'manual' title both typed a space first; a conflict
    // was raised over two identical values, and its dialog took the next keys the second person typed.
    const { srv, a, b } = await pair()
    const raised: Conflict[] = []
    a.sync.on('sync:conflict', ({ conflict }) => raised.push(conflict))
    b.sync.on('sync:conflict', ({ conflict }) => raised.push(conflict))
    edit(a, 'c1', { title: 'base ' })
    edit(b, 'c1', { title: 'base ' })
    await deliver(srv, a, b)
    expect(raised).toEqual([])
    expect(a.sync.conflicts()).toEqual([])
    expect(b.sync.conflicts()).toEqual([])
    expect(a.getState().cards.c1?.title).toBe('base ')
    expect(b.getState().cards.c1?.title).toBe('base ')
    const h = await srv.history('board', { path: ['cards', 'c1', 'title'] })
    expect(h.slice(0, 2).map((e) => e.status)).toEqual(['applied', 'applied'])
  })

  it('concurrent edits of the same field are a conflict: the later one goes to its author’s inbox, with everything needed to decide', async () => {
    const { srv, a, b } = await pair()
    const events: Conflict[] = []
    b.sync.on('sync:conflict', ({ conflict }) => events.push(conflict))
    edit(a, 'c1', { title: 'alice' })
    edit(b, 'c1', { title: 'bob' })
    await deliver(srv, a, b)
    await waitFor(() => b.sync.conflicts().length === 1)
    const [c] = b.sync.conflicts()
    expect(c).toMatchObject({
      path: ['cards', 'c1', 'title'],
      entity: 'cards/c1',
      field: 'title',
      base: 'base',
      local: 'bob',
      remote: 'alice',
      // The server has no authenticate here, so it trusts each store's `user` option.
      localMeta: { clientId: b.sync.clientId, userId: 'bob' },
      remoteMeta: { clientId: a.sync.clientId, userId: 'alice' },
      policy: 'manual',
    })
    expect(typeof c!.id).toBe('string')
    expect(c!.localMeta.time).toBeGreaterThan(0)
    expect(c!.remoteMeta.time).toBeGreaterThan(0)
    expect(c!.createdAt).toBeGreaterThan(0)
    expect(events).toEqual([c])
    // The author keeps seeing its own value, flagged; the server and the other store have the first one.
    expect(b.getState().cards.c1?.title).toBe('bob')
    expect(b.sync.status().conflicts).toBe(1)
    expect(a.getState().cards.c1?.title).toBe('alice')
    expect(a.sync.conflicts()).toEqual([])
    expect((await srv.doc('board')).current().state).toMatchObject({ cards: { c1: { title: 'alice' } } })
  })
})

describe('detection across a reload with a fixed client id', () => {
  it('a reloaded client does not reuse op counters, so a concurrent write is still detected', async () => {
    const srv = await server()
    const dbName = freshDb()
    const a1 = makeStore(srv.url, { clientId: 'tab-1', dbName })
    const b = makeStore(srv.url)
    await online(a1, b)
    edit(a1, 'c1', { title: 'one' })
    await settled(srv, a1, b)
    edit(a1, 'c1', { title: 'two' })
    await settled(srv, a1, b)
    edit(a1, 'c1', { title: 'three' })
    await settled(srv, a1, b)
    await waitFor(() => b.getState().cards.c1?.title === 'three')
    await a1.sync.destroy()

    // Same client id after the reload; b is offline and will not see the next write.
    b.sync.disconnect()
    const a2 = makeStore(srv.url, { clientId: 'tab-1', dbName })
    await online(a2)
    edit(a2, 'c1', { title: 'after reload' })
    await settled(srv, a2)
    edit(b, 'c1', { title: 'bob, concurrently' })
    await deliver(srv, b)
    await waitFor(() => b.sync.conflicts().length === 1, 5000, 'the concurrent write is a conflict')
    const ns = (await srv.history('board')).filter((e) => e.client === 'tab-1').map((e) => e.n)
    expect(new Set(ns).size).toBe(ns.length)
  })
})

describe('catching up from a snapshot', () => {
  it('a record deleted while a client was far behind disappears there too', async () => {
    const srv = await server({ snapshotEvery: 5 })
    const a = makeStore(srv.url)
    const b = makeStore(srv.url)
    await online(a, b)
    edit(a, 'gone', { title: 'doomed' })
    edit(a, 'kept', { title: 'stays' })
    await settled(srv, a, b)
    await waitFor(() => b.getState().cards.gone !== undefined)
    b.sync.disconnect()
    a.setState((s) => {
      const { gone: _gone, ...rest } = s.cards
      return { cards: rest }
    })
    for (let i = 0; i < 12; i++) {
      edit(a, 'kept', { notes: `edit ${i}` })
      await a.sync.flush({ timeout: 5000 })
    }
    await settled(srv, a)
    expect((await srv.doc('board')).seq).toBeGreaterThan(12)
    // More than `snapshotEvery` behind: b catches up from a snapshot, not from the log.
    b.sync.connect()
    await settled(srv, a, b)
    await waitFor(() => b.getState().cards.kept?.notes === 'edit 11')
    expect(b.getState().cards).toEqual(a.getState().cards)
    expect(b.getState().cards.gone).toBeUndefined()
  })
})

describe('policies', () => {
  it("'lww': the later timestamp wins whichever arrives last", async () => {
    for (const order of ['earlier first', 'later first'] as const) {
      const { srv, a, b } = await pair()
      edit(a, 'c1', { notes: 'earlier' })
      await sleep(5)
      edit(b, 'c1', { notes: 'later' })
      await deliver(srv, ...(order === 'earlier first' ? [a, b] : [b, a]))
      for (const s of [a, b]) await waitFor(() => s.getState().cards.c1?.notes === 'later', 5000, `${order}: later wins`)
      expect(a.sync.conflicts()).toEqual([])
      expect(b.sync.conflicts()).toEqual([])
    }
  })

  it("'lww': equal timestamps are ordered by client id, on the server, whatever the arrival order", async () => {
    const srv = await server()
    const hlc = (node: string) => `${String(Date.now()).padStart(15, '0')}:000000:${node}`
    for (const [doc, order] of [
      ['tie-1', ['client-a', 'client-b']],
      ['tie-2', ['client-b', 'client-a']],
    ] as const) {
      const sock = connect(srv.url, { transports: ['websocket'] })
      cleanups.push(() => sock.disconnect())
      await sock.emitWithAck('zync:join', { v: 2, doc, client: 'client-a', since: 0 })
      const stamp = hlc('x').slice(0, -1)
      for (const c of order) {
        const r = await sock.emitWithAck('zync:ops', { doc, ops: [{ id: `${doc}-${c}`, client: c, n: 1, hlc: stamp + c, op: 'replace', path: ['cards', 'c1', 'notes'], value: c, base: {} }] })
        expect(r.results[0].ok).toBe(true)
      }
      expect((await srv.doc(doc)).current().state).toEqual({ cards: { c1: { notes: 'client-b' } } })
    }
  })

  it("'local': the incoming write wins", async () => {
    const { srv, a, b } = await pair()
    edit(a, 'c1', { owner: 'alice' })
    edit(b, 'c1', { owner: 'bob' })
    await deliver(srv, a, b)
    for (const s of [a, b]) await waitFor(() => s.getState().cards.c1?.owner === 'bob')
    expect(b.sync.conflicts()).toEqual([])
  })

  it("'remote': the server's value wins; the late writer's store goes back to it", async () => {
    const { srv, a, b } = await pair()
    edit(a, 'c1', { status: 'done' })
    edit(b, 'c1', { status: 'blocked' })
    await deliver(srv, a, b)
    for (const s of [a, b]) await waitFor(() => s.getState().cards.c1?.status === 'done')
    const h = await b.sync.history({ path: 'cards.c1.status', limit: 1 })
    expect(h[0]).toMatchObject({ status: 'superseded', proposed: 'blocked', value: 'done' })
  })

  it("'counter': concurrent increments all count", async () => {
    const { srv, a, b } = await pair()
    edit(a, 'c1', { votes: 2 })
    edit(b, 'c1', { votes: 3 })
    edit(b, 'c1', { votes: 2 })
    await deliver(srv, a, b)
    for (const s of [a, b]) await waitFor(() => s.getState().cards.c1?.votes === 4, 5000, 'votes 0 + 2 + 3 - 1')
  })

  it("'counter': an increment later than a concurrent removal of the field brings back the count it saw, whichever arrives first", async () => {
    const { srv, a, b } = await pair({ title: 'base', votes: 5, notes: 'n0' })
    // Bob drops the field; a moment later Alice, who had not seen that, adds one to the 5 she saw.
    b.setState((s) => {
      const { votes: _v, ...rest } = s.cards.c1!
      return { cards: { ...s.cards, c1: rest } }
    })
    await sleep(20)
    edit(a, 'c1', { votes: 6 })
    // The removal reaches the server first. Before, the increment brought the field back as 1 (its own
    // delta alone); in the other order the removal, older, was superseded and the count stayed 6.
    await deliver(srv, b, a)
    for (const s of [a, b]) await waitFor(() => s.getState().cards.c1?.votes === 6, 5000, 'votes 5 + 1 on every store')
  })

  it("'set': concurrent adds and removes merge as an add/remove set", async () => {
    const { srv, a, b } = await pair({ title: 't', tags: ['a', 'b'] })
    edit(a, 'c1', { tags: ['a', 'b', 'x'] })
    edit(b, 'c1', { tags: ['b', 'y'] })
    await deliver(srv, a, b)
    const expected = ['b', 'x', 'y']
    for (const s of [a, b]) await waitFor(() => JSON.stringify([...(s.getState().cards.c1?.tags as string[])].sort()) === JSON.stringify(expected))
    expect(a.getState().cards.c1?.tags).toEqual(b.getState().cards.c1?.tags)
  })

  it('an app function settles the conflict on the author’s client with a write every replica converges to', async () => {
    const { srv, a, b } = await pair()
    const settledEvents: unknown[] = []
    b.sync.on('sync:resolved', (e) => settledEvents.push(e.value))
    edit(a, 'c1', { score: 7 })
    edit(b, 'c1', { score: 5 })
    await deliver(srv, a, b)
    await settled(srv, a, b)
    for (const s of [a, b]) await waitFor(() => s.getState().cards.c1?.score === 7)
    expect(settledEvents).toEqual([7])
    expect(b.sync.conflicts()).toEqual([])
    const h = await srv.history('board', { path: ['cards', 'c1', 'score'] })
    expect(h.map((e) => [e.path.length, e.status, e.resolves !== undefined])).toEqual([
      [3, 'applied', true],
      [3, 'conflict', false],
      [3, 'applied', false],
      // The record's creation: the score (an app function, not the record's 'lww') as an op of its own.
      [3, 'applied', false],
      [2, 'applied', false],
    ])
  })

  it('an app function that throws, returns undefined, a promise or a value of neither side\'s shape loses neither side: the conflict waits in the inbox, with a warning', async () => {
    const cases: Array<[string, () => unknown, RegExp]> = [
      ['throws', () => {
        throw new Error('resolver boom')
      }, /threw: resolver boom/],
      ['undefined', () => undefined, /returned undefined/],
      ['promise', async () => 9, /returned a promise/],
      // resolve() refuses a value of neither side's shape; an app function's result is held to the same rule.
      ['wrong shape', () => ({ score: 9 }), /returned a value of type object; the sides are number/],
    ]
    for (const [name, resolver, message] of cases) {
      const warnings: string[] = []
      const conflicts: ConflictsConfig = { ...CONFLICTS, paths: { ...CONFLICTS.paths, 'cards.*.score': resolver } }
      const { srv, a, b } = await pair(undefined, { conflicts }, { onWarning: (m) => warnings.push(m) })
      const failed: ZyncError[] = []
      b.sync.on('sync:failed', (e) => failed.push(e.error))
      edit(a, 'c1', { score: 7 })
      edit(b, 'c1', { score: 5 })
      await deliver(srv, a, b)
      await waitFor(() => b.sync.conflicts().length === 1, 5000, `${name}: a conflict in the inbox`)
      expect(b.sync.conflicts()[0], name).toMatchObject({ path: ['cards', 'c1', 'score'], local: 5, remote: 7 })
      expect(failed.map((e) => e.code), name).toEqual(['INVALID_RESOLUTION'])
      expect(failed[0]!.message, name).toMatch(message)
      expect(warnings.filter((w) => message.test(w)), name).toHaveLength(1)
      // The person keeps b's 5: it reaches everyone.
      await b.sync.resolve(b.sync.conflicts()[0]!.id, 'local')
      await settled(srv, a, b)
      for (const s of [a, b]) await waitFor(() => s.getState().cards.c1?.score === 5, 5000, `${name}: resolved everywhere`)
    }
  })

  it('arrays of other objects (no id) are whole values', async () => {
    const { srv, a, b } = await pair({ title: 't', notes: [{ text: 'one' }] })
    edit(a, 'c1', { notes: [{ text: 'one' }, { text: 'from alice' }] })
    await sleep(5)
    edit(b, 'c1', { notes: [{ text: 'from bob' }] })
    await deliver(srv, a, b)
    for (const s of [a, b]) await waitFor(() => JSON.stringify(s.getState().cards.c1?.notes) === JSON.stringify([{ text: 'from bob' }]))
  })

  it('a new record with a zero count and an empty set is one op; counts and elements take one op each', async () => {
    const { a } = await pair()
    edit(a, 'c7', { notes: 'n', votes: 0, tags: [] })
    await waitFor(() => a.sync.status().pending === 1)
    expect(a.sync.pendingOperations().map((o) => o.path.join('.'))).toEqual(['cards.c7'])
    edit(a, 'c8', { notes: 'n', votes: 2, tags: ['x'] })
    await waitFor(() => a.sync.status().pending === 4)
    expect(a.sync.pendingOperations().map((o) => o.path.join('.'))).toEqual(['cards.c7', 'cards.c8', 'cards.c8.votes', 'cards.c8.tags'])
    // A counter's pending op shows the count and the increment it sends (a durability trial read the
    // running total as what was sent); two more votes offline coalesce into it.
    const votes = () => a.sync.pendingOperations().find((o) => o.path.join('.') === 'cards.c8.votes')
    expect(votes()).toMatchObject({ value: 2, delta: 2 })
    edit(a, 'c8', { votes: 4 })
    await waitFor(() => votes()?.value === 4)
    expect(votes()).toMatchObject({ value: 4, delta: 4 })
  })
})

describe('patterns', () => {
  it('a shorter pattern covers the fields below it; a more specific one still wins', async () => {
    const conflicts: ConflictsConfig = { paths: { cards: 'manual', 'cards.*.votes': 'counter' } }
    const { srv, a, b } = await pair(undefined, { conflicts })
    edit(a, 'c1', { notes: 'alice', votes: 1 })
    edit(b, 'c1', { notes: 'bob', votes: 2 })
    await deliver(srv, a, b)
    await waitFor(() => b.sync.conflicts().length === 1)
    expect(b.sync.conflicts()[0]).toMatchObject({ path: ['cards', 'c1', 'notes'], policy: 'manual', local: 'bob', remote: 'alice' })
    for (const st of [a, b]) await waitFor(() => st.getState().cards.c1?.votes === 3)
  })
})

describe('a record created on two devices offline', () => {
  it('merges by field: counts add up, sets join, a field both set goes to the later stamp', async () => {
    const { srv, a, b } = await pair()
    edit(a, 'c9', { notes: 'from alice', votes: 2, tags: ['x'], color: 'red' })
    await sleep(5)
    edit(b, 'c9', { notes: 'from bob', votes: 3, tags: ['y'], size: 'L' })
    await deliver(srv, a, b)
    const expected = { notes: 'from bob', votes: 5, tags: ['x', 'y'], color: 'red', size: 'L' }
    const card = (st: Store) => {
      const c = st.getState().cards.c9
      return c && JSON.stringify(Object.entries({ ...c, tags: [...(c.tags as string[])].sort() }).sort(([x], [y]) => x.localeCompare(y)))
    }
    const want = JSON.stringify(Object.entries(expected).sort(([x], [y]) => x.localeCompare(y)))
    for (const st of [a, b]) await waitFor(() => card(st) === want, 5000, `converged: ${JSON.stringify(card(st))}`)
    const onServer = (await srv.doc('board')).current().state as unknown as Doc
    expect({ ...onServer.cards.c9, tags: [...(onServer.cards.c9!.tags as string[])].sort() }).toEqual(expected)
    expect(a.sync.conflicts()).toEqual([])
    expect(b.sync.conflicts()).toEqual([])
    // Later increments keep adding on the merged count.
    await online(a, b)
    edit(a, 'c9', { votes: 6 })
    await settled(srv, a, b)
    await waitFor(() => b.getState().cards.c9?.votes === 6)
  })
})

describe('a record created on two devices offline: fields under their own policies', () => {
  it("a field under another policy than the record's meets under it: a 'manual' title both set is a conflict, a 'local' owner goes to the incoming write", async () => {
    const { srv, a, b } = await pair()
    edit(b, 'c9', { notes: 'from bob', title: 'Bob title', owner: 'bob' })
    await sleep(5)
    edit(a, 'c9', { notes: 'from alice', title: 'Alice title', owner: 'alice' })
    // Alice's ops land first. Her stamps are the later ones: the record's 'lww' keeps her notes, but the
    // title is 'manual' and the owner 'local' (the incoming write wins), so neither goes by the stamp.
    await deliver(srv, a, b)
    await waitFor(() => b.sync.conflicts().length === 1, 5000, 'a title conflict for bob')
    expect(b.sync.conflicts()[0]).toMatchObject({ path: ['cards', 'c9', 'title'], policy: 'manual', local: 'Bob title', remote: 'Alice title' })
    expect(a.sync.conflicts()).toEqual([])
    for (const st of [a, b]) await waitFor(() => st.getState().cards.c9?.owner === 'bob' && st.getState().cards.c9?.notes === 'from alice', 5000, 'owner and notes')
    // Bob keeps his title: it reaches alice.
    await b.sync.resolve(b.sync.conflicts()[0]!.id, 'local')
    await settled(srv, a, b)
    for (const st of [a, b]) await waitFor(() => st.getState().cards.c9?.title === 'Bob title', 5000, 'bob title everywhere')
    expect(((await srv.doc('board')).current().state as unknown as Doc).cards.c9).toEqual({ notes: 'from alice', title: 'Bob title', owner: 'bob' })
  })
})

describe('id-keyed arrays', () => {

  it('concurrent inserts both survive and edits of different elements both survive, in the same order everywhere', async () => {
    const { srv, a, b } = await pair({ title: 't', items: list(['1', 'one'], ['2', 'two']) })
    edit(a, 'c1', { items: list(['1', 'ONE'], ['2', 'two'], ['a', 'from alice']) })
    edit(b, 'c1', { items: list(['b', 'from bob'], ['1', 'one'], ['2', 'TWO']) })
    await deliver(srv, a, b)
    const texts = (s: Store) => (s.getState().cards.c1?.items as Array<{ text: string }>).map((x) => x.text)
    for (const s of [a, b]) await waitFor(() => texts(s).length === 4 && texts(s).includes('ONE') && texts(s).includes('TWO'))
    expect(texts(a)).toEqual(texts(b))
    expect([...texts(a)].sort()).toEqual(['ONE', 'TWO', 'from alice', 'from bob'])
    expect(a.sync.conflicts()).toEqual([])
    expect(b.sync.conflicts()).toEqual([])
  })

  it('a list with a repeated id is a whole value: appending to it loses no element (merged by id, one of each id was dropped)', async () => {
    const { srv, a, b } = await pair({ title: 't', items: list(['1', 'one']) })
    for (const s of [a, b]) s.sync.connect()
    await online(a, b)
    edit(a, 'c1', { items: list(['1', 'milk'], ['2', 'eggs'], ['1', 'bread']) })
    await settled(srv, a, b)
    edit(a, 'c1', { items: list(['1', 'milk'], ['2', 'eggs'], ['1', 'bread'], ['3', 'jam']) })
    await settled(srv, a, b)
    const texts = (s: Store) => (s.getState().cards.c1?.items as Array<{ text: string }>).map((x) => x.text)
    for (const s of [a, b]) await waitFor(() => texts(s).join() === 'milk,eggs,bread,jam', 5000, `items ${texts(s)}`)
    expect(a.sync.deadLetters()).toEqual([])
    expect(((await srv.doc('board')).current().state as { cards: { c1: { items: unknown[] } } }).cards.c1.items).toHaveLength(4)
  })

  it('moves and inserts at the top sync where they were made; concurrent moves of different elements both survive', async () => {
    const { srv, a, b } = await pair({ title: 't', items: list(['1', 'one'], ['2', 'two'], ['3', 'three'], ['4', 'four']) })
    const order = (s: Store) => (s.getState().cards.c1?.items as Array<{ id: string }>).map((x) => x.id).join('')
    // Offline, alice drags 4 to the top and inserts 0 above everything; bob drags 1 to the bottom.
    edit(a, 'c1', { items: list(['0', 'zero'], ['4', 'four'], ['1', 'one'], ['2', 'two'], ['3', 'three']) })
    edit(b, 'c1', { items: list(['2', 'two'], ['3', 'three'], ['4', 'four'], ['1', 'one']) })
    await deliver(srv, a, b)
    for (const s of [a, b]) await waitFor(() => order(s) === '04231', 5000, `order ${order(s)}`)
    // Online: a move reaches the other store and stays put on the author's screen after its ack.
    await online(a, b)
    edit(b, 'c1', { items: list(['0', 'zero'], ['2', 'two'], ['4', 'four'], ['3', 'three'], ['1', 'one']) })
    await settled(srv, a, b)
    for (const s of [a, b]) await waitFor(() => order(s) === '02431', 5000, `order ${order(s)}`)
    expect((await srv.doc('board')).current().state).toMatchObject({ cards: { c1: { items: list(['0', 'zero'], ['2', 'two'], ['4', 'four'], ['3', 'three'], ['1', 'one']) } } })
  })

  it("delete against edit follows the policy: under 'lww' the later of the two wins", async () => {
    for (const later of ['edit', 'delete'] as const) {
      const { srv, a, b } = await pair({ title: 't', items: list(['1', 'one'], ['2', 'two']) })
      const doEdit = () => edit(a, 'c1', { items: list(['1', 'edited'], ['2', 'two']) })
      const doDelete = () => edit(b, 'c1', { items: list(['2', 'two']) })
      if (later === 'edit') {
        doDelete()
        await sleep(5)
        doEdit()
      } else {
        doEdit()
        await sleep(5)
        doDelete()
      }
      await deliver(srv, a, b)
      const expected = later === 'edit' ? list(['1', 'edited'], ['2', 'two']) : list(['2', 'two'])
      for (const s of [a, b]) await waitFor(() => JSON.stringify(s.getState().cards.c1?.items) === JSON.stringify(expected), 5000, `${later} wins`)
    }
  })

  it("delete against edit under 'remote' keeps what the server had, under 'local' takes the incoming change", async () => {
    const { srv, a, b } = await pair({ title: 't', links: list(['1', 'one'], ['2', 'two']), refs: list(['1', 'one'], ['2', 'two']) })
    // Alice edits element 1 of both arrays and arrives first; Bob deleted it concurrently.
    edit(a, 'c1', { links: list(['1', 'edited'], ['2', 'two']), refs: list(['1', 'edited'], ['2', 'two']) })
    edit(b, 'c1', { links: list(['2', 'two'], ['3', 'three']), refs: list(['2', 'two'], ['3', 'three']) })
    await deliver(srv, a, b)
    const expected = {
      links: list(['1', 'edited'], ['2', 'two'], ['3', 'three']),
      refs: list(['2', 'two'], ['3', 'three']),
    }
    for (const s of [a, b]) {
      await waitFor(() => JSON.stringify({ links: s.getState().cards.c1?.links, refs: s.getState().cards.c1?.refs }) === JSON.stringify(expected), 5000, 'policies applied per element')
    }
    expect(b.sync.conflicts()).toEqual([])
  })

  it("under 'manual' a clash goes to the inbox, while changes to different elements merge", async () => {
    const { srv, a, b } = await pair({ title: 't', checklist: list(['1', 'one'], ['2', 'two']) })
    // Different elements: merged, no conflict.
    edit(a, 'c1', { checklist: list(['1', 'ONE'], ['2', 'two']) })
    edit(b, 'c1', { checklist: list(['1', 'one'], ['2', 'TWO']) })
    await deliver(srv, a, b)
    for (const s of [a, b]) await waitFor(() => JSON.stringify(s.getState().cards.c1?.checklist) === JSON.stringify(list(['1', 'ONE'], ['2', 'TWO'])))
    expect(b.sync.conflicts()).toEqual([])
    // The same element: a conflict, settled with a value that becomes the whole array everywhere.
    a.sync.disconnect()
    b.sync.disconnect()
    edit(a, 'c1', { checklist: list(['1', 'alice']) })
    edit(b, 'c1', { checklist: list(['1', 'bob'], ['2', 'TWO'], ['3', 'three']) })
    await deliver(srv, a, b)
    await waitFor(() => b.sync.conflicts().length === 1)
    const [c] = b.sync.conflicts()
    expect(c).toMatchObject({ policy: 'manual', local: list(['1', 'bob'], ['2', 'TWO'], ['3', 'three']), remote: list(['1', 'alice']) })
    await b.sync.resolve(c!.id, { value: list(['1', 'both'], ['3', 'three']) })
    await settled(srv, a, b)
    for (const s of [a, b]) await waitFor(() => JSON.stringify(s.getState().cards.c1?.checklist) === JSON.stringify(list(['1', 'both'], ['3', 'three'])))
  })

  it("resolving a 'manual' array conflict with one side keeps what only the other side changed (inserts, edits, deletes), as for object keys", async () => {
    for (const side of ['local', 'remote'] as const) {
      const { srv, a, b } = await pair({ title: 't', checklist: list(['1', 'one'], ['2', 'two'], ['3', 'three']) })
      a.sync.disconnect()
      b.sync.disconnect()
      // Both edit element 1 (the clash); alice also inserts a and deletes 3, bob inserts b and edits 2.
      edit(a, 'c1', { checklist: list(['1', 'alice'], ['2', 'two'], ['a', 'from alice']) })
      edit(b, 'c1', { checklist: list(['1', 'bob'], ['2', 'TWO'], ['3', 'three'], ['b', 'from bob']) })
      await deliver(srv, a, b)
      await waitFor(() => b.sync.conflicts().length === 1)
      await b.sync.resolve(b.sync.conflicts()[0]!.id, side)
      await settled(srv, a, b)
      const first = side === 'local' ? 'bob' : 'alice'
      const texts = (st: Store) => (st.getState().cards.c1?.checklist as Array<{ text: string }>).map((x) => x.text).sort()
      for (const st of [a, b]) await waitFor(() => texts(st).join() === [first, 'TWO', 'from alice', 'from bob'].sort().join(), 5000, `${side}: ${texts(st).join()}`)
      expect(a.getState().cards.c1?.checklist).toEqual(b.getState().cards.c1?.checklist)
      expect((await srv.doc('board')).current().state).toMatchObject({ cards: { c1: { checklist: a.getState().cards.c1?.checklist } } })
    }
  })

  it("ids minted as max(ids)+1 on two offline devices collide: under 'manual' the second insert is a conflict, not a silent merge", async () => {
    const { srv, a, b } = await pair({ title: 't', checklist: list(['1', 'seed']) })
    a.sync.disconnect()
    b.sync.disconnect()
    edit(a, 'c1', { checklist: list(['1', 'seed'], ['2', 'groceries']) })
    edit(b, 'c1', { checklist: list(['1', 'seed'], ['2', 'dentist']) })
    await deliver(srv, a, b)
    await waitFor(() => b.sync.conflicts().length === 1)
    expect(b.sync.conflicts()[0]).toMatchObject({ idKey: 'id', local: list(['1', 'seed'], ['2', 'dentist']), remote: list(['1', 'seed'], ['2', 'groceries']) })
  })

  it("under 'lww' the same collision keeps the later insert only, with no conflict (documented: mint unique ids)", async () => {
    const { srv, a, b } = await pair({ title: 't', items: list(['1', 'seed']) })
    a.sync.disconnect()
    b.sync.disconnect()
    edit(a, 'c1', { items: list(['1', 'seed'], ['2', 'groceries']) })
    await sleep(5)
    edit(b, 'c1', { items: list(['1', 'seed'], ['2', 'dentist']) })
    await deliver(srv, a, b)
    for (const s of [a, b]) await waitFor(() => JSON.stringify(s.getState().cards.c1?.items) === JSON.stringify(list(['1', 'seed'], ['2', 'dentist'])), 5000, 'the later insert')
    expect(a.sync.conflicts()).toEqual([])
    expect(b.sync.conflicts()).toEqual([])
  })

  it('the id key is configurable', async () => {
    const conflicts: ConflictsConfig = { ...CONFLICTS, idKey: 'key' }
    const { srv, a, b } = await pair({ title: 't', items: [{ key: 1, n: 'one' }] }, { conflicts })
    edit(a, 'c1', { items: [{ key: 1, n: 'one' }, { key: 2, n: 'two' }] })
    edit(b, 'c1', { items: [{ key: 1, n: 'one' }, { key: 3, n: 'three' }] })
    await deliver(srv, a, b)
    for (const s of [a, b]) await waitFor(() => (s.getState().cards.c1?.items as unknown[]).length === 3)
    expect(a.getState().cards.c1?.items).toEqual(b.getState().cards.c1?.items)
  })

  it("a 'manual' conflict on arrays keyed by a custom idKey says so (conflict.idKey, which the modal's Edit merged uses), and resolving with one side merges by that key", async () => {
    const conflicts: ConflictsConfig = { ...CONFLICTS, idKey: 'key' }
    const row = (key: string, text: string) => ({ key, text })
    const { srv, a, b } = await pair({ title: 't', checklist: [row('1', 'one'), row('2', 'two')] }, { conflicts })
    a.sync.disconnect()
    b.sync.disconnect()
    edit(a, 'c1', { checklist: [row('1', 'alice'), row('2', 'two'), row('a', 'from alice')] })
    edit(b, 'c1', { checklist: [row('1', 'bob'), row('2', 'TWO')] })
    await deliver(srv, a, b)
    await waitFor(() => b.sync.conflicts().length === 1)
    const [c] = b.sync.conflicts()
    expect(c).toMatchObject({ policy: 'manual', idKey: 'key' })
    await b.sync.resolve(c!.id, 'local')
    await settled(srv, a, b)
    const texts = (st: Store) => (st.getState().cards.c1?.checklist as Array<{ text: string }>).map((x) => x.text).sort()
    for (const st of [a, b]) await waitFor(() => texts(st).join() === ['TWO', 'bob', 'from alice'].join(), 5000, texts(st).join())
  })

  it('a conflict between values that are not id-keyed arrays carries no idKey', async () => {
    const { srv, a, b } = await pair({ title: 't' })
    a.sync.disconnect()
    b.sync.disconnect()
    edit(a, 'c1', { title: 'alice' })
    edit(b, 'c1', { title: 'bob' })
    await deliver(srv, a, b)
    await waitFor(() => b.sync.conflicts().length === 1)
    expect(b.sync.conflicts()[0]).not.toHaveProperty('idKey')
  })
})

describe('an edit undone while it waits', () => {
  // A model trial: an edit and its undo (a typo fixed back, a tag added and removed) still went out as a
  // write, with a later stamp than another device's real change: a 'manual' conflict between identical
  // values, the other device's assignee or tag lost.
  it("sends nothing: another device's concurrent change stands under 'manual', 'lww' and 'set', and a counter's +1 -1 is no op", async () => {
    const { srv, a, b } = await pair()
    edit(b, 'c1', { title: 'by Bob', notes: 'dave', tags: ['a', 'tmp'] })
    await sleep(5)
    edit(a, 'c1', { title: 'base typo', notes: 'carol', tags: ['a', 'tmp'], votes: 1 })
    await sleep(0)
    const waiting = a.sync.pendingOperations().map((p) => p.id)
    expect(waiting).toHaveLength(4)
    const cancelled: string[] = []
    a.sync.on('sync:cancelled', ({ ids }) => cancelled.push(...ids))
    edit(a, 'c1', { title: 'base', notes: 'n0', tags: ['a'], votes: 0 })
    await sleep(0)
    expect(a.sync.pendingOperations()).toEqual([])
    expect(cancelled.sort()).toEqual(waiting.sort())
    expect(a.sync.isDirty()).toBe(false)
    await deliver(srv, b, a)
    for (const s of [a, b]) {
      await waitFor(() => s.getState().cards.c1?.title === 'by Bob', 5000, 'title by Bob')
      expect(s.getState().cards.c1).toMatchObject({ notes: 'dave', tags: ['a', 'tmp'], votes: 0 })
    }
    expect(a.sync.conflicts()).toEqual([])
    expect((await srv.doc('board')).current().state.cards).toMatchObject({ c1: { title: 'by Bob', notes: 'dave', tags: ['a', 'tmp'], votes: 0 } })
  })

  it('still sends a change that is not back to what the server has, and waits for an undo of a row already sent', async () => {
    const { srv, a, b } = await pair()
    edit(a, 'c1', { notes: 'first' })
    edit(a, 'c1', { notes: 'second' })
    await sleep(0)
    expect(a.sync.pendingOperations()).toHaveLength(1)
    await deliver(srv, a, b)
    await waitFor(() => b.getState().cards.c1?.notes === 'second', 5000, 'second reached b')
    // Online: the edit goes at once; its undo is a write of its own, which puts the value back everywhere.
    edit(a, 'c1', { notes: 'online' })
    edit(a, 'c1', { notes: 'second' })
    await settled(srv, a, b)
    for (const s of [a, b]) expect(s.getState().cards.c1?.notes).toBe('second')
  })
})

describe('a record deleted while another device edits it, listed in an id-keyed array', () => {
  // A model trial: tasks as records plus an id-keyed array ordering them, a task deleted from both in one
  // set() on one device while another device, offline, edits it later. The edit reached the server first
  // and the record stayed (a later stamp), while its element went (a move never revives one): a task
  // listed nowhere, on every device.
  it('goes from the records and from the array on every device, whichever reaches the server first', async () => {
    for (const first of ['edit', 'delete'] as const) {
      const srv = await server()
      const a = makeStore(srv.url, { user: { id: 'alice' } })
      const b = makeStore(srv.url, { user: { id: 'bob' } })
      await online(a, b)
      a.setState({ cards: { c1: { notes: 'one' }, c2: { notes: 'two' }, board: { order: [{ id: 'c1' }, { id: 'c2' }] } } })
      await settled(srv, a, b)
      await waitFor(() => b.getState().cards.board !== undefined)
      a.sync.disconnect()
      b.sync.disconnect()
      // Bob deletes c1 (record and element in one set()); Alice, who has not seen that, edits it later.
      b.setState((s) => {
        const { c1: _gone, ...cards } = s.cards
        return { cards: { ...cards, board: { order: [{ id: 'c2' }] } } }
      })
      await sleep(5)
      edit(a, 'c1', { notes: 'edited later', done: true })
      await deliver(srv, ...(first === 'edit' ? [a, b] : [b, a]))
      for (const s of [a, b]) {
        await waitFor(() => s.getState().cards.c1 === undefined, 5000, `${first} first: c1 gone`)
        expect(s.getState().cards.board).toEqual({ order: [{ id: 'c2' }] })
      }
      expect((await srv.doc('board')).current().state).toEqual({ cards: { c2: { notes: 'two' }, board: { order: [{ id: 'c2' }] } } })
    }
  })
})

describe('objects below a field', () => {
  const meta = { color: 'grey', size: 1, font: { family: 'serif', weight: 400 } }

  it('concurrent edits of different keys (nested too) both stand, under last-writer-wins; a key both changed goes to the later stamp', async () => {
    const { srv, a, b } = await pair({ title: 'base', meta })
    edit(a, 'c1', { meta: { ...meta, color: 'red', font: { ...meta.font, weight: 700 }, tag: 'a' } })
    await sleep(5)
    edit(b, 'c1', { meta: { ...meta, size: 3, font: { ...meta.font, family: 'mono' } } })
    await deliver(srv, a, b)
    const merged = { color: 'red', size: 3, font: { family: 'mono', weight: 700 }, tag: 'a' }
    for (const s of [a, b]) await waitFor(() => JSON.stringify(s.getState().cards.c1?.meta) === JSON.stringify(merged), 5000, 'merged meta')
    expect(a.getState().cards).toEqual(b.getState().cards)
    expect(b.sync.conflicts()).toEqual([])
    // Both change `size` (and Bob removes `tag`): Bob's stamp is later, so his size wins; Alice's other key stands.
    a.sync.disconnect()
    b.sync.disconnect()
    edit(a, 'c1', { meta: { ...merged, size: 10, color: 'blue' } })
    await sleep(5)
    const { tag: _gone, ...withoutTag } = merged
    edit(b, 'c1', { meta: { ...withoutTag, size: 20 } })
    await deliver(srv, a, b)
    const final = { color: 'blue', size: 20, font: { family: 'mono', weight: 700 } }
    for (const s of [a, b]) await waitFor(() => JSON.stringify(s.getState().cards.c1?.meta) === JSON.stringify(final), 5000, 'clash settled by stamp')
    expect(a.getState().cards).toEqual(b.getState().cards)
  })

  it('a field two devices both create offline merges by key too (nothing was there: the base is {})', async () => {
    const { srv, a, b } = await pair({ title: 'base' })
    edit(a, 'c1', { meta: { color: 'blue' } })
    edit(b, 'c1', { meta: { size: 'L' } })
    await deliver(srv, a, b)
    for (const s of [a, b]) await waitFor(() => JSON.stringify(s.getState().cards.c1?.meta) === JSON.stringify({ color: 'blue', size: 'L' }), 5000, 'both keys')
    expect(b.sync.conflicts()).toEqual([])
  })

  it('a writer that reconnects after the other one merged: both keys on both stores, each op in the log once', async () => {
    const { srv, a, b } = await pair({ title: 'base', meta })
    edit(a, 'c1', { meta: { ...meta, color: 'red' } })
    a.sync.connect()
    await online(a)
    await a.sync.flush({ timeout: 5000 })
    edit(b, 'c1', { meta: { ...meta, size: 2 } })
    b.sync.connect()
    await settled(srv, a, b)
    for (const s of [a, b]) await waitFor(() => JSON.stringify(s.getState().cards.c1?.meta) === JSON.stringify({ ...meta, color: 'red', size: 2 }), 5000, 'merged')
    const history = await srv.history('board', { path: ['cards', 'c1', 'meta'] })
    expect(history.map((e) => [e.path.length, e.client, e.status])).toEqual([
      [3, b.sync.clientId, 'applied'],
      [3, a.sync.clientId, 'applied'],
      [2, a.sync.clientId, 'applied'], // the record's creation
    ])
  })

  it('manual: keys changed on one side merge; a key changed on both sides makes the op a conflict; remote: the current value of a clashing key stays', async () => {
    const spec = { w: 1, h: 1, d: 1 }
    const { srv, a, b } = await pair({ title: 'base', spec, style: spec })
    edit(a, 'c1', { spec: { ...spec, w: 2 }, style: { ...spec, w: 2, h: 5 } })
    edit(b, 'c1', { spec: { ...spec, h: 3 }, style: { ...spec, w: 9, d: 4 } })
    await deliver(srv, a, b)
    for (const s of [a, b]) await waitFor(() => JSON.stringify(s.getState().cards.c1?.spec) === JSON.stringify({ w: 2, h: 3, d: 1 }), 5000, 'spec merged')
    expect(b.sync.conflicts()).toEqual([])
    // 'remote': w clashes and keeps Alice's 2; Bob's d and Alice's h both stand.
    for (const s of [a, b]) expect(s.getState().cards.c1?.style).toEqual({ w: 2, h: 5, d: 4 })
    a.sync.disconnect()
    b.sync.disconnect()
    edit(a, 'c1', { spec: { w: 5, h: 3, d: 1 } })
    edit(b, 'c1', { spec: { w: 7, h: 3, d: 8 } })
    await deliver(srv, a, b)
    await waitFor(() => b.sync.conflicts().length === 1, 5000, 'clash on w')
    expect(b.sync.conflicts()[0]).toMatchObject({ field: 'spec', local: { w: 7, h: 3, d: 8 }, remote: { w: 5, h: 3, d: 1 }, base: { w: 2, h: 3, d: 1 } })
    // Choosing a side settles the clashing key; Bob's `d`, which only he changed, stays.
    await b.sync.resolve(b.sync.conflicts()[0]!.id, 'remote')
    await settled(srv, a, b)
    for (const s of [a, b]) await waitFor(() => JSON.stringify(s.getState().cards.c1?.spec) === JSON.stringify({ w: 5, h: 3, d: 8 }), 5000, 'resolved by key')
  })
})

describe('the conflict inbox', () => {
  for (const [resolution, expected] of [
    ['local', 'bob'],
    ['remote', 'alice'],
    [{ value: 'alice and bob' }, 'alice and bob'],
  ] as const) {
    it(`resolve(id, ${JSON.stringify(resolution)}) writes an ordinary op after both sides: both stores converge`, async () => {
      const { srv, a, b, conflict } = await conflicted()
      const resolved: unknown[] = []
      b.sync.on('sync:resolved', (e) => resolved.push([e.conflict.id, e.value]))
      await b.sync.resolve(conflict.id, resolution)
      expect(b.sync.conflicts()).toEqual([])
      expect(b.getState().cards.c1?.title).toBe(expected)
      expect(resolved).toEqual([[conflict.id, expected]])
      await settled(srv, a, b)
      for (const s of [a, b]) await waitFor(() => s.getState().cards.c1?.title === expected)
      const [last] = await srv.history('board', { path: ['cards', 'c1', 'title'], limit: 1 })
      expect(last).toMatchObject({ status: 'applied', resolves: conflict.id, value: expected })
      expect(a.sync.conflicts()).toEqual([])
    })
  }

  it('survives a reload, and can be resolved after it', async () => {
    const dbName = freshDb()
    const { srv, a, b: b1 } = await conflicted({ dbName })
    const before = b1.sync.conflicts()
    await b1.sync.destroy()

    const b2 = makeStore(srv.url, { dbName })
    // A UI reads the inbox before it is loaded (first render): empty then, the loaded conflict after.
    const seen: number[] = []
    b2.sync.subscribe(() => seen.push(b2.sync.conflicts().length))
    expect(b2.sync.conflicts()).toEqual([])
    await b2.sync.ready
    expect(b2.sync.conflicts()).toEqual(before)
    expect(seen.at(-1)).toBe(1)
    expect(b2.sync.status().conflicts).toBe(1)
    expect(b2.getState().cards.c1?.title).toBe('bob')
    await online(b2)
    await b2.sync.resolve(before[0]!.id, 'local')
    await settled(srv, a, b2)
    for (const s of [a, b2]) await waitFor(() => s.getState().cards.c1?.title === 'bob')
    expect(b2.sync.conflicts()).toEqual([])
  })

  it('conflicts raised together keep their order (the log\'s) after a reload', async () => {
    // A trial: eight conflicts of one batch (one millisecond) came back c1 c2 c5 c6 c3 c4 c7 c8.
    const dbName = freshDb()
    const srv = await server()
    const a = makeStore(srv.url, { user: { id: 'alice' } })
    const b1 = makeStore(srv.url, { user: { id: 'bob' }, dbName })
    await online(a, b1)
    const ids = Array.from({ length: 8 }, (_, i) => `c${i}`)
    for (const id of ids) edit(a, id, { title: 'base' })
    await settled(srv, a, b1)
    a.sync.disconnect()
    b1.sync.disconnect()
    for (const id of ids) edit(a, id, { title: 'alice' })
    for (const id of ids) edit(b1, id, { title: 'bob' })
    await deliver(srv, a, b1)
    await waitFor(() => b1.sync.conflicts().length === 8)
    const before = b1.sync.conflicts().map((c) => c.entity)
    expect(before).toEqual(ids.map((id) => `cards/${id}`))
    await b1.sync.destroy()
    const b2 = makeStore(srv.url, { user: { id: 'bob' }, dbName, autoConnect: false })
    await b2.sync.ready
    expect(b2.sync.conflicts().map((c) => c.entity)).toEqual(before)
  })

  it('a conflict resolved before a reload stays resolved after it (CONFLICT_RESOLVED, never raised again)', async () => {
    const dbName = freshDb()
    const { srv, a, b: b1, conflict } = await conflicted({ dbName, clientId: 'bob-tab' })
    await b1.sync.resolve(conflict.id, 'remote')
    await settled(srv, a, b1)
    await b1.sync.destroy()

    // Same device, same client id: the reload catches up over the conflicting change again.
    const b2 = makeStore(srv.url, { dbName, clientId: 'bob-tab' })
    await b2.sync.ready
    await online(b2)
    await settled(srv, a, b2)
    expect(b2.sync.conflicts()).toEqual([])
    await expect(b2.sync.resolve(conflict.id, 'local')).rejects.toMatchObject({ code: 'CONFLICT_RESOLVED' })
    await expect(b2.sync.resolve('never-was', 'local')).rejects.toMatchObject({ code: 'CONFLICT_NOT_FOUND' })
    expect(b2.getState().cards.c1?.title).toBe('alice')
  })

  it("someone else's later write of the field leaves the conflict open against it; a write that agrees with the author's side settles it", async () => {
    // An app trial: two people typing in a 'manual' title at once; the second one's conflict went moot at
    // the first one's next key, and their text was gone without anyone being asked.
    const { srv, a, b, conflict } = await conflicted()
    const resolved: unknown[] = []
    b.sync.on('sync:resolved', (e) => resolved.push([e.conflict.id, e.resolution]))
    edit(a, 'c1', { title: 'alice again' })
    await settled(srv, a, b)
    expect(resolved).toEqual([])
    expect(b.sync.conflicts()).toMatchObject([{ id: conflict.id, local: 'bob', remote: 'alice again', remoteMeta: { clientId: a.sync.clientId } }])
    expect(b.getState().cards.c1?.title).toBe('bob')
    // Alice writes what Bob proposed: nothing left to decide.
    edit(a, 'c1', { title: 'bob' })
    await settled(srv, a, b)
    await waitFor(() => b.sync.conflicts().length === 0)
    expect(resolved).toEqual([[conflict.id, 'remote']])
    // Resolving it now is a typed error and changes nothing.
    await expect(b.sync.resolve(conflict.id, 'local')).rejects.toMatchObject({ code: 'CONFLICT_RESOLVED' })
    expect(b.sync.pendingOperations()).toEqual([])
  })

  it("someone's later edit inside a conflicted object leaves the conflict open against it: the author's own keys are not lost", async () => {
    // A trial: Bob's conflict over spec.tag went moot when Carol (who never saw Bob's proposal) edited
    // spec.note, and Bob's color and size, which nobody else had changed, were gone everywhere.
    const { srv, a, b } = await pair({ title: 't', spec: { tag: 't', color: 'red', size: 1, note: '' } })
    const c = makeStore(srv.url, { user: { id: 'carol' } })
    await online(c)
    await waitFor(() => c.getState().cards.c1 !== undefined)
    const spec = (s: Store) => s.getState().cards.c1?.spec as Record<string, unknown>
    edit(a, 'c1', { spec: { ...spec(a), tag: 'A' } })
    edit(b, 'c1', { spec: { ...spec(b), tag: 'B', color: 'blue', size: 2 } })
    await deliver(srv, a, b, c)
    await waitFor(() => b.sync.conflicts().length === 1)
    const conflict = b.sync.conflicts()[0]!
    const settledEvents: unknown[] = []
    b.sync.on('sync:resolved', (e) => settledEvents.push(e.resolution))
    edit(c, 'c1', { spec: { ...spec(c), note: 'C' } })
    await settled(srv, a, b, c)
    // Carol's write settles nothing of it: the conflict stays, against the value as it is now.
    expect(settledEvents).toEqual([])
    expect(b.sync.conflicts()).toHaveLength(1)
    expect(b.sync.conflicts()[0]).toMatchObject({ id: conflict.id, base: { tag: 't', color: 'red', size: 1, note: '' }, local: { tag: 'B', color: 'blue', size: 2, note: '' }, remote: { tag: 'A', color: 'red', size: 1, note: 'C' }, remoteMeta: { clientId: c.sync.clientId, userId: 'carol' } })
    // 'remote' gives Alice the tag both changed, and keeps Bob's color and size and Carol's note.
    await b.sync.resolve(conflict.id, 'remote')
    await settled(srv, a, b, c)
    for (const s of [a, b, c]) await waitFor(() => JSON.stringify(spec(s)) === JSON.stringify({ tag: 'A', color: 'blue', size: 2, note: 'C' }), 5000, 'merged spec everywhere')
    expect(b.sync.conflicts()).toEqual([])
  })

  it("the same for an id-keyed array: someone's later edit of another element keeps the conflict, and the author's insert", async () => {
    const { srv, a, b } = await pair({ title: 't', checklist: list(['1', 'one'], ['2', 'two']) })
    const c = makeStore(srv.url, { user: { id: 'carol' } })
    await online(c)
    await waitFor(() => c.getState().cards.c1 !== undefined)
    edit(a, 'c1', { checklist: list(['1', 'ONE'], ['2', 'two']) })
    edit(b, 'c1', { checklist: list(['1', 'uno'], ['2', 'two'], ['b', 'new']) })
    await deliver(srv, a, b, c)
    await waitFor(() => b.sync.conflicts().length === 1)
    const conflict = b.sync.conflicts()[0]!
    edit(c, 'c1', { checklist: list(['1', 'ONE'], ['2', 'dos']) })
    await settled(srv, a, b, c)
    expect(b.sync.conflicts().map((x) => [x.id, x.remote])).toEqual([[conflict.id, list(['1', 'ONE'], ['2', 'dos'])]])
    await b.sync.resolve(conflict.id, 'remote')
    await settled(srv, a, b, c)
    const want = JSON.stringify(list(['1', 'ONE'], ['2', 'dos'], ['b', 'new']))
    for (const s of [a, b, c]) await waitFor(() => JSON.stringify(s.getState().cards.c1?.checklist) === want, 5000, 'merged checklist everywhere')
  })

  it("a later write inside a conflicted object leaves it open even where nothing of the author's would survive 'remote'", async () => {
    const { srv, a, b } = await pair({ title: 't', spec: { tag: 't', note: '' } })
    const c = makeStore(srv.url, { user: { id: 'carol' } })
    await online(c)
    await waitFor(() => c.getState().cards.c1 !== undefined)
    const spec = (s: Store) => s.getState().cards.c1?.spec as Record<string, unknown>
    edit(a, 'c1', { spec: { ...spec(a), tag: 'A' } })
    edit(b, 'c1', { spec: { ...spec(b), tag: 'B' } })
    await deliver(srv, a, b, c)
    await waitFor(() => b.sync.conflicts().length === 1)
    edit(c, 'c1', { spec: { ...spec(c), note: 'C' } })
    await settled(srv, a, b, c)
    // Bob's tag was never decided: his conflict stays, against the object as it is now.
    expect(b.sync.conflicts()).toMatchObject([{ local: { tag: 'B', note: '' }, remote: { tag: 'A', note: 'C' } }])
    await b.sync.resolve(b.sync.conflicts()[0]!.id, 'remote')
    await settled(srv, a, b, c)
    for (const s of [a, b, c]) await waitFor(() => JSON.stringify(spec(s)) === JSON.stringify({ tag: 'A', note: 'C' }))
  })

  it("the author's later writes of the conflicted field join it as their side: nothing reaches the others until they resolve it, also after a reload", async () => {
    // An app trial: the author's next keystroke settled a 'manual' conflict as theirs, and the other
    // side's edit was overwritten everywhere without anyone being asked.
    const dbName = freshDb()
    const { srv, a, b, conflict } = await conflicted({ dbName })
    const settledEvents: unknown[] = []
    b.sync.on('sync:resolved', (e) => settledEvents.push(e.resolution))
    edit(b, 'c1', { title: 'bob typing' })
    edit(b, 'c1', { title: 'bob typing on' })
    await sleep(0) // edits are captured in a microtask
    expect(b.getState().cards.c1?.title).toBe('bob typing on')
    expect(b.sync.conflicts()).toMatchObject([{ id: conflict.id, base: 'base', local: 'bob typing on', remote: 'alice' }])
    expect(b.sync.status().pending).toBe(0)
    await settled(srv, a, b)
    expect(settledEvents).toEqual([])
    expect(a.getState().cards.c1?.title).toBe('alice')
    // Someone else's later write (made without seeing Bob's) leaves it open too, against that write.
    edit(a, 'c1', { title: 'alice again' })
    await settled(srv, a, b)
    expect(b.sync.conflicts()).toMatchObject([{ id: conflict.id, local: 'bob typing on', remote: 'alice again' }])
    expect(b.getState().cards.c1?.title).toBe('bob typing on')
    // Kept across a reload, and resolved as Bob's latest text.
    await b.sync.destroy()
    const b2 = makeStore(srv.url, { user: { id: 'bob' }, dbName })
    await online(b2)
    expect(b2.sync.conflicts()).toMatchObject([{ id: conflict.id, local: 'bob typing on', remote: 'alice again' }])
    expect(b2.getState().cards.c1?.title).toBe('bob typing on')
    await b2.sync.resolve(conflict.id, 'local')
    await settled(srv, a, b2)
    for (const s of [a, b2]) await waitFor(() => s.getState().cards.c1?.title === 'bob typing on')
  })

  it("typing on while coming back online raises the 'manual' conflict with the text as typed, instead of overwriting the other side", async () => {
    // The same trial: offline edit, reconnect while typing. The keys made after the catch-up brought
    // Bob's title were sent as if the author had seen it (the screen showed their own pending text).
    const { srv, a, b } = await pair()
    edit(b, 'c1', { title: 'bob' })
    b.sync.connect()
    await online(b)
    await b.sync.flush({ timeout: 5000 })
    edit(a, 'c1', { title: 'alice' })
    a.sync.connect()
    let text = 'alice'
    for (let i = 0; i < 40 && a.sync.status().connection !== 'online'; i++) await sleep(5)
    for (let i = 0; i < 30; i++) {
      text += i % 5 === 4 ? ' ' : 'x'
      edit(a, 'c1', { title: text })
      await sleep(3)
    }
    await waitFor(() => a.sync.status().pending === 0 && a.sync.conflicts().length === 1, 5000, 'the conflict on alice')
    expect(a.sync.conflicts()[0]).toMatchObject({ local: text, remote: 'bob' })
    expect(a.getState().cards.c1?.title).toBe(text)
    await settled(srv, a, b)
    expect(b.getState().cards.c1?.title).toBe('bob')
    await a.sync.resolve(a.sync.conflicts()[0]!.id, 'local')
    await settled(srv, a, b)
    for (const s of [a, b]) await waitFor(() => s.getState().cards.c1?.title === text)
  })

  it('a write over the conflicted field (its record removed) still settles it as the author\'s', async () => {
    const { srv, a, b, conflict } = await conflicted()
    b.setState((s) => ({ cards: Object.fromEntries(Object.entries(s.cards).filter(([id]) => id !== 'c1')) }))
    await waitFor(() => b.sync.conflicts().length === 0)
    await settled(srv, a, b)
    for (const s of [a, b]) await waitFor(() => s.getState().cards.c1 === undefined)
    await expect(b.sync.resolve(conflict.id, 'remote')).rejects.toMatchObject({ code: 'CONFLICT_RESOLVED' })
  })

  it('bad resolves get typed errors and change nothing', async () => {
    const { b, conflict } = await conflicted()
    const state = b.getState()
    const pending = b.sync.pendingOperations()
    const expectCode = async (p: Promise<unknown>, code: string) => {
      const err = await p.then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(err).toBeInstanceOf(ZyncError)
      expect((err as ZyncError).code).toBe(code)
      expect((err as ZyncError).message).toMatch(/^\[zync\]/)
    }
    await expectCode(b.sync.resolve('no-such-conflict', 'local'), 'CONFLICT_NOT_FOUND')
    await expectCode(b.sync.resolve(conflict.id, { value: 42 }), 'INVALID_RESOLUTION')
    await expectCode(b.sync.resolve(conflict.id, { value: { nested: { fn: () => 1 } } }), 'INVALID_RESOLUTION')
    await expectCode(b.sync.resolve(conflict.id, 'mine' as never), 'INVALID_RESOLUTION')
    expect(b.sync.conflicts()).toEqual([conflict])
    expect(b.getState()).toBe(state)
    expect(b.sync.pendingOperations()).toEqual(pending)
    await b.sync.resolve(conflict.id, 'remote')
    await expectCode(b.sync.resolve(conflict.id, 'remote'), 'CONFLICT_RESOLVED')
  })

  it('two tabs taking turns on one counter while offline: every increment is delivered, none refused as UNKNOWN_HISTORY', async () => {
    // A browser trial: an offline blip mid-burst left increments as dead letters ("claims to have seen
    // ops of <the other tab> that this server never saw"), the tabs at 50 and the server at 25.
    const srv = await server()
    const dbName = freshDb()
    const tab1 = makeStore(srv.url, { dbName, crossTab: true })
    const tab2 = makeStore(srv.url, { dbName, crossTab: true })
    await online(tab1, tab2)
    edit(tab1, 'c1', { title: 'base', votes: 0 })
    await settled(srv, tab1, tab2)
    tab1.sync.disconnect()
    tab2.sync.disconnect()
    const tabs = [tab1, tab2]
    for (let i = 0; i < 12; i++) {
      const t = tabs[i % 2]!
      await waitFor(() => t.getState().cards.c1?.votes === i, 5000, `tab ${(i % 2) + 1} sees ${i}`)
      edit(t, 'c1', { votes: i + 1 })
    }
    await waitFor(() => tabs.every((t) => t.getState().cards.c1?.votes === 12), 5000, 'both tabs at 12')
    tab1.sync.connect()
    tab2.sync.connect()
    await online(tab1, tab2)
    await settled(srv, tab1, tab2)
    expect(tab1.sync.deadLetters()).toEqual([])
    expect(((await srv.doc('board')).current().state as unknown as Doc).cards.c1!.votes).toBe(12)
  })

  it('a conflict resolved in one tab is resolved in every tab of that client', async () => {
    const srv = await server()
    const dbName = freshDb()
    const a = makeStore(srv.url)
    const tab1 = makeStore(srv.url, { dbName, crossTab: true })
    const tab2 = makeStore(srv.url, { dbName, crossTab: true })
    await online(a, tab1, tab2)
    edit(a, 'c1', { title: 'base' })
    await settled(srv, a, tab1, tab2)
    a.sync.disconnect()
    tab1.sync.disconnect()
    edit(a, 'c1', { title: 'alice' })
    edit(tab1, 'c1', { title: 'tab one' })
    // The other tab shows the pending edit at once (tab messages), before any server is involved.
    await waitFor(() => tab2.getState().cards.c1?.title === 'tab one', 5000, 'edit shared with the other tab')
    await deliver(srv, a, tab1)
    await waitFor(() => tab1.sync.conflicts().length === 1 && tab2.sync.conflicts().length === 1, 5000, 'conflict in both tabs')
    expect(tab2.sync.conflicts().map((c) => [c.id, c.local, c.remote])).toEqual(tab1.sync.conflicts().map((c) => [c.id, c.local, c.remote]))
    expect(tab2.getState().cards.c1?.title).toBe('tab one')
    await tab2.sync.resolve(tab2.sync.conflicts()[0]!.id, 'remote')
    await waitFor(() => tab1.sync.conflicts().length === 0, 5000, 'resolved in the other tab')
    await settled(srv, a, tab1, tab2)
    for (const s of [a, tab1, tab2]) await waitFor(() => s.getState().cards.c1?.title === 'alice')
  })
})

describe('audit history', () => {
  it('keeps every op with field-level before and after, and every conflict and resolution, through the store and the server', async () => {
    const { srv, a, b } = await pair()
    edit(a, 'c1', { title: 'alice' })
    edit(b, 'c1', { title: 'bob' })
    await deliver(srv, a, b)
    await waitFor(() => b.sync.conflicts().length === 1)
    const conflict = b.sync.conflicts()[0]!
    await b.sync.resolve(conflict.id, { value: 'agreed' })
    await settled(srv, a, b)

    const viaServer = await srv.history('board', { path: ['cards', 'c1', 'title'] })
    const viaStore = await a.sync.history({ path: 'cards.c1.title' })
    expect(viaStore).toEqual(viaServer)
    // Newest first.
    expect(viaServer.map((e) => ({ status: e.status, before: e.before, value: e.value, proposed: e.proposed, resolves: e.resolves }))).toEqual([
      { status: 'applied', before: 'alice', value: 'agreed', proposed: undefined, resolves: conflict.id },
      { status: 'conflict', before: 'alice', value: 'alice', proposed: 'bob', resolves: undefined },
      { status: 'applied', before: 'base', value: 'alice', proposed: undefined, resolves: undefined },
      // The record's creation: the title's first value as an op of its own ('manual', not the record's
      // 'lww'), then the record without it.
      { status: 'applied', before: undefined, value: 'base', proposed: undefined, resolves: undefined },
      { status: 'applied', before: undefined, value: expect.not.objectContaining({ title: expect.anything() }), proposed: undefined, resolves: undefined },
    ])
    expect(viaServer[3]!.path).toEqual(['cards', 'c1', 'title'])
    expect(viaServer[4]!.path).toEqual(['cards', 'c1'])
    const [, c] = viaServer
    expect(c).toMatchObject({ opId: conflict.id, client: b.sync.clientId, policy: 'manual', winner: { client: a.sync.clientId }, prev: 'base' })
    for (const e of viaServer) {
      expect(e.seq).toBeGreaterThan(0)
      expect(e.at).toBeGreaterThan(0)
    }
    // Who wrote each (no authenticate on this server: each store's `user` option): bob resolved his conflict.
    expect(viaServer.map((e) => e.user)).toEqual(['bob', 'bob', 'alice', 'alice', 'alice'])
    expect(await b.sync.history({ path: ['cards', 'c1', 'title'], limit: 1 })).toEqual([viaServer[0]])
    // Record-level entries too, and `limit` over the whole document.
    const all = await srv.history('board', { limit: 100 })
    expect(all[all.length - 1]).toMatchObject({ path: ['cards', 'c1'], status: 'applied', kind: 'set' })
    expect(await b.sync.history({ limit: 2 })).toEqual(all.slice(0, 2))
  })
})

describe('a record that exists only in the initial state', () => {
  it("edited on two devices: each field keeps its own policy (a 'manual' title raises a conflict, not a last-writer-wins race), other fields merge", async () => {
    const srv = await server()
    const initial = (): Doc => ({ cards: { c1: { title: 'init', notes: '', owner: 'nobody' } } })
    const make = (user: string) => {
      const store = createStore<Doc>()(sync(initial, { name: 'board', url: srv.url, dbName: freshDb(), crossTab: false, conflicts: CONFLICTS, user: { id: user }, autoConnect: false, onWarning: () => {} }))
      cleanups.push(() => store.sync.destroy())
      return store
    }
    const a = make('alice')
    const b = make('bob')
    await Promise.all([a.sync.ready, b.sync.ready])
    edit(a, 'c1', { title: 'alice title', notes: 'alice notes' })
    await sleep(20)
    edit(b, 'c1', { title: 'bob title (later)' })
    await deliver(srv, a, b)
    // Bob's title meets Alice's under 'manual': a conflict for Bob, not a silent win by the later stamp.
    await waitFor(() => b.sync.conflicts().length === 1, 5000, 'conflict raised')
    expect(b.sync.conflicts()[0]).toMatchObject({ path: ['cards', 'c1', 'title'], local: 'bob title (later)', remote: 'alice title' })
    const onServer = (await srv.doc('board')).current().state as unknown as Doc
    expect(onServer.cards.c1).toMatchObject({ title: 'alice title', notes: 'alice notes', owner: 'nobody' })
    await b.sync.resolve(b.sync.conflicts()[0]!.id, 'local')
    await settled(srv, a, b)
    await waitFor(() => a.getState().cards.c1?.title === 'bob title (later)', 5000, 'resolution reaches alice')
    expect(a.getState().cards.c1).toEqual(b.getState().cards.c1)
  })
})

describe('clocks', () => {
  it('a client whose clock jumps an hour ahead cannot always win: the server clamps its timestamps', async () => {
    const srv = await server({ maxDriftMs: 1000 })
    let offset = 0
    const fast = makeStore(srv.url, { now: () => Date.now() + offset })
    const honest = makeStore(srv.url)
    await online(fast, honest)
    edit(honest, 'c1', { notes: 'base' })
    await settled(srv, fast, honest)
    await waitFor(() => fast.getState().cards.c1?.notes === 'base')
    fast.sync.disconnect()
    honest.sync.disconnect()
    // Someone sets the system clock an hour ahead; the next write is stamped an hour in the future...
    offset = 3_600_000
    edit(fast, 'c1', { notes: 'fast clock' })
    await deliver(srv, fast)
    const [entry] = await srv.history('board', { path: ['cards', 'c1', 'notes'], limit: 1 })
    expect(entry).toMatchObject({ opId: expect.any(String), client: fast.sync.clientId, status: 'applied', value: 'fast clock' })
    // ...which the server stored clamped to its own time plus the allowed drift.
    expect(Number(entry!.hlc.slice(0, 15))).toBe(entry!.at + 1000)
    // So an honest write made concurrently a little later wins (unclamped, the fast one would for an hour).
    await sleep(1200)
    edit(honest, 'c1', { notes: 'honest, later' })
    await deliver(srv, honest)
    await settled(srv, fast, honest)
    for (const s of [fast, honest]) await waitFor(() => s.getState().cards.c1?.notes === 'honest, later', 5000, 'the later honest write wins')
    const [won] = await srv.history('board', { path: ['cards', 'c1', 'notes'], limit: 1 })
    expect(won).toMatchObject({ client: honest.sync.clientId, status: 'applied' })
  })

  it('by default a stamp is clamped to 5 s ahead of the server, so a fast clock\'s write wins only the next 5 s, not a minute', async () => {
    const srv = await server()
    // Never joined, so nothing corrected its clock: an hour fast.
    const fast = makeStore(srv.url, { now: () => Date.now() + 3_600_000, autoConnect: false })
    await fast.sync.ready
    edit(fast, 'c1', { notes: 'fast' })
    fast.sync.connect()
    await online(fast)
    await fast.sync.flush({ timeout: 5000 })
    const [entry] = await srv.history('board', { path: ['cards', 'c1'], limit: 1 })
    expect(Number(entry!.hlc.slice(0, 15))).toBe(entry!.at + 5000)
  })

  it('an edit stamped more than a day ahead is refused with CLOCK_SKEW once, then stamped by the server\'s time and delivered: no silent win, no dead letter', async () => {
    const srv = await server()
    // A device whose clock is three days fast, editing before it ever reached the server.
    const skewed = makeStore(srv.url, { now: () => Date.now() + 3 * 86_400_000, autoConnect: false })
    const other = makeStore(srv.url)
    await skewed.sync.ready
    edit(skewed, 'c1', { notes: 'from the future' })
    await waitFor(() => skewed.sync.pendingOperations().length === 1, 5000, 'captured')
    const id = skewed.sync.pendingOperations()[0]!.id
    skewed.sync.connect()
    await online(skewed, other)
    await skewed.sync.flush({ timeout: 5000 })
    expect(skewed.sync.deadLetters()).toEqual([])
    await waitFor(() => other.getState().cards.c1?.notes === 'from the future', 5000, 'delivered')
    const [entry] = await srv.history('board', { path: ['cards', 'c1'], limit: 1 })
    // Stamped by the server's time (what the device learnt at its join), not three days ahead.
    expect(entry).toMatchObject({ opId: id, status: 'applied' })
    expect(Math.abs(Number(entry!.hlc.slice(0, 15)) - entry!.at)).toBeLessThan(5000)
    // And it does not win against a later honest edit.
    edit(other, 'c1', { notes: 'later' })
    await settled(srv, skewed, other)
    await waitFor(() => skewed.getState().cards.c1?.notes === 'later', 5000, 'the later edit wins')
  })

  it('a clock that jumps two days ahead while online and comes back: the edit made meanwhile is delivered (stamped anew), and so are the ones after it', async () => {
    const srv = await server()
    let offset = 0
    const glitchy = makeStore(srv.url, { now: () => Date.now() + offset })
    const other = makeStore(srv.url)
    await online(glitchy, other)
    offset = 2 * 86_400_000
    edit(glitchy, 'c1', { notes: 'during the glitch' })
    await waitFor(() => other.getState().cards.c1?.notes === 'during the glitch', 5000, 'the glitch edit syncs')
    expect(glitchy.sync.deadLetters()).toEqual([])
    // The clock is right again.
    offset = 0
    edit(glitchy, 'c2', { notes: 'after the glitch' })
    await waitFor(() => other.getState().cards.c2?.notes === 'after the glitch', 5000, 'the next edit syncs')
    // Both stamped near the server's time, not two days ahead.
    for (const e of await srv.history('board', { limit: 2 })) expect(Math.abs(Number(e.hlc.slice(0, 15)) - e.at)).toBeLessThan(5000)
    expect(glitchy.sync.deadLetters()).toEqual([])
  })

  it('a device\'s edit after a reload beats its own earlier edit still pending, though the clock went back in between (a new client id, unacknowledged: concurrent)', async () => {
    const srv = await server()
    const dbName = freshDb()
    let offset = 0
    const opts = { dbName, autoConnect: false, now: () => Date.now() + offset }
    const seed = makeStore(srv.url)
    await online(seed)
    edit(seed, 'c1', { notes: 'n0' })
    await settled(srv, seed)
    const first = makeStore(srv.url, { ...opts, autoConnect: true })
    await online(first)
    await waitFor(() => first.getState().cards.c1?.notes === 'n0')
    first.sync.disconnect()
    edit(first, 'c1', { notes: 'a1' })
    await waitFor(() => first.sync.status().unpersisted === 0 && first.sync.status().pending === 1, 5000, 'a1 saved')
    await first.sync.destroy()
    // The clock is set back three hours; the page reloads (offline) and the user edits again.
    offset = -3 * 3_600_000
    const second = makeStore(srv.url, opts)
    await second.sync.ready
    expect(second.getState().cards.c1?.notes).toBe('a1')
    edit(second, 'c1', { notes: 'a2' })
    second.sync.connect()
    await online(second)
    await second.sync.flush({ timeout: 5000 })
    await settled(srv, second, seed)
    expect((await srv.doc('board')).current().state).toMatchObject({ cards: { c1: { notes: 'a2' } } })
    expect(second.getState().cards.c1?.notes).toBe('a2')
    await waitFor(() => seed.getState().cards.c1?.notes === 'a2', 5000, 'others see a2')
  })

  it('a wall clock set back a day while online does not make the next edit lose to one made before it elsewhere', async () => {
    const { srv, a } = await pair()
    let offset = 0
    const back = makeStore(srv.url, { user: { id: 'carol' }, now: () => Date.now() + offset })
    await online(back)
    await waitFor(() => back.getState().cards.c1 !== undefined)
    offset = -86_400_000
    // Alice edits offline; a moment later Carol (whose clock was just set back) edits the same field.
    edit(a, 'c1', { notes: 'alice, first' })
    await sleep(50)
    back.sync.disconnect()
    edit(back, 'c1', { notes: 'carol, later' })
    await deliver(srv, a, back)
    expect((await srv.doc('board')).current().state).toMatchObject({ cards: { c1: { notes: 'carol, later' } } })
    expect(a.getState().cards.c1?.notes).toBe('carol, later')
  })

  it('a retry scheduled before the wall clock was set back still happens on time', async () => {
    let failures = 1
    class Flaky extends MemoryStorage {
      override async append(d: string, entries: LogEntry[]) {
        if (failures-- > 0) throw new Error('disk hiccup')
        return super.append(d, entries)
      }
    }
    const srv = await server({ storage: new Flaky() })
    let offset = 0
    const s = makeStore(srv.url, { now: () => Date.now() + offset, backoff: { base: 2000, cap: 2000 } })
    await online(s)
    // The clock is set back three hours right after the refusal scheduled the retry (within 2 s).
    const failed = new Promise<void>((resolve) => s.sync.on('sync:failed', () => ((offset = -3 * 3_600_000), resolve())))
    edit(s, 'c1', { notes: 'kept' })
    await failed
    expect(failures).toBe(0)
    await s.sync.flush({ timeout: 5000 })
    expect((await srv.doc('board')).current().state).toMatchObject({ cards: { c1: { notes: 'kept' } } })
  })
})
