// A store dropped without destroy() is garbage: server rendering makes one per request (a store made in
// a component's state), and no effect runs there to destroy it. Its heartbeat intervals held it forever,
// ~11 KB each (a Next.js trial: 20,000 requests, +215 MB).
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { expect, it } from 'vitest'
import { createStore } from 'zustand/vanilla'
import { MemoryOutboxStorage, sync } from '../src/index'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

it('stores dropped without destroy() are collected; ones still referenced keep beating', async () => {
  const make = () => createStore<{ n: number }>()(sync(() => ({ n: 0 }), { name: 'gc', url: 'http://127.0.0.1:9', storage: 'memory', autoConnect: false, onWarning: () => {}, presence: { ttl: 200 }, tabTimeout: 3000 }))
  // Each made and dropped in a frame of its own, so no variable of this test still holds one.
  const makeDropped = async () => {
    const s = make()
    await s.sync.ready
    return new WeakRef(s)
  }
  const dropped: Array<WeakRef<object>> = []
  for (let i = 0; i < 50; i++) dropped.push(await makeDropped())
  // The one kept counts its tab heartbeats (a storage of its own), which must go on.
  let beats = 0
  const storage = new (class extends MemoryOutboxStorage {
    override async heartbeat(doc: string, owner: string, now: number): Promise<void> {
      beats++
      return super.heartbeat(doc, owner, now)
    }
  })()
  const kept = createStore<{ n: number }>()(sync(() => ({ n: 0 }), { name: 'gc', url: 'http://127.0.0.1:9', storage, autoConnect: false, onWarning: () => {}, tabTimeout: 3000 }))
  await kept.sync.ready
  const beatsAtStart = beats
  // Long enough for the intervals (presence every 100 ms, tab heartbeat every 1 s) to have run.
  await new Promise((r) => setTimeout(r, 1200))
  for (let i = 0; i < 4; i++) {
    gc()
    await new Promise((r) => setTimeout(r, 20))
  }
  expect(dropped.filter((r) => r.deref() !== undefined)).toHaveLength(0)
  await new Promise((r) => setTimeout(r, 1100))
  expect(beats).toBeGreaterThan(beatsAtStart)
  await kept.sync.destroy()
})
