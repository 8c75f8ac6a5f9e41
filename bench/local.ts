/**
 * Target 1, in-process: the cost of a local edit and of applying a remote op on a 1,000-entity store.
 * The synced store is the real middleware and engine; its transport is a FakeSocket and its outbox
 * storage keeps nothing (IndexedDB is excluded here; target 2 measures it).
 */
import { createStore, type StoreApi } from 'zustand/vanilla'
import { applyPatches, enablePatches, freeze, setAutoFreeze } from 'immer'
import { sync } from '../src/index'
import type { WireChange } from '../src/core/wire'
import { FakeSocket } from './lib/fake-socket'
import { NullStorage } from './lib/null-storage'
import { compare, type TaskDef } from './lib/rounds'
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

export async function runLocal(smoke: boolean): Promise<Result[]> {
  const o = smoke ? { rounds: 2, time: 80, warmupTime: 20 } : { rounds: 6, time: 3000, warmupTime: 300 }
  const edit = (name: string, store: StoreApi<Doc>, whole: boolean): TaskDef => {
    let i = 0
    return {
      name,
      fn: async () => {
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
      },
    }
  }

  // Local edit: set() alone, then set() plus the capture it triggers (diff, op, outbox enqueue).
  const bareA = bareStore()
  const syncedA = await syncedStore(new FakeSocket(), false)
  const setOnly = await compare([edit('bare', bareA, false), edit('synced', syncedA, false)], o)
  const bareB = bareStore()
  const syncedB = await syncedStore(new FakeSocket(), false)
  const whole = await compare([edit('bare', bareB, true), edit('synced', syncedB, true)], o)

  // Remote op: a broadcast change delivered to a joined store (confirmed state = the same 1,000
  // entities) vs the same update spread by hand, and immer's applyPatches on frozen state.
  const remoteSocket = new FakeSocket({ items: makeItems() })
  const syncedR = await syncedStore(remoteSocket, true)
  await new Promise((r) => setTimeout(r, 10)) // join
  if (syncedR.sync.status().connection !== 'online') throw new Error('[bench] fake socket did not join')
  let seq = 0
  const remoteTask: TaskDef = {
    name: 'zync',
    fn: () => {
      seq++
      const k = `e${seq % ENTITIES}`
      // What socket.io hands the client for one broadcast change (core/wire.ts): applied, lww, set.
      const change: WireChange = [seq, `op${seq}`, 'peer', seq, `${Date.now().toString(36)}.0`, ['items', k, 'n'], 0, 0, seq]
      remoteSocket.deliver({ doc: 'bench-local', c: [change] })
    },
  }
  const bareR = bareStore()
  let j = 0
  const spreadTask: TaskDef = {
    name: 'spread',
    fn: () => {
      j++
      const k = `e${j % ENTITIES}`
      bareR.setState((s) => bump(s, k, j))
    },
  }
  enablePatches()
  setAutoFreeze(true)
  let frozen = freeze({ items: makeItems() }, true) as Doc
  let m = 0
  const immerTask: TaskDef = {
    name: 'immer',
    fn: () => {
      m++
      const k = `e${m % ENTITIES}`
      frozen = applyPatches(frozen, [{ op: 'replace', path: ['items', k, 'n'], value: m }])
    },
  }
  const remote = await compare([remoteTask, spreadTask, immerTask], o)
  if (syncedR.getState().items[`e${seq % ENTITIES}`]!.n !== seq) throw new Error('[bench] remote ops were not applied')
  for (const s of [syncedA, syncedB, syncedR]) await s.sync.destroy()

  const fig = (x: { median: number; p99: number }) => ({ median: x.median, p99: x.p99, unit: 'µs' })
  const r1a = setOnly.synced!.median / setOnly.bare!.median
  const r1b = whole.synced!.median / whole.bare!.median
  const r1c = remote.zync!.median / remote.spread!.median
  return [
    {
      target: '1a',
      scenario: 'local edit, 1,000 entities: synchronous set()',
      zync: fig(setOnly.synced!),
      baseline: { name: 'same store without sync', ...fig(setOnly.bare!) },
      ratio: r1a,
      checks: [{ label: 'p50 ratio', value: r1a, limit: 1.3, cmp: '<=', unit: 'x' }],
    },
    {
      target: '1b',
      scenario: 'local edit: set() + patch capture + enqueue (IndexedDB excluded)',
      zync: fig(whole.synced!),
      baseline: { name: 'bare zustand set()', ...fig(whole.bare!) },
      ratio: r1b,
      checks: [{ label: 'p50 ratio', value: r1b, limit: 4, cmp: '<=', unit: 'x' }],
    },
    {
      target: '1c',
      scenario: 'apply one remote op to that store',
      zync: fig(remote.zync!),
      baseline: { name: 'hand-written spread', ...fig(remote.spread!) },
      ratio: r1c,
      checks: [{ label: 'p50 ratio', value: r1c, limit: 4, cmp: '<=', unit: 'x' }],
      extra: [{ name: "immer applyPatches on frozen state (kept off zync's path)", value: `${remote.immer!.median.toFixed(1)} µs, ${(remote.immer!.median / remote.spread!.median).toFixed(1)}x the spread` }],
    },
  ]
}
