import { afterEach, describe, expect, expectTypeOf, it } from 'vitest'
import { create } from 'zustand'
import { createStore, type StoreApi } from 'zustand/vanilla'
import { devtools, persist, subscribeWithSelector, createJSONStorage } from 'zustand/middleware'
import { immer } from 'zustand/middleware/immer'
import { sync, type SyncApi, type SyncStatus, ZyncError } from 'zync'
import { freshDb, startServer, waitFor } from './helpers'

interface Todos {
  todos: Record<string, { text: string; done: boolean }>
  add: (id: string, text: string) => void
  toggle: (id: string) => void
}

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!()
})

describe('composition with zustand', () => {
  it('types: store.sync is typed on create, createStore and with immer, devtools, persist, subscribeWithSelector', () => {
    const opts = { name: 'types', storage: 'memory' as const, autoConnect: false, url: 'http://127.0.0.1:1' }
    const a = create<Todos>()(sync((set) => ({ todos: {}, add: (id, text) => set((s) => ({ todos: { ...s.todos, [id]: { text, done: false } } })), toggle: () => {} }), opts))
    expectTypeOf(a.sync).toEqualTypeOf<SyncApi<Todos>>()
    expectTypeOf(a.sync.status()).toEqualTypeOf<SyncStatus>()
    expectTypeOf(a.getState().add).toEqualTypeOf<(id: string, text: string) => void>()

    const b = createStore<Todos>()(sync((): Todos => ({ todos: {}, add: () => {}, toggle: () => {} }), opts))
    expectTypeOf(b.sync).toEqualTypeOf<SyncApi<Todos>>()
    expectTypeOf(b).toExtend<StoreApi<Todos>>()

    const c = create<Todos>()(
      devtools(
        subscribeWithSelector(
          immer(
            sync(
              (set) => ({
                todos: {},
                add: (id, text) =>
                  set((s) => {
                    s.todos[id] = { text, done: false }
                  }),
                toggle: (id) =>
                  set((s) => {
                    s.todos[id]!.done = !s.todos[id]!.done
                  }),
              }),
              opts,
            ),
          ),
        ),
        { enabled: false },
      ),
    )
    expectTypeOf(c.sync).toEqualTypeOf<SyncApi<Todos>>()
    expectTypeOf(c.subscribe).toBeFunction()
    expectTypeOf(c.devtools).toHaveProperty('cleanup')

    const d = create<Todos>()(persist(sync((): Todos => ({ todos: {}, add: () => {}, toggle: () => {} }), opts), { name: 'p', storage: createJSONStorage(() => memoryStorage()) }))
    expectTypeOf(d.sync).toEqualTypeOf<SyncApi<Todos>>()
    expectTypeOf(d.persist.rehydrate).toBeFunction()
    for (const s of [a, b, c, d]) cleanups.push(() => s.sync.destroy())
  })

  it("names the remote changes it applies 'zync/remote', as devtools shows them (they showed as the caller's name)", async () => {
    const server = await startServer()
    cleanups.push(() => server.close())
    const make = () => createStore<{ n: number }>()(sync(() => ({ n: 0 }), { name: 'named', url: server.url, dbName: freshDb() }))
    const a = make()
    const b = make()
    cleanups.push(() => a.sync.destroy(), () => b.sync.destroy())
    // What an outer middleware (devtools) sees of b's setState calls.
    const actions: unknown[] = []
    const inner = b.setState as (...args: unknown[]) => void
    b.setState = ((...args: unknown[]) => {
      actions.push(args[2])
      inner(...args)
    }) as typeof b.setState
    a.setState({ n: 1 })
    await waitFor(() => b.getState().n === 1)
    expect(actions).toEqual(['zync/remote'])
  })

  it('captures immer mutations under devtools and subscribeWithSelector, and syncs them', async () => {
    const server = await startServer()
    cleanups.push(() => server.close())
    const make = () =>
      create<Todos>()(
        devtools(
          subscribeWithSelector(
            immer(
              sync(
                (set) => ({
                  todos: {},
                  add: (id, text) =>
                    set((s) => {
                      s.todos[id] = { text, done: false }
                    }),
                  toggle: (id) =>
                    set((s) => {
                      s.todos[id]!.done = !s.todos[id]!.done
                    }),
                }),
                { name: 'immer-doc', url: server.url, dbName: freshDb() },
              ),
            ),
          ),
          { enabled: false },
        ),
      )
    const a = make()
    const b = make()
    cleanups.push(() => a.sync.destroy(), () => b.sync.destroy())
    const seen: boolean[] = []
    b.subscribe(
      (s) => s.todos.t1?.done,
      (done) => seen.push(Boolean(done)),
    )
    a.getState().add('t1', 'write docs')
    a.getState().toggle('t1')
    await a.sync.flush()
    await waitFor(() => b.getState().todos.t1?.done === true)
    expect(b.getState().todos).toEqual({ t1: { text: 'write docs', done: true } })
    expect(seen.at(-1)).toBe(true)
    b.getState().toggle('t1')
    await b.sync.flush()
    await waitFor(() => a.getState().todos.t1?.done === false)
  })

  it('setState from outside the store and createStore from zustand/vanilla are captured', async () => {
    const server = await startServer()
    cleanups.push(() => server.close())
    const mk = () => createStore<{ n: number; label: string }>()(sync(() => ({ n: 0, label: '' }), { name: 'vanilla', url: server.url, dbName: freshDb() }))
    const a = mk()
    const b = mk()
    cleanups.push(() => a.sync.destroy(), () => b.sync.destroy())
    a.setState({ n: 41 })
    a.setState((s) => ({ n: s.n + 1, label: 'answer' }))
    await a.sync.flush()
    await waitFor(() => b.getState().n === 42 && b.getState().label === 'answer')
  })

  it('partialize limits what syncs; functions never sync', async () => {
    const server = await startServer()
    cleanups.push(() => server.close())
    type S = { shared: number; local: number; bump: () => void }
    const mk = () =>
      createStore<S>()(
        sync((set) => ({ shared: 0, local: 0, bump: () => set((s) => ({ shared: s.shared + 1, local: s.local + 1 })) }), {
          name: 'partial',
          url: server.url,
          dbName: freshDb(),
          partialize: (s) => ({ shared: s.shared }),
        }),
      )
    const a = mk()
    const b = mk()
    cleanups.push(() => a.sync.destroy(), () => b.sync.destroy())
    a.getState().bump()
    await a.sync.flush()
    await waitFor(() => b.getState().shared === 1)
    expect(b.getState().local).toBe(0)
    expect(typeof b.getState().bump).toBe('function')
    const history = await a.sync.history()
    expect(history.map((h) => h.path)).toEqual([['shared']])
  })

  it('a local set never throws because of sync, and a value that cannot sync is reported', async () => {
    const store = createStore<{ when: unknown }>()(sync((): { when: unknown } => ({ when: 1 }), { name: 'bad-values', storage: 'memory', autoConnect: false, url: 'http://127.0.0.1:1' }))
    cleanups.push(() => store.sync.destroy())
    const failures: string[] = []
    store.sync.on('sync:failed', (e) => failures.push(e.error.code))
    expect(() => store.setState({ when: new Map([[1, 2]]) })).not.toThrow()
    await store.sync.ready
    store.sync.isDirty()
    expect(failures).toEqual(['BAD_REQUEST'])
    expect(store.sync.pendingOperations()).toEqual([])
  })

  it('requires a document name', () => {
    expect(() => createStore<{ a: number }>()(sync(() => ({ a: 1 }), { name: '' }))).toThrow(ZyncError)
  })
})

describe('status and isDirty from the first moment', () => {
  const make = (autoConnect: boolean) => {
    const store = createStore<{ n: number }>()(sync((): { n: number } => ({ n: 0 }), { name: `first-${autoConnect}`, storage: 'memory', autoConnect, url: 'http://127.0.0.1:1' }))
    cleanups.push(() => store.sync.destroy())
    return store
  }

  it("a store that will connect says 'connecting' before it is ready, not 'offline' (which UIs show as a banner); one that will not says 'offline'", () => {
    expect(make(true).sync.status()).toMatchObject({ connection: 'connecting', ready: false })
    const idle = make(false)
    expect(idle.sync.status().connection).toBe('offline')
    idle.sync.connect()
    expect(idle.sync.status().connection).toBe('connecting')
  })

  it('isDirty() sees a change not yet captured without notifying anyone (React calls it while rendering)', async () => {
    const store = make(false)
    await store.sync.ready
    let notified = 0
    store.sync.subscribe(() => notified++)
    expect(store.sync.isDirty()).toBe(false)
    store.setState({ n: 1 })
    expect(store.sync.isDirty()).toBe(true)
    expect(notified).toBe(0)
    await waitFor(() => notified > 0)
    expect(store.sync.isDirty()).toBe(true)
    // A set that changes nothing syncable is not dirty.
    const clean = make(false)
    await clean.sync.ready
    clean.setState({ n: 0 })
    expect(clean.sync.isDirty()).toBe(false)
  })
})

describe('evaluated during server rendering (no window, no IndexedDB, no storage option)', () => {
  it('keeps its outbox in memory and does not connect unless asked; with storage chosen it connects as usual', async () => {
    const srv = await startServer()
    cleanups.push(() => srv.close())
    let connections = 0
    srv.io.on('connection', () => connections++)
    const idb = globalThis.indexedDB
    const warnings: string[] = []
    // @ts-expect-error -- the server has none
    delete globalThis.indexedDB
    let ssr
    try {
      ssr = createStore<{ n: number }>()(sync((): { n: number } => ({ n: 0 }), { name: 'ssr', url: srv.url, onWarning: (m) => warnings.push(m) }))
    } finally {
      globalThis.indexedDB = idb
    }
    cleanups.push(() => ssr.sync.destroy())
    await ssr.sync.ready
    await new Promise((r) => setTimeout(r, 300))
    expect(connections).toBe(0)
    expect(ssr.sync.status().connection).toBe('offline')
    expect(warnings.join()).toMatch(/server rendering\?\): the outbox lives in memory and the store does not connect/)
    // A Node client that chose its storage connects.
    const node = createStore<{ n: number }>()(sync((): { n: number } => ({ n: 0 }), { name: 'ssr', url: srv.url, storage: 'memory' }))
    cleanups.push(() => node.sync.destroy())
    await waitFor(() => node.sync.status().connection === 'online')
    expect(connections).toBe(1)
  })
})

describe('options a plain-JavaScript caller gets wrong fail at once, typed, naming the option', () => {
  const attempt = (o: Record<string, unknown>) => {
    try {
      createStore<{ t: string }>()(sync(() => ({ t: '' }), { name: 'opts', storage: 'memory', autoConnect: false, url: 'http://127.0.0.1:1', ...o } as never))
    } catch (err) {
      return err
    }
    return undefined
  }
  it.each([
    [{ name: 'board 42' }, 'name must be 1 to 256 letters, digits and _ . : @ / -'],
    [{ name: 'x'.repeat(257) }, 'name must be 1 to 256'],
    [{ name: '__proto__' }, 'name must be'],
    [{ url: 4000 }, 'url must start with http://'],
    [{ url: '127.0.0.1:4000' }, 'url must start with http://'],
    [{ url: ['http://127.0.0.1:1', 'localhost:2'] }, '"localhost:2"'],
    [{ storage: 'localstorage' }, "storage must be 'indexeddb', 'memory' or an OutboxStorage"],
    [{ batchSize: 0 }, 'batchSize must be a positive integer'],
    [{ batchSize: 'big' }, 'batchSize must be a positive integer'],
    [{ ackTimeout: -1 }, 'ackTimeout must be a positive integer'],
    [{ conflicts: { default: 'nope' } }, 'conflicts.default: unknown policy "nope"'],
    [{ conflicts: { paths: { t: 'lwww' } } }, 'conflicts.paths["t"]: unknown policy "lwww"'],
    [{ conflicts: { paths: ['t'] } }, 'conflicts.paths must be an object'],
    [{ conflicts: { paths: { 'cards..title': 'manual' } } }, 'segments are names or *'],
    [{ conflicts: { paths: { 'cards.**': 'manual' } } }, 'segments are names or *'],
    [{ conflicts: { paths: { '': 'manual' } } }, 'segments are names or *'],
    [{ conflicts: { paths: { 'cards.*.meta.color': 'manual' } } }, "set the policy on 'cards.*.meta'"],
    [{ conflicts: { idKey: 5 } }, 'conflicts.idKey must be a property name or false (got 5)'],
    [{ priority: 5 }, 'priority must be a function (got 5)'],
    [{ partialize: 'x' }, 'partialize must be a function'],
    [{ crossTab: 'no' }, 'crossTab must be a boolean (got "no")'],
    [{ autoConnect: 'false' }, 'autoConnect must be a boolean'],
    [{ conflicts: 'lww' }, 'conflicts must be an object (got "lww")'],
    [{ user: 'bob' }, 'user must be an object'],
    [{ user: { name: 'Bob' } }, 'user.id must be a string'],
    [{ auth: 5 }, 'auth must be an object or a function'],
    [{ backoff: { base: -1 } }, 'base must be a number of 0 or more (got -1)'],
    [{ presence: { ttl: 'x' } }, 'ttl must be a number of 0 or more'],
    [{ clientId: 123 }, 'clientId must be a string'],
    [{ clientId: '__proto__' }, 'clientId must be 1 to 128 characters'],
    [{ clientId: 'x'.repeat(129) }, 'clientId must be 1 to 128 characters'],
    [{ conflicts: { idKey: '' } }, 'conflicts.idKey must be a property name or false'],
  ])('%j', (o, message) => {
    const err = attempt(o)
    expect(err).toBeInstanceOf(ZyncError)
    expect((err as ZyncError).code).toBe('BAD_REQUEST')
    expect((err as ZyncError).message).toContain(message)
  })
  it('refuses sync() applied twice to one store (every op would be sent twice)', () => {
    const opts = { name: 'twice', storage: 'memory' as const, autoConnect: false, url: 'http://127.0.0.1:1' }
    const make = () => createStore<{ t: string }>()(sync(sync(() => ({ t: '' }), opts) as never, opts))
    expect(make).toThrow(ZyncError)
    expect(make).toThrow('the store is synced already (sync() applied twice)')
  })
  it('a conflicts.paths pattern naming no key of the state is a type error and a warning (the typo settled every conflict by LWW, silently)', () => {
    type S = { cards: Record<string, { title: string }>; filter: string; clear: () => void }
    const warnings: string[] = []
    createStore<S>()(
      sync((set) => ({ cards: {}, filter: 'all', clear: () => set({ cards: {} }) }), {
        name: 'typo',
        storage: 'memory',
        autoConnect: false,
        url: 'http://127.0.0.1:1',
        onWarning: (m) => warnings.push(m),
        conflicts: {
          paths: {
            'cards.*.title': 'manual',
            filter: 'lww',
            '*.x': 'lww',
            // @ts-expect-error -- 'card' is not a key of S
            'card.*.title': 'manual',
          },
        },
      }),
    )
    expect(warnings).toEqual(['[zync] conflicts.paths["card.*.title"]: "card" is not a key of the synced state (cards, filter), so the pattern matches nothing until the state has that key. A typo?'])
  })
  it('a pattern that is refused is not also warned about as a typo (conflict trial)', () => {
    type S = { cards: Record<string, { title: string }> }
    const warnings: string[] = []
    const make = () =>
      createStore<S>()(
        sync((): S => ({ cards: {} }), {
          name: 'empty-pattern',
          storage: 'memory',
          autoConnect: false,
          url: 'http://127.0.0.1:1',
          onWarning: (m) => warnings.push(m),
          // @ts-expect-error -- '' is not a path of S
          conflicts: { paths: { '': 'manual' } },
        }),
      )
    expect(make).toThrow(expect.objectContaining({ code: 'BAD_REQUEST' }))
    expect(warnings).toEqual([])
  })
  it("a value its path's policy cannot merge (a string under 'counter', a number under 'set') warns once per path", async () => {
    type S = { cards: Record<string, { votes: unknown; tags: unknown }> }
    const warnings: string[] = []
    const store = createStore<S>()(
      sync((): S => ({ cards: {} }), {
        name: 'mismatch',
        storage: 'memory',
        autoConnect: false,
        url: 'http://127.0.0.1:1',
        onWarning: (m) => warnings.push(m),
        conflicts: { paths: { 'cards.*.votes': 'counter', 'cards.*.tags': 'set' } },
      }),
    )
    cleanups.push(() => store.sync.destroy())
    await store.sync.ready
    store.setState({ cards: { c1: { votes: 1, tags: ['a'] } } })
    await waitFor(() => store.sync.status().pending > 0)
    // Each edit captured on its own (edits in one turn are captured together, as their final value).
    const edit = async (votes: unknown, tags: unknown) => {
      store.setState((s) => ({ cards: { c1: { ...s.cards.c1!, votes, tags } } }))
      await new Promise((r) => setTimeout(r, 0))
    }
    await edit(2, ['a', 'b'])
    await edit('many', ['a'])
    await edit('lots', 3)
    await edit(4, 5)
    await store.sync.flush({ timeout: 50 }).catch(() => {})
    expect(warnings).toEqual([
      "[zync] cards.c1.votes has the 'counter' policy but its value is string (a number expected): concurrent writes of it do not merge as a counter",
      "[zync] cards.c1.tags has the 'set' policy but its value is number (an array of primitives expected): concurrent writes of it do not merge as a set",
    ])
  })
  it('accepts what the docs show', () => {
    expect(attempt({ name: 'team:7/board_42.v2@eu-1' })).toBeUndefined()
    expect(attempt({ url: ['https://a.example', 'wss://b.example', '/'], batchSize: 50, conflicts: { default: 'lww', paths: { 'cards.*.title': 'manual', 'cards.*.votes': 'counter', tags: 'set', 'cards.*': (a: { remote: unknown }) => a.remote } } })).toBeUndefined()
  })
})

describe('flush({ timeout }) in a Node script', () => {
  it('keeps the process alive until it rejects with TIMEOUT (an unreachable server), instead of the process ending mid-await', async () => {
    const { execFile } = await import('node:child_process')
    const { writeFileSync, mkdirSync, mkdtempSync } = await import('node:fs')
    const { join, resolve } = await import('node:path')
    // Inside the repository, so that the script's imports resolve from its node_modules.
    mkdirSync(resolve('node_modules/.cache'), { recursive: true })
    const file = join(mkdtempSync(resolve('node_modules/.cache/zync-flush-')), 'script.mts')
    writeFileSync(
      file,
      `import { createStore } from 'zustand/vanilla'
import { sync } from ${JSON.stringify(resolve('src/index.ts'))}
const store = createStore()(sync(() => ({ t: '' }), { name: 'flush-script', url: 'http://127.0.0.1:1', storage: 'memory', onWarning: () => {} }))
store.setState({ t: 'x' })
try { await store.sync.flush({ timeout: 300 }); console.log('resolved') } catch (e) { console.log(e.code) }
await store.sync.destroy()
`,
    )
    const out = await new Promise<{ code: number | null; stdout: string }>((done) => {
      const child = execFile(process.execPath, ['--import', 'tsx', file], { cwd: process.cwd(), timeout: 20_000 }, (_err, stdout) => done({ code: child.exitCode, stdout }))
    })
    expect(out).toEqual({ code: 0, stdout: 'TIMEOUT\n' })
  }, 30_000)
})

describe('errors in JSON', () => {
  it('status() with an error keeps the error message through JSON.stringify', async () => {
    const store = createStore<{ t: string }>()(sync(() => ({ t: '' }), { name: 'json-status', storage: 'memory', url: 'http://127.0.0.1:1', onWarning: () => {} }))
    cleanups.push(() => store.sync.destroy())
    await waitFor(() => store.sync.status().error !== undefined, 5000, 'a connection error')
    const { error } = JSON.parse(JSON.stringify(store.sync.status())) as { error: Record<string, unknown> }
    expect(error).toMatchObject({ name: 'ZyncError', code: store.sync.status().error!.code, retryable: true })
    expect(error.message).toMatch(/^\[zync\] cannot connect to http:\/\/127\.0\.0\.1:1/)
  })
})

describe('stores in one realm', () => {
  it('with a memory outbox they do not mirror each other (no other store can send what they hold), unless crossTab says so', async () => {
    const make = (o: { crossTab?: boolean } = {}) => {
      const s = createStore<{ t: string }>()(sync(() => ({ t: '' }), { name: 'realm', storage: 'memory', autoConnect: false, url: 'http://127.0.0.1:1', ...o }))
      cleanups.push(() => s.sync.destroy())
      return s
    }
    expect(typeof BroadcastChannel).toBe('function')
    const a = make()
    const b = make()
    await Promise.all([a.sync.ready, b.sync.ready])
    a.setState({ t: 'from a' })
    b.setState({ t: 'from b' })
    await new Promise((r) => setTimeout(r, 100))
    expect([a.getState().t, b.getState().t]).toEqual(['from a', 'from b'])
    const c = make({ crossTab: true })
    const d = make({ crossTab: true })
    await Promise.all([c.sync.ready, d.sync.ready])
    c.setState({ t: 'from c' })
    await waitFor(() => d.getState().t === 'from c')
  })
})

function memoryStorage() {
  const m = new Map<string, string>()
  return { getItem: (k: string) => m.get(k) ?? null, setItem: (k: string, v: string) => void m.set(k, v), removeItem: (k: string) => void m.delete(k) }
}
