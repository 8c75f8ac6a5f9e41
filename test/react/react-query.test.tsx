// @vitest-environment jsdom
import { MutationObserver, QueryClient, QueryObserver, onlineManager } from '@tanstack/react-query'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { connectQueryClient, type SyncedChange } from 'zync/react-query'
import { ZyncError } from '../../src/core/errors'
import type { Change } from '../../src/core/protocol'
import { createFixtureStore, samples } from '../../stories/fixtures'
import { freshDb, makeBoard, waitFor } from '../helpers'

const change = (entity: string, value: unknown, seq = 1): Change => ({
  seq,
  opId: `op${seq}`,
  client: 'peer',
  n: seq,
  hlc: '0',
  entity,
  path: [...entity.split('/'), 'title'],
  kind: 'set',
  value,
  status: 'applied',
  policy: 'lww',
  at: 0,
})

const keysFor = (c: SyncedChange) => [['todos'], ['todo', c.entity.split('/')[1]]]

let qc: QueryClient

beforeEach(() => {
  qc = new QueryClient({ defaultOptions: { queries: { retry: false } } })
  qc.setQueryData(['todos'], [{ id: '1', title: 'a' }])
  qc.setQueryData(['todo', '1'], { id: '1', title: 'a' })
  qc.setQueryData(['todo', '2'], { id: '2', title: 'b' })
  onlineManager.setOnline(true)
})
afterEach(() => {
  qc.clear()
  vi.restoreAllMocks()
})

const invalidated = (key: unknown[]) => qc.getQueryState(key)?.isInvalidated

describe('connectQueryClient', () => {
  it('invalidates the query keys of remote changes, once per key per batch', () => {
    const store = createFixtureStore()
    const spy = vi.spyOn(qc, 'invalidateQueries')
    const disconnect = connectQueryClient(qc, store, { queryKeysFor: keysFor })
    store.emit('change:remote', { changes: [change('todos/1', 'x', 1), change('todos/1', 'y', 2)] })
    expect(invalidated(['todos'])).toBe(true)
    expect(invalidated(['todo', '1'])).toBe(true)
    expect(invalidated(['todo', '2'])).toBe(false)
    expect(spy).toHaveBeenCalledTimes(2)
    disconnect()
  })

  it('passes a SyncedChange and invalidates after a conflict is resolved', async () => {
    const store = createFixtureStore({ conflicts: samples.oneField() })
    const queryKeysFor = vi.fn(() => [['docs']])
    qc.setQueryData(['docs'], [])
    const disconnect = connectQueryClient(qc, store, { queryKeysFor })
    await store.sync.resolve('title', { value: 'merged' })
    expect(queryKeysFor).toHaveBeenCalledWith(
      expect.objectContaining({ source: 'resolved', entity: 'docs/q3-plan', kind: 'set', value: 'merged', path: ['docs', 'q3-plan', 'title'] }),
    )
    expect(invalidated(['docs'])).toBe(true)
    disconnect()
  })

  it("mode 'patch' writes through `patch`, and invalidates when it returns false", () => {
    const store = createFixtureStore()
    const disconnect = connectQueryClient(qc, store, {
      queryKeysFor: keysFor,
      mode: 'patch',
      patch: (client, c) => {
        if (c.entity !== 'todos/1') return false
        client.setQueryData(['todo', '1'], (old: object) => ({ ...old, title: c.value }))
      },
    })
    store.emit('change:remote', { changes: [change('todos/1', 'patched')] })
    expect(qc.getQueryData(['todo', '1'])).toEqual({ id: '1', title: 'patched' })
    expect(invalidated(['todo', '1'])).toBe(false)
    expect(invalidated(['todos'])).toBe(false)
    store.emit('change:remote', { changes: [change('todos/2', 'z')] })
    expect(invalidated(['todo', '2'])).toBe(true)
    disconnect()
  })

  it('a throwing callback does not stop the other changes', () => {
    const store = createFixtureStore()
    const err = vi.spyOn(console, 'error').mockImplementation(() => {})
    const disconnect = connectQueryClient(qc, store, {
      queryKeysFor: (c) => {
        if (c.entity === 'todos/1') throw new Error('boom')
        return keysFor(c)
      },
    })
    store.emit('change:remote', { changes: [change('todos/1', 'x'), change('todos/2', 'y')] })
    expect(invalidated(['todo', '2'])).toBe(true)
    expect(err).toHaveBeenCalledOnce()
    disconnect()
  })

  it("invalidates the keys of another tab's edits (change:tab)", () => {
    const store = createFixtureStore()
    const queryKeysFor = vi.fn(keysFor)
    const disconnect = connectQueryClient(qc, store, { queryKeysFor })
    store.emit('change:tab', { patches: [{ entity: 'todos/2', path: ['todos', '2', 'title'], op: 'replace', value: 'from tab 1' }] })
    expect(queryKeysFor).toHaveBeenCalledWith({ source: 'tab', entity: 'todos/2', path: ['todos', '2', 'title'], kind: 'set', value: 'from tab 1' })
    expect(invalidated(['todo', '2'])).toBe(true)
    expect(invalidated(['todo', '1'])).toBe(false)
    disconnect()
  })

  it('keeps TanStack Query online while the sync server refuses the store (credentials): only the sync is stopped', () => {
    const store = createFixtureStore({ status: { connection: 'online' } })
    const disconnect = connectQueryClient(qc, store, { queryKeysFor: keysFor })
    store.setStatus({ connection: 'offline', error: new ZyncError('UNAUTHENTICATED', '[zync] authentication failed') })
    expect(onlineManager.isOnline()).toBe(true)
    store.setStatus({ connection: 'offline', error: undefined })
    expect(onlineManager.isOnline()).toBe(false)
    disconnect()
  })

  it('drives onlineManager from the connection and restores it on disconnect', () => {
    const store = createFixtureStore({ status: { connection: 'offline' } })
    const disconnect = connectQueryClient(qc, store, { queryKeysFor: keysFor })
    expect(onlineManager.isOnline()).toBe(false)
    store.setStatus({ connection: 'online' })
    expect(onlineManager.isOnline()).toBe(true)
    store.setStatus({ connection: 'offline' })
    expect(onlineManager.isOnline()).toBe(false)
    store.setStatus({ connection: 'connecting' })
    expect(onlineManager.isOnline()).toBe(true)
    store.setStatus({ connection: 'offline' })
    disconnect()
    expect(onlineManager.isOnline()).toBe(true)
    disconnect()
  })

  it('on a server (no window) it leaves onlineManager alone by default: it is process-wide there, shared by every request', () => {
    const store = createFixtureStore({ status: { connection: 'offline' } })
    vi.stubGlobal('window', undefined)
    const disconnect = connectQueryClient(qc, store, { queryKeysFor: keysFor })
    vi.unstubAllGlobals()
    expect(onlineManager.isOnline()).toBe(true)
    disconnect()
  })

  it('stops listening after disconnect', () => {
    const store = createFixtureStore()
    const disconnect = connectQueryClient(qc, store, { queryKeysFor: keysFor, online: false })
    disconnect()
    store.emit('change:remote', { changes: [change('todos/1', 'x')] })
    store.setStatus({ connection: 'offline' })
    expect(invalidated(['todos'])).toBe(false)
    expect(onlineManager.isOnline()).toBe(true)
  })

  describe('several connections (found by a trial)', () => {
    it('the same store connected twice invalidates each key once; the first disconnect leaves the second connected', () => {
      const store = createFixtureStore()
      const spy = vi.spyOn(qc, 'invalidateQueries')
      const d1 = connectQueryClient(qc, store, { queryKeysFor: keysFor })
      const d2 = connectQueryClient(qc, store, { queryKeysFor: keysFor })
      store.emit('change:remote', { changes: [change('todos/1', 'x')] })
      expect(spy).toHaveBeenCalledTimes(2)
      d1()
      store.emit('change:remote', { changes: [change('todos/2', 'y', 2)] })
      expect(spy).toHaveBeenCalledTimes(4)
      d2()
      store.emit('change:remote', { changes: [change('todos/2', 'z', 3)] })
      expect(spy).toHaveBeenCalledTimes(4)
    })

    it('defaults and onlineManager are restored whatever the order of disconnects; defaults set meanwhile stay', () => {
      for (const order of [[0, 1], [1, 0]]) {
        const c = new QueryClient({ defaultOptions: { queries: { retry: false } } })
        onlineManager.setOnline(true)
        const a = createFixtureStore({ status: { connection: 'offline' } })
        const b = createFixtureStore({ status: { connection: 'offline' } })
        const ds = [connectQueryClient(c, a, { queryKeysFor: keysFor }), connectQueryClient(c, b, { queryKeysFor: keysFor })]
        expect(c.getDefaultOptions().mutations?.networkMode).toBe('always')
        expect(onlineManager.isOnline()).toBe(false)
        c.setDefaultOptions({ ...c.getDefaultOptions(), mutations: { ...c.getDefaultOptions().mutations, retry: 3 } })
        ds[order[0]!]!()
        expect(c.getDefaultOptions().mutations?.networkMode).toBe('always')
        ds[order[1]!]!()
        expect(c.getDefaultOptions().queries).toEqual({ retry: false })
        expect(c.getDefaultOptions().mutations).toEqual({ retry: 3 })
        expect(onlineManager.isOnline()).toBe(true)
      }
    })

    it('one store connected to two QueryClients: disconnecting one leaves onlineManager following the store', () => {
      const store = createFixtureStore({ status: { connection: 'online' } })
      const d1 = connectQueryClient(qc, store, { queryKeysFor: keysFor })
      const d2 = connectQueryClient(new QueryClient(), store, { queryKeysFor: keysFor })
      d2()
      store.setStatus({ connection: 'offline' })
      expect(onlineManager.isOnline()).toBe(false)
      store.setStatus({ connection: 'online' })
      expect(onlineManager.isOnline()).toBe(true)
      d1()
    })

    it('connecting a store to the same QueryClient again replaces the earlier connection whole: its disconnect alone restores everything', () => {
      const c = new QueryClient({ defaultOptions: { queries: { retry: false } } })
      const store = createFixtureStore({ status: { connection: 'offline' } })
      const d1 = connectQueryClient(c, store, { queryKeysFor: keysFor })
      const d2 = connectQueryClient(c, store, { queryKeysFor: keysFor })
      expect(onlineManager.isOnline()).toBe(false)
      d2()
      expect(c.getDefaultOptions().queries).toEqual({ retry: false })
      expect(c.getDefaultOptions().mutations).toBeUndefined()
      expect(onlineManager.isOnline()).toBe(true)
      // TanStack's own browser listener is back.
      window.dispatchEvent(new Event('offline'))
      expect(onlineManager.isOnline()).toBe(false)
      window.dispatchEvent(new Event('online'))
      expect(onlineManager.isOnline()).toBe(true)
      d1()
      expect(onlineManager.isOnline()).toBe(true)
    })

    it('onlineManager is online while any connected store can reach the network', () => {
      const a = createFixtureStore({ status: { connection: 'online' } })
      const b = createFixtureStore({ status: { connection: 'online' } })
      const da = connectQueryClient(qc, a, { queryKeysFor: keysFor })
      const db = connectQueryClient(new QueryClient(), b, { queryKeysFor: keysFor })
      b.setStatus({ connection: 'offline' })
      expect(onlineManager.isOnline()).toBe(true)
      a.setStatus({ connection: 'offline' })
      expect(onlineManager.isOnline()).toBe(false)
      a.setStatus({ connection: 'online' })
      expect(onlineManager.isOnline()).toBe(true)
      da()
      expect(onlineManager.isOnline()).toBe(false)
      db()
      expect(onlineManager.isOnline()).toBe(true)
    })

    it("the browser's online and offline events do not override a store's state while connected, and drive it again after", () => {
      const store = createFixtureStore({ status: { connection: 'offline' } })
      const disconnect = connectQueryClient(qc, store, { queryKeysFor: keysFor })
      window.dispatchEvent(new Event('online'))
      expect(onlineManager.isOnline()).toBe(false)
      disconnect()
      window.dispatchEvent(new Event('offline'))
      expect(onlineManager.isOnline()).toBe(false)
      window.dispatchEvent(new Event('online'))
      expect(onlineManager.isOnline()).toBe(true)
    })

    it("mode 'patch': a patch that throws invalidates the change's queries instead of leaving them stale", () => {
      const store = createFixtureStore()
      vi.spyOn(console, 'error').mockImplementation(() => {})
      const disconnect = connectQueryClient(qc, store, {
        queryKeysFor: keysFor,
        mode: 'patch',
        patch: () => {
          throw new Error('boom')
        },
      })
      store.emit('change:remote', { changes: [change('todos/1', 'x')] })
      expect(invalidated(['todo', '1'])).toBe(true)
      disconnect()
    })
  })

  it('an active query refetches after a remote change', async () => {
    const store = createFixtureStore()
    let n = 0
    const queryFn = vi.fn(async () => [{ id: '1', title: `fetch ${++n}` }])
    const observer = new QueryObserver(qc, { queryKey: ['live'], queryFn, staleTime: Infinity })
    const off = observer.subscribe(() => {})
    await vi.waitFor(() => expect(observer.getCurrentResult().data).toEqual([{ id: '1', title: 'fetch 1' }]))
    const disconnect = connectQueryClient(qc, store, { queryKeysFor: () => [['live']] })
    store.emit('change:remote', { changes: [change('todos/1', 'x')] })
    await vi.waitFor(() => expect(observer.getCurrentResult().data).toEqual([{ id: '1', title: 'fetch 2' }]))
    off()
    disconnect()
  })

  describe('with a real store (IndexedDB outbox, offline)', () => {
    // Nothing listens there: the store never connects (autoConnect: false) and stays offline.
    const url = 'http://127.0.0.1:9'

    it("a mutation that writes the store runs while the store is offline (not paused in TanStack's memory), and its write survives a reload", async () => {
      const dbName = freshDb()
      const a = makeBoard({ dbName, url, autoConnect: false })
      await a.sync.ready
      expect(a.sync.status().connection).toBe('offline')
      const disconnect = connectQueryClient(qc, a, { queryKeysFor: keysFor })
      expect(onlineManager.isOnline()).toBe(false)
      const m = new MutationObserver(qc, { mutationFn: async (title: string) => a.getState().addCard('z', title) })
      void m.mutate('made offline')
      await waitFor(() => a.sync.status().pending === 1 && a.sync.status().unpersisted === 0, 5000, 'the write in the outbox')
      expect(m.getCurrentResult().isPaused).toBe(false)
      disconnect()
      await a.sync.destroy()
      // The reload: a new store on the same database.
      const b = makeBoard({ dbName, url, autoConnect: false })
      await b.sync.ready
      expect(b.getState().cards.z?.title).toBe('made offline')
      expect(b.sync.status().pending).toBe(1)
      await b.sync.destroy()
    })

    it('a mutation that sets its own networkMode keeps it, and the defaults are restored on disconnect', async () => {
      const a = makeBoard({ dbName: freshDb(), url, autoConnect: false })
      await a.sync.ready
      const before = qc.getDefaultOptions()
      const disconnect = connectQueryClient(qc, a, { queryKeysFor: keysFor })
      expect(qc.getDefaultOptions().mutations?.networkMode).toBe('always')
      expect(qc.getDefaultOptions().queries).toMatchObject({ networkMode: 'always', retry: false })
      const api = new MutationObserver(qc, { mutationFn: async () => 'sent', networkMode: 'online' })
      void api.mutate()
      await waitFor(() => api.getCurrentResult().isPaused, 2000, 'the network-bound mutation paused')
      disconnect()
      expect(qc.getDefaultOptions()).toEqual(before)
      await a.sync.destroy()
    })

    /** A page that added a card offline, then closed: its database, for the next page (a reload) to load. */
    async function savedCardOffline(): Promise<string> {
      const dbName = freshDb()
      const a = makeBoard({ dbName, url, autoConnect: false })
      await a.sync.ready
      a.getState().addCard('saved', 'kept across the reload')
      await waitFor(() => a.sync.status().pending === 1 && a.sync.status().unpersisted === 0)
      await a.sync.destroy()
      return dbName
    }

    it('a query that ran before the store loaded what this device saved is refetched once it has (a reload)', async () => {
      const dbName = await savedCardOffline()
      const b = makeBoard({ dbName, url, autoConnect: false })
      // The keys of this board's queries (keysFor is the todo fixture's).
      const disconnect = connectQueryClient(qc, b, { queryKeysFor: (c) => [['cards'], ['card', c.path[1]]] })
      const fetched: string[][] = []
      const obs = new QueryObserver(qc, { queryKey: ['cards'], queryFn: () => (fetched.push(Object.keys(b.getState().cards)), Object.keys(b.getState().cards)) })
      const unsub = obs.subscribe(() => {})
      await waitFor(() => obs.getCurrentResult().data?.includes('saved') === true, 5000, 'the query to show the saved card')
      // It did run before the load (and saw nothing): the refetch is what shows the card.
      expect(fetched[0]).toEqual([])
      unsub()
      disconnect()
      await b.sync.destroy()
    })

    it('a reload refetches only the queries of the records it loaded: one of another API (or restored by persistQueryClient) is left alone', async () => {
      const dbName = await savedCardOffline()
      // A query of a REST API that holds data (restored from a persisted cache, say), and one of another card.
      qc.setQueryData(['weather'], 'sunny')
      qc.setQueryData(['cards'], [])
      const b = makeBoard({ dbName, url, autoConnect: false })
      const disconnect = connectQueryClient(qc, b, { queryKeysFor: (c) => [['cards'], ['card', c.path[1]]] })
      await b.sync.ready
      expect(b.getState().cards.saved).toBeDefined()
      // The card list read the initial state: stale now. The rest is not.
      expect(invalidated(['cards'])).toBe(true)
      expect(invalidated(['weather'])).toBe(false)
      expect(invalidated(['todo', '1'])).toBe(false)
      disconnect()
      await b.sync.destroy()
    })
  })
})
