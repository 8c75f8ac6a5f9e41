/**
 * Targets 3 to 7: network paths. Each server runs in its own process (lib/child.ts); clients run in
 * this one. zync clients keep their outbox in memory (no IndexedDB in Node).
 */
import type { Socket } from 'socket.io-client'
import * as Y from 'yjs'
import { createStore } from 'zustand/vanilla'
import { withServers, type BenchServer } from './lib/child'
import { closeYjs, sampleOp, smallDoc, socketClient, yjsClient, zyncClient, type YClient, type ZStore } from './lib/clients'
import { median, p99, sleep, until } from './lib/stats'
import type { Result } from './lib/report'
import { EVENTS, PROTOCOL_VERSION, type Op } from '../src/core/protocol'
import { encodeHlc } from '../src/core/hlc'
import { encodeOpsRequest } from '../src/core/wire'

let docs = 0
const docName = (p: string) => `${p}-${process.pid}-${++docs}`

function bumpStore(store: ZStore, k: string, v: number): void {
  store.setState((s) => ({ items: { ...s.items, [k]: { ...s.items[k]!, n: v } } }))
}

/** Resolves on the next 'sync:acked' of this store. */
function nextAck(store: ZStore): Promise<void> {
  return new Promise((resolve) => {
    const off = store.sync.on('sync:acked', () => {
      off()
      resolve()
    })
  })
}

async function bareRtt(s: Socket, n: number): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const payload = { doc: 'd', ops: [sampleOp(i)] }
    const t0 = performance.now()
    await s.timeout(10_000).emitWithAck('op', payload)
    out.push(performance.now() - t0)
  }
  return out
}

async function zyncRtt(store: ZStore, n: number, offset: number): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const acked = nextAck(store)
    const t0 = performance.now()
    bumpStore(store, `e${i % 100}`, offset + i + 1)
    await acked
    out.push(performance.now() - t0)
  }
  return out
}

/** Target 3: local set to durable server ack and back vs a bare socket.io emit with ack. */
export async function runRtt(smoke: boolean): Promise<Result[]> {
  const n = smoke ? 50 : 1000
  const rounds = smoke ? 1 : 5
  return withServers([['socketio'], ['zync', 'memory'], ['zync', 'sqlite']], async ([bareSrv, memSrv, sqlSrv]) => {
    const bare = await socketClient(bareSrv.url)
    const mem = await zyncClient(memSrv.url, docName('rtt'))
    const sql = await zyncClient(sqlSrv.url, docName('rtt'))
    // Steady state: each side first makes WARM_TRIPS trips (the servers are fresh processes, and zync runs
    // far more code per trip than a bare emit, so its code takes longer to be optimized by the JIT). The
    // first COLD of those are reported beside the result.
    const warm = smoke ? 10 : WARM_TRIPS
    const coldB = await bareRtt(bare, warm)
    const coldM = await zyncRtt(mem, warm, 1e6)
    await zyncRtt(sql, warm, 1e6)
    const b: number[] = []
    const m: number[] = []
    const q: number[] = []
    for (let r = 0; r < rounds; r++) {
      b.push(...(await bareRtt(bare, n / rounds)))
      m.push(...(await zyncRtt(mem, n / rounds, r * n)))
      q.push(...(await zyncRtt(sql, n / rounds, r * n)))
    }
    bare.disconnect()
    await mem.sync.destroy()
    await sql.sync.destroy()
    const ratio = median(m) / median(b)
    return [
      {
        target: '3',
        scenario: 'local set to durable server ack and back (memory storage)',
        zync: { median: median(m), p99: p99(m), unit: 'ms' },
        baseline: { name: 'bare socket.io emit with ack', median: median(b), p99: p99(b), unit: 'ms' },
        ratio,
        checks: [{ label: 'p50 ratio', value: ratio, limit: 1.5, cmp: '<=', unit: 'x' }],
        extra: [
          { name: 'same with SQLite storage', value: `p50 ${median(q).toFixed(3)} ms, p99 ${p99(q).toFixed(3)} ms, ${(median(q) / median(b)).toFixed(2)}x the bare emit` },
          coldFigure(coldM, coldB, 'bare emit'),
        ],
        note: `${n} sequential round trips per side in ${rounds} alternating rounds, after ${warm} warm-up trips per side.`,
      },
    ]
  })
}

/** Round trips (3) and writes (4) each side makes before measuring, to reach steady state. */
const WARM_TRIPS = 2000
/** The first trips of a fresh server process, reported beside the steady-state figure. */
const COLD = 200

/** How the cold figures are labelled: `what` ran first after the bench server processes started. */
const coldLabel = (what: string) => `cold: the first ${what} after the servers started (before the JIT optimized the code)`

/** The median of the first COLD warm-up samples of each side: what a freshly started server shows. */
function coldFigure(z: number[], base: number[], baseName: string): { name: string; value: string } {
  const zc = median(z.slice(0, COLD))
  const bc = median(base.slice(0, COLD))
  return { name: coldLabel(String(Math.min(COLD, z.length))), value: `zync p50 ${zc.toFixed(3)} ms, ${baseName} ${bc.toFixed(3)} ms, ${(zc / bc).toFixed(2)}x` }
}

// ---- seeding -------------------------------------------------------------------------------------

/**
 * A doc whose 100 records live on the server (written once by a seeding client), so every client
 * that joins starts from the same confirmed state, as an app's users do.
 */
async function seededDoc(url: string, prefix: string): Promise<string> {
  const doc = docName(prefix)
  const seeder = await zyncClient(url, doc, {}, () => ({ items: {} }))
  seeder.setState(smallDoc())
  await seeder.sync.flush({ timeout: 30_000 })
  await seeder.sync.destroy()
  return doc
}

const emptyDoc = () => ({ items: {} })

// ---- target 4: fan-out --------------------------------------------------------------------------

/**
 * Clients on one document, kept for the whole scenario (so the clients measured are the ones that
 * warmed up): `run(n)` times n more writes (4) or rounds (7).
 */
interface Session<T> {
  run(n: number): Promise<T[]>
  close(): Promise<void>
}

async function zyncFanout(url: string, readers: number): Promise<Session<number>> {
  const doc = await seededDoc(url, 'fanout')
  const writer = await zyncClient(url, doc, {}, emptyDoc)
  const rs: ZStore[] = []
  for (let i = 0; i < readers; i++) rs.push(await zyncClient(url, doc, {}, emptyDoc))
  await until(() => [writer, ...rs].every((s) => Object.keys(s.getState().items).length === 100), 10_000, 'readers caught up')
  return {
    run: fanoutRounds(rs.map((r) => r as unknown as Subscribable), (k, v) => bumpStore(writer, k, v)),
    close: async () => {
      await Promise.all([writer, ...rs].map((s) => s.sync.destroy()))
    },
  }
}

interface Subscribable {
  getState(): { items: Record<string, { n: number } | undefined> }
  subscribe(fn: () => void): () => void
}

/** Shared by both sides: each write, then the wait until every reader's zustand store shows its value; writes go on from one run to the next. */
function fanoutRounds(readers: Subscribable[], write: (k: string, v: number) => void): Session<number>['run'] {
  let written = 0
  return async (iterations) => {
    const out: number[] = []
    let want: { k: string; v: number } | undefined
    let left = 0
    let done: (() => void) | undefined
    const seen = new Set<number>()
    const offs = readers.map((r, i) =>
      r.subscribe(() => {
        if (!want || seen.has(i)) return
        if (r.getState().items[want.k]?.n !== want.v) return
        seen.add(i)
        if (--left === 0) done?.()
      }),
    )
    for (let it = 0; it < iterations; it++, written++) {
      const k = `e${written % 100}`
      const v = 1_000_000 + written
      seen.clear()
      left = readers.length
      want = { k, v }
      const arrived = new Promise<void>((r) => (done = r))
      const t0 = performance.now()
      write(k, v)
      await arrived
      out.push(performance.now() - t0)
      // Let acks and lazy work settle so iterations do not overlap.
      await new Promise((r) => setImmediate(r))
    }
    for (const off of offs) off()
    return out
  }
}

async function yjsFanout(port: number, readers: number): Promise<Session<number>> {
  const room = docName('yfan')
  const writer = await yjsClient(port, room)
  writer.doc.transact(() => {
    for (const [k, rec] of Object.entries(smallDoc().items)) {
      const m = new Y.Map<unknown>()
      m.set('n', rec.n)
      m.set('title', rec.title)
      writer.map.set(k, m)
    }
  })
  const rs: YClient[] = []
  for (let i = 0; i < readers; i++) rs.push(await yjsClient(port, room))
  await until(() => rs.every((r) => r.map.size === 100), 10_000, 'yjs readers synced')
  // Each reader binds its Y.Doc to a zustand store, updating only the record that changed.
  const stores = rs.map((r) => {
    const store = createStore<{ items: Record<string, { n: number; title: string }> }>()(() => ({ items: r.map.toJSON() as Record<string, { n: number; title: string }> }))
    r.map.observeDeep((events) => {
      const next = { ...store.getState().items }
      for (const e of events) {
        const k = e.path[0] as string | undefined
        if (k === undefined) continue
        next[k] = (r.map.get(k) as Y.Map<unknown>).toJSON() as { n: number; title: string }
      }
      store.setState({ items: next })
    })
    return store
  })
  return {
    run: fanoutRounds(stores, (k, v) => (writer.map.get(k) as Y.Map<unknown>).set('n', v)),
    close: async () => {
      for (const c of [writer, ...rs]) closeYjs(c)
    },
  }
}

export async function runFanout(smoke: boolean): Promise<Result[]> {
  return withServers([['zync', 'memory'], ['yjs']], async ([zsrv, ysrv]) => {
    const results: Result[] = []
    for (const readers of smoke ? [3] : [10, 50]) {
      const iterations = smoke ? 20 : readers === 10 ? 800 : 400
      // Alternate: zync, yjs, zync, yjs (two halves each), after a warm-up of each to steady state (the
      // server processes are fresh for 10 readers; with 50 they have seen the 10-reader runs). The clients
      // that warm up are the ones measured: fresh clients carry their setup's garbage (11 joins) into
      // the first hundreds of writes, which showed in the p99.
      const warm = smoke ? 5 : readers === 10 ? WARM_TRIPS : WARM_TRIPS / 4
      const zs = await zyncFanout(zsrv.url, readers)
      const ys = await yjsFanout(ysrv.port, readers)
      const zw = await zs.run(warm)
      const yw = await ys.run(warm)
      const z: number[] = []
      const y: number[] = []
      for (let half = 0; half < 2; half++) {
        z.push(...(await zs.run(iterations / 2)))
        y.push(...(await ys.run(iterations / 2)))
      }
      await zs.close()
      await ys.close()
      const ratio = median(z) / median(y)
      const checks: Result['checks'] = [{ label: 'p50 ratio', value: ratio, limit: 1, cmp: '<=', unit: 'x' }]
      if (readers === 10 || smoke) checks.push({ label: 'p99', value: p99(z), limit: 3, cmp: '<=', unit: 'ms' })
      results.push({
        target: readers === 50 ? '4b' : '4a',
        scenario: `fan-out: 1 writer, ${readers} readers, until every reader's store holds the change`,
        zync: { median: median(z), p99: p99(z), unit: 'ms' },
        baseline: { name: 'Yjs over y-websocket', median: median(y), p99: p99(y), unit: 'ms' },
        ratio,
        checks,
        ...(readers === 10 ? { extra: [coldFigure(zw, yw, 'Yjs')] } : {}),
        note: `${z.length} writes per side, after ${warm} warm-up writes per side made by the same clients (each side keeps one writer and its readers on one document for the whole scenario, and the sides take turns). All clients in one process, each server in its own. Yjs readers update a zustand store from observeDeep (the changed record only), as zync's middleware does.`,
      })
    }
    return results
  })
}

// ---- target 5: sustained throughput ------------------------------------------------------------

const COLLS = 20
const RECS = 50
const FIELDS = 20

/** 20 collections of 50 records of 20 fields: 20,000 distinct fields, each container small. */
function wideDoc(): Wide {
  const d: Wide = {}
  for (let c = 0; c < COLLS; c++) {
    const coll: Wide[string] = {}
    for (let r = 0; r < RECS; r++) {
      const rec: Record<string, number> = {}
      for (let f = 0; f < FIELDS; f++) rec[`f${f}`] = 0
      coll[`r${r}`] = rec
    }
    d[`c${c}`] = coll
  }
  return d
}

type Wide = Record<string, Record<string, Record<string, number>>>

/** The path of the i-th of 20,000 distinct fields, so no two mutations coalesce. */
function widePath(i: number): [string, string, string] {
  return [`c${i % COLLS}`, `r${Math.floor(i / COLLS) % RECS}`, `f${Math.floor(i / (COLLS * RECS)) % FIELDS}`]
}

function wideSet(store: { setState: (fn: (s: Wide) => Partial<Wide>) => void }, i: number, v: number): void {
  const [c, r, f] = widePath(i)
  store.setState((s) => ({ [c]: { ...s[c], [r]: { ...s[c]![r], [f]: v } } }))
}

/**
 * A document the server already holds as the wide doc (a seeding client writes it). Clients that start
 * from the same initial state then join it: their field writes are field ops on records the server
 * has. (A record only in a client's initial state is written whole at its first edit.)
 */
async function seededWide(url: string, prefix: string): Promise<string> {
  const doc = docName(prefix)
  const seeder = (await zyncClient(url, doc, {}, (() => ({})) as never)) as unknown as ZStore & { setState: (s: Wide) => void }
  seeder.setState(wideDoc())
  await seeder.sync.flush({ timeout: 60_000 })
  await seeder.sync.destroy()
  return doc
}

/** Producer: `n` mutations, `chunk` per macrotask, as an app streaming edits would make them. */
async function produce(n: number, chunk: number, one: (i: number) => void): Promise<void> {
  for (let i = 0; i < n; ) {
    const end = Math.min(n, i + chunk)
    for (; i < end; i++) one(i)
    await new Promise((r) => setImmediate(r))
  }
}

async function zyncThroughput(url: string, n: number): Promise<number> {
  const store = (await zyncClient(url, await seededWide(url, 'tput'), {}, wideDoc as never)) as unknown as ZStore & { setState: (fn: (s: Wide) => Partial<Wide>) => void }
  const t0 = performance.now()
  await produce(n, 100, (i) => wideSet(store, i, i + 1))
  await store.sync.flush({ timeout: 120_000 })
  const ms = performance.now() - t0
  await store.sync.destroy()
  return (n / ms) * 1000
}

async function bareThroughput(url: string, n: number): Promise<number> {
  const s = await socketClient(url)
  let acked = 0
  let done: () => void = () => {}
  const all = new Promise<void>((r) => (done = r))
  const t0 = performance.now()
  await produce(n, 100, (i) =>
    s.emit('op', { doc: 'd', ops: [sampleOp(i)] }, () => {
      if (++acked === n) done()
    }),
  )
  await all
  const ms = performance.now() - t0
  s.disconnect()
  return (n / ms) * 1000
}

/**
 * The zync server alone: a raw socket sends compact batches of 500 ops of distinct fields (the form the
 * zync client sends), four in flight, as fast as the answers come. Shows how much of target 5 is the
 * server's own work per op.
 */
async function serverAlone(url: string, n: number): Promise<number> {
  const s = await socketClient(url)
  const doc = docName('alone')
  const client = `raw${process.pid}`.padEnd(16, 'x')
  await s.timeout(10_000).emitWithAck(EVENTS.join, { v: PROTOCOL_VERSION, doc, client, since: 0 })
  let k = 0
  const batch = (size: number) => {
    const ops: Op[] = []
    for (let i = 0; i < size; i++, k++) {
      ops.push({ id: `o${process.pid}-${k}`, client, n: k + 1, hlc: encodeHlc({ wall: Date.now(), counter: 0, node: client }), op: 'replace', path: widePath(k), value: k, base: {} })
    }
    return encodeOpsRequest({ doc, ops })
  }
  const t0 = performance.now()
  const inFlight: Array<Promise<unknown>> = []
  for (let sent = 0; sent < n; sent += 500) {
    inFlight.push(s.timeout(60_000).emitWithAck(EVENTS.ops, batch(Math.min(500, n - sent))))
    if (inFlight.length >= 4) await inFlight.shift()
  }
  await Promise.all(inFlight)
  const ms = performance.now() - t0
  s.disconnect()
  return (n / ms) * 1000
}

export async function runThroughput(smoke: boolean): Promise<Result[]> {
  const n = smoke ? 1000 : 20_000
  const reps = smoke ? 1 : 3
  return withServers([['socketio'], ['zync', 'memory']], async ([bsrv, zsrv]) => {
    // Steady state, as 3, 4 and 7: two uncounted full-size runs per side first (the first is the cold figure).
    const coldB = await bareThroughput(bsrv.url, n)
    const coldZ = await zyncThroughput(zsrv.url, n)
    if (!smoke) {
      await bareThroughput(bsrv.url, n)
      await zyncThroughput(zsrv.url, n)
    }
    const z: number[] = []
    const b: number[] = []
    for (let r = 0; r < reps; r++) {
      b.push(await bareThroughput(bsrv.url, n))
      z.push(await zyncThroughput(zsrv.url, n))
    }
    const alone: number[] = []
    for (let r = 0; r < reps; r++) alone.push(await serverAlone(zsrv.url, n))
    const ratio = median(z) / median(b)
    return [
      {
        target: '5',
        scenario: 'sustained acknowledged throughput, one client',
        zync: { median: median(z), unit: 'ops/s' },
        baseline: { name: 'bare socket.io emit with ack (one op per message, pipelined)', median: median(b), unit: 'ops/s' },
        ratio,
        checks: [{ label: 'ratio', value: ratio, limit: 1, cmp: '>=', unit: 'x' }],
        extra: [
          { name: 'the zync server alone (a raw socket sending compact batches of 500, four in flight)', value: `${Math.round(median(alone)).toLocaleString('en-US')} ops/s, ${(median(alone) / median(b)).toFixed(2)}x the baseline` },
          { name: coldLabel('run'), value: `zync ${Math.round(coldZ).toLocaleString('en-US')} ops/s, bare emit ${Math.round(coldB).toLocaleString('en-US')} ops/s, ${(coldZ / coldB).toFixed(2)}x` },
        ],
        note: `${n.toLocaleString('en-US')} distinct-field mutations made 100 per macrotask, until all are acknowledged (zync batches; the bare socket sends one message per op). Median of ${reps} runs, after two uncounted runs per side.`,
      },
    ]
  })
}

// ---- target 6: offline replay -------------------------------------------------------------------

/**
 * The same ops sent one per round trip through the same client and server: online, each set() is
 * followed by waiting for its acknowledgement before the next.
 */
async function zyncOnePerTrip(url: string, n: number): Promise<number> {
  const store = (await zyncClient(url, await seededWide(url, 'trips'), {}, wideDoc as never)) as unknown as ZStore & { setState: (fn: (s: Wide) => Partial<Wide>) => void }
  const t0 = performance.now()
  for (let i = 0; i < n; i++) {
    wideSet(store, i, i + 1)
    await store.sync.flush({ timeout: 30_000 })
  }
  const ms = performance.now() - t0
  await store.sync.destroy()
  return (n / ms) * 1000
}

async function zyncReplay(url: string, n: number, batchSize?: number): Promise<number> {
  // Joined once (it holds the document), then offline for the edits.
  const store = (await zyncClient(url, await seededWide(url, 'replay'), { ...(batchSize ? { batchSize } : {}) }, wideDoc as never)) as unknown as ZStore & {
    setState: (fn: (s: Wide) => Partial<Wide>) => void
  }
  store.sync.disconnect()
  for (let i = 0; i < n; i++) wideSet(store, i, i + 1)
  await until(() => store.sync.status().pending === n, 30_000, 'offline ops persisted')
  const t0 = performance.now()
  store.sync.connect()
  await store.sync.flush({ timeout: 300_000 })
  const ms = performance.now() - t0
  await store.sync.destroy()
  return (n / ms) * 1000
}

async function bareSequential(url: string, n: number): Promise<number> {
  const s = await socketClient(url)
  const t0 = performance.now()
  for (let i = 0; i < n; i++) await s.timeout(10_000).emitWithAck('op', { doc: 'd', ops: [sampleOp(i)] })
  const ms = performance.now() - t0
  s.disconnect()
  return (n / ms) * 1000
}

export async function runReplay(smoke: boolean): Promise<Result[]> {
  const n = smoke ? 1000 : 10_000
  const reps = smoke ? 1 : 3
  return withServers([['socketio'], ['zync', 'memory']], async ([bsrv, zsrv]) => {
    // One op per round trip: the same client and server, each op acknowledged before the next is made
    // (the batching is what is compared), and beside it the floor of a bare socket.io round trip to a
    // server that does nothing.
    const oneN = smoke ? 100 : 2000
    // Steady state, as 3, 4, 5 and 7: uncounted runs of both first (the first one is the cold figure),
    // then the two alternate.
    const cold = await zyncReplay(zsrv.url, n)
    if (!smoke) {
      await zyncReplay(zsrv.url, n)
      await zyncOnePerTrip(zsrv.url, oneN / 4)
    }
    const z: number[] = []
    const one: number[] = []
    for (let r = 0; r < reps; r++) {
      z.push(await zyncReplay(zsrv.url, n))
      one.push(await zyncOnePerTrip(zsrv.url, oneN))
    }
    const zyncOne = median(one)
    // What earlier rounds compared with: batchSize 1, which still pipelines four one-op batches.
    await zyncReplay(zsrv.url, oneN / 4, 1)
    const pipelinedOne = await zyncReplay(zsrv.url, oneN, 1)
    const perTrip = await bareSequential(bsrv.url, smoke ? 200 : 2000)
    const rate = median(z)
    return [
      {
        target: '6',
        scenario: `replay ${n.toLocaleString('en-US')} offline ops until acknowledged`,
        zync: { median: rate, unit: 'ops/s' },
        baseline: { name: 'one op per round trip (zync: each set() acknowledged before the next)', median: zyncOne, unit: 'ops/s' },
        ratio: rate / zyncOne,
        checks: [
          { label: 'rate', value: rate, limit: 20_000, cmp: '>=', unit: 'ops/s' },
          { label: 'ratio', value: rate / zyncOne, limit: 10, cmp: '>=', unit: 'x' },
        ],
        note: `From connect() (handshake and join included) to flush() resolving. Median of ${reps} runs per side, alternating, after two uncounted runs (and one of the baseline). The baseline is one op per round trip taken literally: the same client and server, ${oneN.toLocaleString('en-US')} set() calls, each acknowledged before the next is made. Rounds before 2026-11-22 compared with batchSize 1 instead, which still keeps four one-op batches in flight (printed below) and whose cost then included an outbox walk over every waiting row at each pump, quadratic in the backlog (fixed: a batch is taken as soon as it is full when no later row can overtake it).`,
        extra: [
          { name: 'bare socket.io, one emit with ack at a time (a server that does nothing)', value: `${Math.round(perTrip).toLocaleString('en-US')} ops/s` },
          { name: coldLabel('run'), value: `${Math.round(cold).toLocaleString('en-US')} ops/s` },
          { name: 'zync with batchSize 1 (one op per batch, four batches in flight)', value: `${Math.round(pipelinedOne).toLocaleString('en-US')} ops/s, ${(rate / pipelinedOne).toFixed(1)}x` },
        ],
      },
    ]
  })
}

// ---- target 7: 16 clients, one key -------------------------------------------------------------

interface Contention {
  ms: number
  bytes: number
}

/**
 * Times rounds: `round(r)` makes round r's 16 writes and returns the check that they have converged;
 * the bytes are every TCP byte through the server until then, plus 50 ms of trailing acks.
 */
function contentionRounds(srv: BenchServer, round: (r: number) => () => boolean, what: string): Session<Contention>['run'] {
  let done = 0
  return async (rounds) => {
    const out: Contention[] = []
    for (let i = 0; i < rounds; i++) {
      await sleep(20)
      const b0 = await srv.bytes()
      const t0 = performance.now()
      await until(round(done++), 30_000, what)
      const ms = performance.now() - t0
      await sleep(50)
      out.push({ ms, bytes: (await srv.bytes()) - b0 })
    }
    return out
  }
}

async function zyncContention(srv: BenchServer, clients: number): Promise<Session<Contention>> {
  const doc = await seededDoc(srv.url, 'b31')
  const cs: ZStore[] = []
  for (let i = 0; i < clients; i++) cs.push(await zyncClient(srv.url, doc, {}, emptyDoc))
  await until(() => cs.every((s) => Object.keys(s.getState().items).length === 100), 10_000, 'clients caught up')
  const run = contentionRounds(
    srv,
    (r) => {
      const seq0 = Math.max(...cs.map((s) => s.sync.status().seq))
      cs.forEach((s, i) => bumpStore(s, 'e0', r * 100 + i + 1))
      // Converged: every client has applied all 16 ops (same seq), nothing pending, same value.
      return () => cs.every((s) => s.sync.status().seq >= seq0 + clients && s.sync.status().pending === 0 && s.getState().items.e0!.n === cs[0]!.getState().items.e0!.n)
    },
    'zync convergence',
  )
  return { run, close: async () => void (await Promise.all(cs.map((s) => s.sync.destroy()))) }
}

async function yjsContention(srv: BenchServer, clients: number): Promise<Session<Contention>> {
  const room = docName('yb31')
  const cs: YClient[] = []
  for (let i = 0; i < clients; i++) cs.push(await yjsClient(srv.port, room))
  const run = contentionRounds(
    srv,
    (r) => {
      cs.forEach((c, i) => c.map.set('e0', r * 100 + i + 1))
      // Converged: every doc has integrated every client's update.
      const want = cs.map((c) => [c.doc.clientID, Y.getState(c.doc.store, c.doc.clientID)] as const)
      return () =>
        cs.every((c) => {
          for (const [id, clock] of want) if (Y.getState(c.doc.store, id) < clock) return false
          return c.map.get('e0') === cs[0]!.map.get('e0')
        })
    },
    'yjs convergence',
  )
  return {
    run,
    close: async () => {
      for (const c of cs) closeYjs(c)
    },
  }
}

export async function runContention(smoke: boolean): Promise<Result[]> {
  const clients = 16
  const rounds = smoke ? 3 : 60
  return withServers([['zync', 'memory'], ['yjs']], async ([zsrv, ysrv]) => {
    const z: Contention[] = []
    const y: Contention[] = []
    // Warm-up rounds on each side first, as for 3 and 4 (fresh server processes).
    // The clients that warm up are the ones measured (as in 4).
    const warm = smoke ? 1 : 40
    const zs = await zyncContention(zsrv, clients)
    const ys = await yjsContention(ysrv, clients)
    await zs.run(warm)
    await ys.run(warm)
    for (let half = 0; half < 2; half++) {
      z.push(...(await zs.run(rounds / 2)))
      y.push(...(await ys.run(rounds / 2)))
    }
    await zs.close()
    await ys.close()
    const zm = median(z.map((x) => x.ms))
    const ym = median(y.map((x) => x.ms))
    const zb = median(z.map((x) => x.bytes))
    const yb = median(y.map((x) => x.bytes))
    return [
      {
        target: '7',
        scenario: `${clients} clients set the same key at once, until all converge (like B3.1)`,
        zync: { median: zm, p99: p99(z.map((x) => x.ms)), unit: 'ms' },
        baseline: { name: 'Yjs over y-websocket', median: ym, p99: p99(y.map((x) => x.ms)), unit: 'ms' },
        ratio: zm / ym,
        checks: [
          { label: 'time ratio', value: zm / ym, limit: 1, cmp: '<=', unit: 'x' },
          { label: 'bytes ratio', value: zb / yb, limit: 3, cmp: '<=', unit: 'x' },
        ],
        note: `${z.length} rounds per side, after ${warm} warm-up rounds per side made by the same 16 clients (each side keeps its clients on one document for the whole scenario, and the sides take turns). Bytes: every TCP byte through the server in both directions during a round (zync ${Math.round(zb).toLocaleString('en-US')} B, Yjs ${Math.round(yb).toLocaleString('en-US')} B).`,
      },
    ]
  })
}

// ---- target 8b: server memory per idle connection -----------------------------------------------

async function perConnection(kind: 'zync' | 'socketio', conns: number, warmConnections: number): Promise<number> {
  return withServers([[kind, 'memory']], async ([srv]) => {
    const sockets: Socket[] = []
    const doc = docName('idle')
    const join = (s: Socket, i: number) => (kind === 'zync' ? s.timeout(10_000).emitWithAck('zync:join', { v: 2, doc, client: `idle-${i}-${process.pid}`, since: 0 }) : Promise.resolve())
    // Warm-up, as every network scenario has: connections that come and go first, so the code the
    // server compiles on its connect and join path (a one-off, not per connection) is in place
    // before the first heap reading. Then one connection, so lazily created server structures are
    // not charged to the rest.
    for (let i = 0; i < warmConnections; i++) {
      const s = await socketClient(srv.url)
      await join(s, -1 - i)
      s.disconnect()
    }
    sockets.push(await socketClient(srv.url))
    await join(sockets[0]!, 0)
    let before = await srv.heap()
    // The warm-up connections' closes must have reached the server before the first reading.
    for (let tries = 0; before.connections > 1 && tries < 50; tries++) before = await srv.heap()
    if (before.connections > 1) throw new Error(`[bench] ${before.connections - 1} warm-up connections still open`)
    for (let i = 1; i <= conns; i++) {
      const s = await socketClient(srv.url)
      await join(s, i)
      sockets.push(s)
    }
    const after = await srv.heap()
    if (after.connections < conns) throw new Error(`[bench] only ${after.connections} connections open`)
    for (const s of sockets) s.disconnect()
    return (after.heapUsed - before.heapUsed) / conns
  })
}

export async function runMemory(smoke: boolean): Promise<Result[]> {
  const conns = smoke ? 20 : 300
  const warm = smoke ? 5 : 200
  const b: number[] = []
  const z: number[] = []
  for (let r = 0; r < (smoke ? 1 : 3); r++) {
    b.push(await perConnection('socketio', conns, warm))
    z.push(await perConnection('zync', conns, warm))
  }
  const ratio = median(z) / median(b)
  return [
    {
      target: '8b',
      scenario: 'server memory per idle connection (connected and joined to a doc)',
      zync: { median: median(z), unit: 'B' },
      baseline: { name: 'bare socket.io server', median: median(b), unit: 'B' },
      ratio,
      checks: [{ label: 'ratio', value: ratio, limit: 1.2, cmp: '<=', unit: 'x' }],
      note: `V8 heap used after full GCs, ${conns} connections, median of ${b.length} runs per side, after ${warm} connections per side that joined and left (uncounted warm-up).`,
    },
  ]
}
