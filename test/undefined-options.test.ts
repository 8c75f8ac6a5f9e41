// Options given as `undefined` mean their defaults, as their types say (`?: T | undefined`): with
// exactOptionalPropertyTypes an app forwarding a maybe-undefined value needed a cast (a typings trial).
import { afterEach, expect, it } from 'vitest'
import { createStore } from 'zustand/vanilla'
import { createSyncServer, type SyncServer, type SyncServerOptions } from '../src/server/index'
import { sync, type SyncOptions } from '../src/index'

let server: SyncServer | undefined
afterEach(async () => {
  await server?.close()
  server = undefined
})

it('a server and a store whose every option is given as undefined behave as with the defaults', async () => {
  const serverOptions: Required<SyncServerOptions> = {
    port: 0,
    host: undefined,
    storage: { kind: 'memory' },
    redis: undefined,
    authenticate: undefined,
    authorize: undefined,
    reauthorizeMs: undefined,
    cors: undefined,
    limits: undefined,
    maxDriftMs: undefined,
    rejectFutureMs: undefined,
    snapshotEvery: undefined,
    keepLog: undefined,
    unloadIdleMs: undefined,
    maxDocuments: undefined,
    presenceTtl: undefined,
    metrics: undefined,
    shutdownTimeoutMs: undefined,
    logLevel: 'silent',
    logger: undefined,
  }
  server = await createSyncServer(serverOptions)
  type S = { cards: Record<string, { title: string }> }
  const options = (url: string): Required<Omit<SyncOptions<S>, 'socket' | 'transport'>> => ({
    name: 'undefined-options',
    url,
    partialize: undefined,
    storage: 'memory',
    dbName: undefined,
    clientId: undefined,
    user: undefined,
    auth: undefined,
    conflicts: undefined,
    priority: undefined,
    backoff: undefined,
    batchSize: undefined,
    ackTimeout: undefined,
    presence: undefined,
    crossTab: undefined,
    autoConnect: undefined,
    tabTimeout: undefined,
    watchNetwork: undefined,
    now: undefined,
    onWarning: undefined,
  })
  const a = createStore<S>()(sync(() => ({ cards: {} }), options(server.url)))
  const b = createStore<S>()(sync(() => ({ cards: {} }), options(server.url)))
  a.setState({ cards: { c1: { title: 'hello' } } })
  await a.sync.flush({ timeout: 5000 })
  await expect.poll(() => b.getState().cards.c1?.title, { timeout: 5000 }).toBe('hello')
  expect(a.sync.status().error).toBeUndefined()
  await Promise.all([a.sync.destroy(), b.sync.destroy()])
})
