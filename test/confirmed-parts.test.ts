import { afterEach, describe, expect, it, vi } from 'vitest'
import Dexie from 'dexie'
import fc from 'fast-check'
import { joinState, splitState } from '../src/adapters/state-chunks'
import { DexieOutboxStorage, type OutboxRow } from 'zync'
import { freshDb, useCleanup, waitFor } from './helpers'

const { cleanups, server, board } = useCleanup()
afterEach(() => vi.restoreAllMocks())

type Meta = NonNullable<Parameters<DexieOutboxStorage['write']>[0]['meta']>

/** A confirmed state of `n` records in one collection, one nested collection and a few odd keys. */
function bigState(n: number, tag: string): Record<string, unknown> {
  const cards: Record<string, unknown> = {}
  for (let i = 0; i < n; i++) cards[`c${i}`] = { title: `${tag} card ${i}`, votes: i, tags: ['a', 'b'] }
  const lanes: Record<string, unknown> = {}
  for (let i = 0; i < 1200; i++) lanes[`l${i}`] = { name: `${tag} lane ${i}` }
  // '__proto__' is a key like any other here: it must come back as an own key, not as a prototype.
  const odd = JSON.parse(`{"__proto__": {"polluted": "${tag}"}, "constructor": 1}`) as Record<string, unknown>
  return { filter: 'all', cards, board: { title: tag, lanes, order: ['l1', 'l0'] }, odd, list: [1, 2, 3] }
}

const meta = (doc: string, confirmed: Record<string, unknown>, seq: number): Meta => ({ doc, confirmed, vv: {}, seq, savedAt: Date.now() })

/** Records the serialized size of every value IndexedDB is asked to clone (put) while `run` runs. */
async function putSizes(run: () => Promise<void>): Promise<number[]> {
  const sizes: number[] = []
  const put = IDBObjectStore.prototype.put
  vi.spyOn(IDBObjectStore.prototype, 'put').mockImplementation(function (this: IDBObjectStore, value: unknown, key?: IDBValidKey) {
    sizes.push(JSON.stringify(value).length)
    return put.call(this, value, key)
  })
  await run()
  vi.restoreAllMocks()
  return sizes
}

function open(): { storage: DexieOutboxStorage; dbName: string } {
  const dbName = freshDb()
  const storage = new DexieOutboxStorage(dbName)
  cleanups.push(() => storage.close())
  return { storage, dbName }
}

describe('a big confirmed state in IndexedDB', () => {
  it('is cloned part by part, not in one put (one put of a 10,000-record state was a 50-95 ms task in Chromium), and loads back whole, in order', async () => {
    const { storage } = open()
    await storage.open()
    const state = bigState(5000, 'one')
    const total = JSON.stringify(state).length
    const sizes = await putSizes(() => storage.write({ meta: meta('d', state, 7) }))
    expect(sizes.length).toBeGreaterThan(10)
    // Each part is at most a few percent of the state: 500 entries.
    expect(Math.max(...sizes)).toBeLessThan(total / 8)
    const loaded = await storage.load('d')
    expect(loaded.meta!.seq).toBe(7)
    expect(JSON.stringify(loaded.meta!.confirmed)).toBe(JSON.stringify(state))
    const odd = loaded.meta!.confirmed.odd as Record<string, unknown>
    expect(Object.getPrototypeOf(odd)).toBe(Object.prototype)
    expect(Object.hasOwn(odd, '__proto__')).toBe(true)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('a write that fails keeps the state written before, whole; a smaller state later leaves no parts behind', async () => {
    const { storage, dbName } = open()
    await storage.open()
    const countParts = async () => {
      const raw = new Dexie(dbName)
      await raw.open()
      const n = await raw.table('parts').count()
      raw.close()
      return n
    }
    const first = bigState(4000, 'first')
    await storage.write({ meta: meta('d', first, 1) })
    const partsOfFirst = await countParts()
    // A row IndexedDB cannot clone fails the transaction after the new state's parts were put in it.
    const bad = { id: 'x', doc: 'd', owner: 'o', order: 1, lane: 'normal', entity: 'cards.x', op: { fn: () => {} }, createdAt: 0, attempts: 0, nextAt: 0 } as unknown as OutboxRow
    await expect(storage.write({ put: [bad], meta: meta('d', bigState(6000, 'second'), 2) })).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' })
    let loaded = await storage.load('d')
    expect(loaded.meta!.seq).toBe(1)
    expect(JSON.stringify(loaded.meta!.confirmed)).toBe(JSON.stringify(first))
    expect(loaded.rows).toEqual([])

    const third = bigState(1000, 'third')
    await storage.write({ meta: meta('d', third, 3) })
    loaded = await storage.load('d')
    expect(JSON.stringify(loaded.meta!.confirmed)).toBe(JSON.stringify(third))
    // Fewer parts than the first state had: the first state's last parts are gone.
    const partsOfThird = await countParts()
    expect(partsOfThird).toBeGreaterThan(1)
    expect(partsOfThird).toBeLessThan(partsOfFirst)
    await storage.write({ meta: meta('d', { filter: 'small' }, 4) })
    expect((await storage.load('d')).meta!.confirmed).toEqual({ filter: 'small' })
    expect(await countParts()).toBe(0)
  })

  it('a store reloaded offline starts from a confirmed state of 3,000 records written in parts', async () => {
    const s = await server()
    const dbName = freshDb()
    const a = board({ url: s.url, dbName })
    await waitFor(() => a.sync.status().connection === 'online')
    const cards: Record<string, { title: string; votes: number }> = {}
    for (let i = 0; i < 3000; i++) cards[`k${i}`] = { title: `card ${i}`, votes: i % 7 }
    a.setState({ cards })
    await a.sync.flush()
    await a.sync.destroy()
    const b = board({ url: s.url, dbName, autoConnect: false })
    await b.sync.ready
    expect(b.getState().cards).toEqual(cards)
    expect(Object.keys(b.getState().cards)).toEqual(Object.keys(cards))
    expect(b.sync.status().pending).toBe(0)
  })
})

describe('splitState and joinState', () => {
  it('join(split(state)) gives the state back, keys in order, for any JSON state and part size', () => {
    const key = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'a', 'b', '0', '1'), fc.string({ maxLength: 4 }))
    const json = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small' }, fc.integer(), fc.string({ maxLength: 3 }), fc.constant(null), fc.array(tie('value'), { maxLength: 3 }), tie('object')),
      object: fc.dictionary(key, tie('value'), { maxKeys: 12 }),
    }))
    fc.assert(
      fc.property(json.object as fc.Arbitrary<Record<string, unknown>>, fc.integer({ min: 1, max: 6 }), (state, max) => {
        const parts = splitState(state, max)
        const back = joinState(parts)
        expect(JSON.stringify(back)).toBe(JSON.stringify(state))
        expect(back).toEqual(state)
        // Split only where a container has more entries than `max`.
        if (Object.keys(state).length > max) expect(parts.length).toBeGreaterThan(1)
        for (const p of parts) expect(Object.keys(p.entries).length).toBeLessThanOrEqual(max)
      }),
      { numRuns: 300 },
    )
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })
})
