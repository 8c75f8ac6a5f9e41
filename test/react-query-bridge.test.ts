// The TanStack Query bridge against real stores and a real sync server: every way the store's state
// changes under the app reaches the query cache (a trial found a snapshot join, a discard and the
// patch mode's values did not).
import { QueryClient, QueryObserver } from '@tanstack/react-query'
import { afterEach, describe, expect, it } from 'vitest'
import { connectQueryClient, type SyncedChange } from 'zync/react-query'
import { ZyncError } from 'zync'
import { getAt } from '../src/core/patch'
import { freshDb, makeBoard, useCleanup, waitFor } from './helpers'

const { cleanups, server } = useCleanup()
let qc: QueryClient
afterEach(() => qc?.clear())

const cardKeys = (c: SyncedChange) => [['cards'], ['card', c.path[1]]]
type Board = ReturnType<typeof makeBoard>

/** An active ['cards'] query reading the store, as the README's useCards does. */
function watchCards(store: Board) {
  const obs = new QueryObserver(qc, { queryKey: ['cards'], queryFn: () => Object.keys(store.getState().cards).sort(), staleTime: Infinity })
  const off = obs.subscribe(() => {})
  cleanups.push(off)
  return () => obs.getCurrentResult().data
}

/** A server where only ann may write, and her card c1 on it ('by ann'). */
async function annsBoard() {
  const s = await server({
    authenticate: ({ auth }) => ({ id: String(auth.user) }),
    authorize: (user, _doc, action) => action !== 'write' || user.id === 'ann',
  })
  const ann = makeBoard({ url: s.url, storage: 'memory', auth: { user: 'ann' } })
  cleanups.push(() => ann.sync.destroy())
  ann.getState().addCard('c1', 'by ann')
  await ann.sync.flush({ timeout: 5000 })
  return s
}

describe('connectQueryClient with real stores', () => {
  it('a device that catches up by snapshot (far behind) refetches the queries of what the snapshot changed', async () => {
    qc = new QueryClient()
    // Every 5 ops a snapshot: a device more than 5 behind gets the server's state, not the log.
    const s = await server({ snapshotEvery: 5 })
    const a = makeBoard({ url: s.url, storage: 'memory' })
    cleanups.push(() => a.sync.destroy())
    for (let i = 0; i < 12; i++) a.getState().addCard(`c${i}`, `card ${i}`)
    await a.sync.flush({ timeout: 5000 })
    // A new device: its query ran on the empty initial state, then the join brought a snapshot.
    const b = makeBoard({ url: s.url, storage: 'memory', autoConnect: false })
    cleanups.push(() => b.sync.destroy())
    const snapshots: string[] = []
    b.sync.on('change:shown', ({ source }) => snapshots.push(source))
    const disconnect = connectQueryClient(qc, b, { queryKeysFor: cardKeys })
    cleanups.push(disconnect)
    const cards = watchCards(b)
    await b.sync.ready
    await waitFor(() => cards()?.length === 0, 5000, 'the query on the empty state')
    b.sync.connect()
    await waitFor(() => Object.keys(b.getState().cards).length === 12, 5000, 'the snapshot in the store')
    expect(snapshots).toContain('snapshot')
    await waitFor(() => cards()?.length === 12, 5000, 'the query to show the snapshot')
    expect(cards()).toEqual(Object.keys(b.getState().cards).sort())
  })

  it("mode 'patch' gets what the store shows, not the server's value, while an edit of this device is pending over it", async () => {
    qc = new QueryClient()
    const s = await server()
    const a = makeBoard({ url: s.url, storage: 'memory' })
    const b = makeBoard({ url: s.url, storage: 'memory' })
    cleanups.push(() => a.sync.destroy(), () => b.sync.destroy())
    a.getState().addCard('c1', 'first')
    await a.sync.flush({ timeout: 5000 })
    await waitFor(() => b.getState().cards.c1?.title === 'first', 5000, 'b has the card')
    const seen: Array<{ value: unknown; shown: unknown }> = []
    const disconnect = connectQueryClient(qc, b, {
      queryKeysFor: cardKeys,
      mode: 'patch',
      patch: (client, c) => {
        seen.push({ value: c.value, shown: getAt(b.getState(), c.path) })
        if (c.path[0] !== 'cards' || c.path.length !== 3) return false
        client.setQueryData(['card', c.path[1]], (old: Record<string, unknown> | undefined) => ({ ...old, [c.path[2]!]: c.value }))
      },
    })
    cleanups.push(disconnect)
    qc.setQueryData(['card', 'c1'], { ...b.getState().cards.c1 })
    // b renames offline; a renames too and votes.
    b.sync.disconnect()
    b.getState().rename('c1', 'mine, pending')
    a.getState().rename('c1', 'theirs')
    a.getState().vote('c1')
    await a.sync.flush({ timeout: 5000 })
    const catchUp = new Promise<void>((resolve) => {
      const off = b.sync.on('change:remote', () => (off(), resolve()))
    })
    b.sync.connect()
    await catchUp
    // The catch-up arrived with b's rename still pending: the screen shows b's title, and so must the cache.
    expect(seen.length).toBeGreaterThan(0)
    expect(seen[0]).toEqual({ value: 'mine, pending', shown: 'mine, pending' })
    expect(qc.getQueryData(['card', 'c1'])).toMatchObject({ title: b.getState().cards.c1!.title, votes: 1 })
    // Then whichever rename wins (the clocks decide, in the same millisecond by client id) on both.
    await b.sync.flush({ timeout: 5000 })
    await waitFor(() => b.getState().cards.c1?.title === a.getState().cards.c1?.title, 5000, 'the two devices agree')
    for (const x of seen) expect(x.value).toEqual(x.shown)
    expect(qc.getQueryData(['card', 'c1'])).toEqual(b.getState().cards.c1)
  })

  it("a refused edit discarded (a viewer's) leaves the cache too", async () => {
    qc = new QueryClient()
    const s = await annsBoard()
    const viewer = makeBoard({ url: s.url, storage: 'memory', auth: { user: 'vic' } })
    cleanups.push(() => viewer.sync.destroy())
    await waitFor(() => viewer.getState().cards.c1?.title === 'by ann', 5000, 'the viewer has the card')
    const disconnect = connectQueryClient(qc, viewer, { queryKeysFor: cardKeys })
    cleanups.push(disconnect)
    const titles = new QueryObserver(qc, { queryKey: ['card', 'c1'], queryFn: () => viewer.getState().cards.c1?.title ?? null, staleTime: Infinity })
    cleanups.push(titles.subscribe(() => {}))
    await waitFor(() => titles.getCurrentResult().data === 'by ann', 5000, 'the query')
    viewer.getState().rename('c1', 'refused')
    await qc.invalidateQueries({ queryKey: ['card', 'c1'] })
    expect(titles.getCurrentResult().data).toBe('refused')
    await waitFor(() => viewer.sync.deadLetters().length === 1, 5000, 'the edit refused')
    await viewer.sync.discard(viewer.sync.deadLetters()[0]!.id)
    expect(viewer.getState().cards.c1?.title).toBe('by ann')
    await waitFor(() => titles.getCurrentResult().data === 'by ann', 5000, 'the cache back on the stored title')
  })

  it("an edit refused and discarded in another tab of the device leaves this tab's cache too", async () => {
    qc = new QueryClient()
    const s = await annsBoard()
    // Two tabs of a viewer's browser: one IndexedDB, one tab channel.
    const dbName = freshDb()
    const tab1 = makeBoard({ url: s.url, dbName, auth: { user: 'vic' } })
    const tab2 = makeBoard({ url: s.url, dbName, auth: { user: 'vic' } })
    cleanups.push(() => tab1.sync.destroy(), () => tab2.sync.destroy())
    await waitFor(() => tab1.getState().cards.c1?.title === 'by ann' && tab2.getState().cards.c1?.title === 'by ann', 5000, 'both tabs have the card')
    const disconnect = connectQueryClient(qc, tab2, { queryKeysFor: cardKeys })
    cleanups.push(disconnect)
    const titles = new QueryObserver(qc, { queryKey: ['card', 'c1'], queryFn: () => tab2.getState().cards.c1?.title ?? null, staleTime: Infinity })
    cleanups.push(titles.subscribe(() => {}))
    tab1.getState().rename('c1', 'refused')
    await waitFor(() => tab1.sync.deadLetters().length === 1, 5000, 'the edit refused')
    await waitFor(() => titles.getCurrentResult().data === 'refused', 5000, "the other tab's cache shows the edit")
    await tab1.sync.discard(tab1.sync.deadLetters()[0]!.id)
    await waitFor(() => tab2.getState().cards.c1?.title === 'by ann', 5000, 'the other tab shows the stored title')
    await waitFor(() => titles.getCurrentResult().data === 'by ann', 5000, "the other tab's cache back on the stored title")
  })

  it("mode 'patch' without a patch function is a BAD_REQUEST at once, not invalidation by surprise", () => {
    qc = new QueryClient()
    const store = makeBoard({ url: 'http://127.0.0.1:9', storage: 'memory', autoConnect: false })
    cleanups.push(() => store.sync.destroy())
    expect(() => connectQueryClient(qc, store, { queryKeysFor: cardKeys, mode: 'patch' })).toThrow(ZyncError)
    expect(() => connectQueryClient(qc, store, { queryKeysFor: cardKeys, mode: 'patch' })).toThrow(/needs a `patch` function/)
  })
})
