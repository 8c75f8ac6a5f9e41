/**
 * Target 1, in-process: the cost of a local edit and of applying a remote op on a 1,000-entity store.
 * The synced store is the real middleware and engine; its transport is a FakeSocket and its outbox
 * storage keeps nothing (IndexedDB is excluded here; target 2 measures it).
 */
import { Bench } from 'tinybench'
import { createStore, type StoreApi } from 'zustand/vanilla'
import { applyPatches, enablePatches, freeze, setAutoFreeze } from 'immer'
import { sync } from '../src/index'
import type { Change } from '../src/core/protocol'
import { encodeHlc } from '../src/core/hlc'
import { FakeSocket } from './lib/fake-socket'
import { NullStorage } from './lib/null-storage'
import { median, p99 } from './lib/stats'
import type { Result } from './lib/report'

export interface Item {
  id: string
  title: string
  done: boolean
  n: number
  tags: string[]
}

export interface Doc {
  items: Record<string, Item>
}

export const ENTITIES = 1000

export function makeItems(n = ENTITIES): Record<string, Item> {
  const items: Record<string, Item> = {}
  for (let i = 0; i < n; i++) items[`e${i}`] = { id: `e${i}`, title: `Item ${i}`, done: false, n: 0, tags: ['a', 'b'] }
  return items
}

/** The hand-written update every scenario makes: one field of one entity, spread by hand. */
export function bump(s: Doc, k: string, v: number): Doc {
  return { items: { ...s.items, [k]: { ...s.items[k]!, n: v } } }
}

export function bareStore(): StoreApi<Doc> {
  return createStore<Doc>()(() => ({ items: makeItems() }))
}

export async function syncedStore(socket: FakeSocket, autoConnect: boolean) {
  const store = createStore<Doc>()(
    sync(() => ({ items: makeItems() }), { name: 'bench-local', socket: socket.asSocket(), storage: new NullStorage(), crossTab: false, autoConnect, onWarning: () => {} }),
  )
  await store.sync.ready
  return store
}

interface Sampled {
  samples: number[]
}

function stats(s: Sampled, scale = 1000): { median: number; p99: number } {
  // tinybench reports ms; the table shows µs.
  return { median: median(s.samples) * scale, p99: p99(s.samples) * scale }
}

export async function runLocal(smoke: boolean): Promise<Result[]> {
  const time = smoke ? 60 : 1500
  const warmupTime = smoke ? 20 : 300
  const bench = new Bench({ time, warmupTime, retainSamples: true, throws: true })
  const timed = (label: string, store: StoreApi<Doc>, whole: boolean) => {
    let i = 0
    bench.add(label, async () => {
      const k = `e${i % ENTITIES}`
      i++
      const t0 = performance.now()
      store.setState((s) => bump(s, k, i))
      if (whole) {
        // The engine diffs in a microtask queued by set(): this await runs it (same await on both sides).
        await Promise.resolve()
        return { overriddenDuration: performance.now() - t0 }
      }
      const t = performance.now() - t0
      await Promise.resolve()
      return { overriddenDuration: t }
    })
  }

  // Local edit: set() alone, then set() plus the capture it triggers.
  const bareA = bareStore()
  const syncedA = await syncedStore(new FakeSocket(), false)
  timed('bare set()', bareA, false)
  timed('synced set()', syncedA, false)
  const bareB = bareStore()
  const syncedB = await syncedStore(new FakeSocket(), false)
  timed('bare set() + microtask', bareB, true)
  timed('synced set() + capture', syncedB, true)

  // Remote op: a broadcast change delivered to the store vs the same update by hand.
  const remoteSocket = new FakeSocket()
  const syncedR = await syncedStore(remoteSocket, true)
  await new Promise((r) => setTimeout(r, 10)) // join
  if (syncedR.sync.status().connection !== 'online') throw new Error('[bench] fake socket did not join')
  let seq = 0
  bench.add('remote op applied by zync', () => {
    seq++
    const k = `e${seq % ENTITIES}`
    const change: Change = {
      seq,
      opId: `op${seq}`,
      client: 'peer',
      n: seq,
      hlc: encodeHlc({ wall: Date.now(), counter: 0, node: 'peer' }),
      entity: `items/${k}`,
      path: ['items', k, 'n'],
      kind: 'set',
      value: seq,
      status: 'applied',
      policy: 'lww',
      at: Date.now(),
    }
    remoteSocket.deliver({ doc: 'bench-local', changes: [change] })
  })
  const bareR = bareStore()
  let j = 0
  bench.add('hand-written spread update', () => {
    j++
    const k = `e${j % ENTITIES}`
    bareR.setState((s) => bump(s, k, j))
  })
  enablePatches()
  setAutoFreeze(true)
  let frozen = freeze({ items: makeItems() }, true) as Doc
  let m = 0
  bench.add('immer applyPatches (frozen)', () => {
    m++
    const k = `e${m % ENTITIES}`
    frozen = applyPatches(frozen, [{ op: 'replace', path: ['items', k, 'n'], value: m }])
  })

  await bench.run()
  const get = (name: string) => {
    const t = bench.tasks.find((x) => x.name === name)!
    const r = t.result as unknown as { latency?: { samples?: number[] } }
    const samples = r.latency?.samples
    if (!samples?.length) throw new Error(`[bench] no samples for ${name}`)
    return stats({ samples })
  }
  if (syncedR.getState().items[`e${seq % ENTITIES}`]!.n !== seq) throw new Error('[bench] remote ops were not applied')

  const setBare = get('bare set()')
  const setSynced = get('synced set()')
  const wholeBare = get('bare set() + microtask')
  const wholeSynced = get('synced set() + capture')
  const remote = get('remote op applied by zync')
  const spread = get('hand-written spread update')
  const immer = get('immer applyPatches (frozen)')
  for (const s of [syncedA, syncedB, syncedR]) await s.sync.destroy()

  return [
    {
      target: '1a',
      scenario: 'local edit, 1,000 entities: synchronous set()',
      zync: { ...setSynced, unit: 'µs' },
      baseline: { name: 'same store without sync', ...setBare, unit: 'µs' },
      ratio: setSynced.median / setBare.median,
      checks: [{ label: 'p50 ratio', value: setSynced.median / setBare.median, limit: 1.3, cmp: '<=', unit: 'x' }],
    },
    {
      target: '1b',
      scenario: 'local edit: set() + patch capture + enqueue (IndexedDB excluded)',
      zync: { ...wholeSynced, unit: 'µs' },
      baseline: { name: 'bare zustand set()', ...wholeBare, unit: 'µs' },
      ratio: wholeSynced.median / wholeBare.median,
      checks: [{ label: 'p50 ratio', value: wholeSynced.median / wholeBare.median, limit: 4, cmp: '<=', unit: 'x' }],
    },
    {
      target: '1c',
      scenario: 'apply one remote op to the store',
      zync: { ...remote, unit: 'µs' },
      baseline: { name: 'hand-written spread', ...spread, unit: 'µs' },
      ratio: remote.median / spread.median,
      checks: [{ label: 'p50 ratio', value: remote.median / spread.median, limit: 4, cmp: '<=', unit: 'x' }],
      extra: [{ name: "immer applyPatches on frozen state (kept off zync's path)", value: `${immer.median.toFixed(1)} µs, ${(immer.median / spread.median).toFixed(1)}x the spread` }],
    },
  ]
}
