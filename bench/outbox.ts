/**
 * Target 2: a burst of 5,000 local mutations persisted into the Dexie outbox, against a raw Dexie
 * bulkPut of the same rows into a table with the same schema. Both on fake-indexeddb (Node), which is
 * far slower than a browser's IndexedDB: only the ratio means something.
 */
import 'fake-indexeddb/auto'
import Dexie, { type Table } from 'dexie'
import { createStore } from 'zustand/vanilla'
import { sync } from '../src/index'
import { DexieOutboxStorage } from '../src/adapters/dexie-storage'
import type { OutboxRow, StorageBatch } from '../src/core/storage'
import { FakeSocket } from './lib/fake-socket'
import { median } from './lib/stats'
import type { Result } from './lib/report'

type Coll = Record<string, { n: number; title: string }>
type Doc = Record<string, Coll>

const COLLECTIONS = 50

/** 50 collections of `per` records: a set() copies one small collection, so the burst itself is cheap. */
function makeDoc(total: number): Doc {
  const per = Math.ceil(total / COLLECTIONS)
  const d: Doc = {}
  for (let c = 0; c < COLLECTIONS; c++) {
    const coll: Coll = {}
    for (let i = 0; i < per; i++) coll[`r${i}`] = { n: 0, title: `c${c} r${i}` }
    d[`c${c}`] = coll
  }
  return d
}

/** The zync Dexie outbox, reporting when `expect` rows are durably written. */
class Recording extends DexieOutboxStorage {
  rows: OutboxRow[] = []
  private target = Infinity
  private done: (() => void) | undefined
  waitFor(n: number): Promise<void> {
    this.target = n
    return new Promise((r) => {
      this.done = r
      if (this.rows.length >= n) r()
    })
  }
  override async write(batch: StorageBatch): Promise<void> {
    await super.write(batch)
    if (batch.put) this.rows.push(...batch.put)
    if (this.rows.length >= this.target) this.done?.()
  }
}

class RawDb extends Dexie {
  outbox!: Table<OutboxRow, string>
  constructor(name: string) {
    super(name)
    this.version(1).stores({ outbox: 'id, doc, [doc+owner], order' })
  }
}

let dbs = 0
const dbName = (p: string) => `bench-${p}-${process.pid}-${++dbs}`

async function zyncBurst(n: number): Promise<{ ms: number; withSets: number; rows: OutboxRow[] }> {
  const storage = new Recording(dbName('zync'))
  // The records are on the server (the stand-in answers the join with them), so the burst is 5,000
  // field ops on records the server has; then offline, so nothing is sent while they are written.
  const store = createStore<Doc>()(sync(() => makeDoc(n), { name: 'bench-outbox', socket: new FakeSocket(makeDoc(n)).asSocket(), storage, crossTab: false, onWarning: () => {} }))
  await store.sync.ready
  for (let i = 0; i < 200 && store.sync.status().connection !== 'online'; i++) await new Promise((r) => setTimeout(r, 5))
  if (store.sync.status().connection !== 'online') throw new Error('[bench] the stand-in server did not answer the join')
  store.sync.disconnect()
  if (store.sync.status().error) throw new Error(`[bench] the Dexie outbox did not open: ${store.sync.status().error!.message}`)
  storage.rows = []
  const written = storage.waitFor(n)
  const per = Math.ceil(n / COLLECTIONS)
  const t0 = performance.now()
  for (let i = 0; i < n; i++) {
    const c = `c${i % COLLECTIONS}`
    const r = `r${Math.floor(i / COLLECTIONS) % per}`
    store.setState((s) => ({ [c]: { ...s[c], [r]: { ...s[c]![r]!, n: i + 1 } } }))
  }
  const t1 = performance.now()
  ;(globalThis as { __mark?: (t: number) => void }).__mark?.(t1)
  await written
  const t2 = performance.now()
  await new Promise((r) => setImmediate(r))
  if (store.sync.status().pending !== n) throw new Error(`[bench] expected ${n} pending ops, got ${store.sync.status().pending}`)
  await store.sync.destroy()
  return { ms: t2 - t1, withSets: t2 - t0, rows: storage.rows }
}

async function rawBulkPut(rows: OutboxRow[]): Promise<number> {
  const db = new RawDb(dbName('raw'))
  await db.open()
  const copy = rows.map((r) => ({ ...r, id: `${r.id}` }))
  const t0 = performance.now()
  await db.transaction('rw', db.outbox, () => db.outbox.bulkPut(copy))
  const ms = performance.now() - t0
  db.close()
  return ms
}

export async function runOutbox(smoke: boolean): Promise<Result[]> {
  const n = smoke ? 500 : 5000
  const reps = smoke ? 2 : 17
  const ours: number[] = []
  const withSets: number[] = []
  const raw: number[] = []
  const ratios: number[] = []
  let rows: OutboxRow[] = []
  for (let r = 0; r < reps; r++) {
    // Each pair runs back to back (the first is a warm-up), in alternating order so neither side always
    // inherits the other's garbage: the ratio is the median of the pairs' ratios, which holds up when
    // other work on the machine comes and goes during the run.
    let z: Awaited<ReturnType<typeof zyncBurst>>
    let b: number
    if (r % 2 === 1 && rows.length > 0) {
      b = await rawBulkPut(rows)
      z = await zyncBurst(n)
    } else {
      z = await zyncBurst(n)
      b = await rawBulkPut(z.rows)
    }
    rows = z.rows
    if (r === 0) continue
    ours.push(z.ms)
    withSets.push(z.withSets)
    raw.push(b)
    ratios.push(z.ms / b)
  }
  const zm = median(ours)
  const bm = median(raw)
  const ratio = median(ratios)
  return [
    {
      target: '2',
      scenario: `persist a burst of ${n.toLocaleString('en-US')} mutations into the outbox (fake-indexeddb)`,
      zync: { median: zm, unit: 'ms' },
      baseline: { name: 'raw Dexie bulkPut of the same rows', median: bm, unit: 'ms' },
      ratio,
      checks: [{ label: 'median ratio', value: ratio, limit: 1.5, cmp: '<=', unit: 'x' }],
      note: `From the end of the burst of set() calls to the write resolving (capture, ops, one transaction). Including the ${n.toLocaleString('en-US')} set() calls themselves: ${median(withSets).toFixed(1)} ms. Medians of ${ours.length} back-to-back pairs; the ratio is the median of the pairs' ratios.`,
    },
  ]
}
