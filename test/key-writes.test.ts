/**
 * A whole top-level key written or dropped at once (`setState(state, true)` without `cards`, a
 * collection that first appears in one `set()`), against edits inside its records on other devices,
 * through the public API: real server, stores on fake-indexeddb.
 */
import { describe, expect, it } from 'vitest'
import { createStore } from 'zustand/vanilla'
import { sync, type SyncOptions } from 'zync'
import { freshDb, useCleanup, waitFor } from './helpers'

type Card = Record<string, unknown>
interface Doc {
  cards?: Record<string, Card>
  lists?: Record<string, Card>
}
type Store = ReturnType<typeof makeStore>

const { cleanups, server } = useCleanup()

function makeStore(url: string, init: Doc, opts: Partial<SyncOptions<Doc>> = {}) {
  const store = createStore<Doc>()(
    sync(() => init, { name: 'board', url, dbName: freshDb(), crossTab: false, conflicts: { paths: { 'cards.*.title': 'manual', 'lists.*.title': 'manual', 'lists.*.n': 'counter', 'lists.*.t': 'set' } }, onWarning: () => {}, ...opts }),
  )
  cleanups.push(() => store.sync.destroy())
  return store
}

async function online(...stores: Store[]): Promise<void> {
  await Promise.all(stores.map((s) => s.sync.ready))
  await waitFor(() => stores.every((s) => s.sync.status().connection === 'online'), 5000, 'stores online')
}

/** Everything flushed and every store at the server's head. */
async function settled(srv: Awaited<ReturnType<typeof server>>, ...stores: Store[]): Promise<void> {
  await Promise.all(stores.map((s) => s.sync.flush({ timeout: 5000 })))
  const target = (await srv.doc('board')).seq
  await waitFor(() => stores.every((s) => s.sync.status().seq >= target && s.sync.status().pending === 0), 5000, `stores at seq ${target}`)
}

/** The synced part of a store's state (the middleware adds nothing to it, but functions would not compare). */
const data = (s: Store) => JSON.parse(JSON.stringify(s.getState())) as Doc

describe('a whole top-level key', () => {
  it('dropped on one device while another edits a card offline: the drop stands on both, no partial card comes back', async () => {
    const srv = await server()
    const a = makeStore(srv.url, { cards: {} })
    const b = makeStore(srv.url, { cards: {} })
    await online(a, b)
    a.setState({ cards: { c1: { title: 'Plan', notes: 'n0', done: false } } })
    await settled(srv, a, b)
    b.sync.disconnect()
    // Bob, offline, edits the card; Alice then drops the whole collection (a replace without the key).
    b.setState((s) => ({ cards: { ...s.cards, c1: { ...s.cards!.c1, notes: 'offline note' } } }))
    a.setState({}, true)
    await a.sync.flush({ timeout: 5000 })
    b.sync.connect()
    await online(b)
    await settled(srv, a, b)
    // Before, the server applied Bob's field into the dropped collection: { cards: { c1: { notes } } }.
    expect(data(a)).toEqual({})
    expect(data(b)).toEqual({})
    expect((await srv.doc('board')).current().state).toEqual({})
  })

  it('dropped offline, older than an edit inside it that reached the server first: the edit stands, the drop is superseded', async () => {
    const srv = await server()
    const a = makeStore(srv.url, { cards: {} })
    const b = makeStore(srv.url, { cards: {} })
    await online(a, b)
    a.setState({ cards: { c1: { title: 'Plan', notes: 'n0' } } })
    await settled(srv, a, b)
    a.sync.disconnect()
    a.setState({}, true)
    await new Promise((r) => setTimeout(r, 20))
    // Bob's edit is later in time and reaches the server first: Alice's older drop had not seen it.
    b.setState((s) => ({ cards: { ...s.cards, c1: { ...s.cards!.c1, notes: 'later note' } } }))
    await settled(srv, b)
    a.sync.connect()
    await online(a)
    await settled(srv, a, b)
    // Before, the drop was never checked against the edit inside the collection and removed it.
    const want = { cards: { c1: { title: 'Plan', notes: 'later note' } } }
    expect(data(a)).toEqual(want)
    expect(data(b)).toEqual(want)
  })

  it('switched to a string while another device adds a record to it offline: that device shows the string, not an empty collection', async () => {
    const srv = await server()
    const a = makeStore(srv.url, {})
    const b = makeStore(srv.url, {})
    await online(a, b)
    a.setState({ lists: { x: { name: 'X' } } })
    await settled(srv, a, b)
    b.sync.disconnect()
    b.setState((s) => ({ lists: { ...s.lists, y: { name: 'Y' } } }))
    await new Promise((r) => setTimeout(r, 20))
    // Later than Bob's new record: the whole-key write wins it (the record is superseded).
    a.setState({ lists: 'archived' as unknown as Record<string, Card> })
    await a.sync.flush({ timeout: 5000 })
    b.sync.connect()
    await online(b)
    await settled(srv, a, b)
    // Before, Bob's store removed its records one by one and kept `lists: {}`.
    expect(data(a)).toEqual({ lists: 'archived' })
    expect(data(b)).toEqual({ lists: 'archived' })
  })

  it('created by two devices offline: both collections merge by key', async () => {
    const srv = await server()
    const a = makeStore(srv.url, {})
    const b = makeStore(srv.url, {})
    await online(a, b)
    a.sync.disconnect()
    b.sync.disconnect()
    a.setState({ lists: { x: { name: 'X' } } })
    b.setState({ lists: { y: { name: 'Y' } } })
    a.sync.connect()
    await online(a)
    await settled(srv, a)
    b.sync.connect()
    await online(b)
    await settled(srv, a, b)
    // Before, the second collection replaced the first (last writer wins on the whole key): X was lost.
    const want = { lists: { x: { name: 'X' }, y: { name: 'Y' } } }
    expect(data(a)).toEqual(want)
    expect(data(b)).toEqual(want)
  })

  it('created by three devices offline with the same record: its counts add up and its sets join, as in an existing collection', async () => {
    const srv = await server()
    const stores = [makeStore(srv.url, {}), makeStore(srv.url, {}), makeStore(srv.url, {})]
    await online(...stores)
    for (const s of stores) s.sync.disconnect()
    stores.forEach((s, i) => s.setState({ lists: { shared: { n: i + 1, t: [`x${i}`] } } }))
    for (const s of stores) {
      s.sync.connect()
      await online(s)
      await s.sync.flush({ timeout: 5000 })
    }
    await settled(srv, ...stores)
    // Before, the collection went as one write of the whole key: one device's count and set won (n: 2).
    for (const s of stores) {
      const shared = data(s).lists!.shared!
      expect(shared.n).toBe(6)
      expect([...(shared.t as string[])].sort()).toEqual(['x0', 'x1', 'x2'])
    }
  })

  it("written whole on one device: another device that saw it edits a card's manual field without a conflict", async () => {
    const srv = await server()
    const a = makeStore(srv.url, {})
    const b = makeStore(srv.url, {})
    await online(a, b)
    // A key that held a string becomes a collection: one write of the whole key, the last writer of x.
    a.setState({ lists: 'none' as unknown as Record<string, Card> })
    await settled(srv, a, b)
    a.setState({ lists: { x: { title: 'X' } } })
    await settled(srv, a, b)
    expect(data(b)).toEqual({ lists: { x: { title: 'X' } } })
    b.setState((s) => ({ lists: { ...s.lists, x: { title: 'X by Bob' } } }))
    await settled(srv, a, b)
    // Bob had seen Alice's write of the collection: his base says so, so the server does not take his
    // title as concurrent with it (a conflict in his inbox under 'manual').
    expect(b.sync.conflicts()).toEqual([])
    expect(data(a)).toEqual({ lists: { x: { title: 'X by Bob' } } })
    expect(data(b)).toEqual({ lists: { x: { title: 'X by Bob' } } })
  })

  it("a record only the initial state holds, deleted on one device while another edits it offline: the deletion stands", async () => {
    const srv = await server()
    const init = { cards: { c1: { title: 'default', notes: '' } } }
    const a = makeStore(srv.url, init)
    const b = makeStore(srv.url, init)
    await online(a, b)
    b.sync.disconnect()
    // Alice's first edit sends the default record; then she deletes it.
    a.setState((s) => ({ cards: { ...s.cards, c1: { ...s.cards!.c1, notes: 'A note' } } }))
    await a.sync.flush({ timeout: 5000 })
    a.setState({ cards: {} })
    await a.sync.flush({ timeout: 5000 })
    await new Promise((r) => setTimeout(r, 20))
    // Bob, offline all along, edits the card of his initial state, later than the deletion: his first
    // edit of it goes as the whole record. Before, it brought the card back everywhere (later stamp).
    b.setState((s) => ({ cards: { ...s.cards, c1: { ...s.cards!.c1, notes: 'B note' } } }))
    b.sync.connect()
    await online(b)
    await settled(srv, a, b)
    expect(data(a)).toEqual({ cards: {} })
    expect(data(b)).toEqual({ cards: {} })
  })
})
