/**
 * `npm run bench`: every scenario beside its baseline, measured in the same run on the same machine.
 * Prints a table and writes bench/results.json and docs/BENCHMARKS.md.
 * `npm run bench:smoke` (CI): small sizes and few iterations, under a minute, writes nothing.
 * `--only=1,4` runs some targets (and writes nothing either).
 * Profiling: `node --import tsx --cpu-prof bench/run.ts --only=5` profiles the clients;
 * BENCH_SERVER_PROF=<dir> makes every bench server write a CPU profile there too.
 */
// First: Dexie reads the IndexedDB globals when it is loaded.
import 'fake-indexeddb/auto'
import { writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { runBundle } from './bundle'
import { runLocal } from './local'
import { runOutbox } from './outbox'
import { runContention, runFanout, runMemory, runReplay, runRtt, runThroughput } from './network'
import { machine, markdown, pass, printTable, type Result } from './lib/report'
import { fromRoot } from './lib/paths'

const smoke = process.argv.includes('--smoke')
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7).split(',')
// Each y-websocket provider adds a process 'exit' listener.
process.setMaxListeners(200)

const suites: Array<{ targets: string[]; name: string; run: () => Promise<Result[]> }> = [
  { targets: ['8'], name: 'bundle size', run: () => runBundle() },
  { targets: ['1'], name: 'local edit and remote op (in-process)', run: () => runLocal(smoke) },
  { targets: ['2'], name: 'outbox burst (fake-indexeddb)', run: () => runOutbox(smoke) },
  { targets: ['8'], name: 'server memory per idle connection', run: () => runMemory(smoke) },
  { targets: ['3'], name: 'round trip', run: () => runRtt(smoke) },
  { targets: ['5'], name: 'sustained throughput', run: () => runThroughput(smoke) },
  { targets: ['6'], name: 'offline replay', run: () => runReplay(smoke) },
  { targets: ['4'], name: 'fan-out', run: () => runFanout(smoke) },
  { targets: ['7'], name: '16 clients, one key', run: () => runContention(smoke) },
]

const NOTES = [
  'Ratios are zync / baseline for times and bytes (lower is better) and zync / baseline for rates (higher is better). p50 is the median; p99 where latencies are sampled.',
  'In-process scenarios (1) use tinybench with tasks alternating over several rounds (A B, B A, ...), so drift on the machine falls on both sides. The synced store is the real middleware and engine over a stand-in socket (passed through the public `socket` option) and an outbox storage that keeps nothing: IndexedDB is excluded there, as the target says. 1a times store.setState() alone (the engine diffs later, in a microtask); 1b times set() plus one awaited microtask on both sides, which on the synced side runs the diff, builds the op and enqueues it in the outbox index.',
  '1c delivers a server broadcast (one change) to a joined store whose confirmed state holds the same 1,000 entities, against the same update spread by hand on a bare store.',
  '2 runs on fake-indexeddb (Node has no IndexedDB): much slower than a browser, so only the ratio means anything. The baseline table has the outbox\'s schema (id, doc, [doc+owner], order).',
  'Network scenarios (3-7) run each server (zync, bare socket.io, y-websocket) in its own Node process; the clients share this one. zync clients keep their outbox in memory (Node has no IndexedDB) and the zync server uses memory storage unless noted. The bench server lifts the per-socket rate limits (5,000 ops/s by default), which would otherwise cap 5 and 6.',
  'Network scenarios measure steady state: each side first makes 2,000 round trips (3), 2,000 writes (4a; 500 more for 4b) or 40 rounds (7) that are not counted, because the server processes start fresh for each scenario and zync runs far more code per write than the baselines, code the JIT needs a few thousand calls to optimize. What a freshly started server shows (the first 200 of those) is printed beside 3 and 4a.',
  'The bench runs as an esbuild bundle of bench/ and src/ (bench/launch.mjs), built as tsup builds dist: run through tsx instead, every closure zync creates pays a __name() call the shipped code does not.',
  '4 and 7 seed the document on the server first (a seeding client writes the 100 records), so every client starts from the same confirmed state.',
  '7 counts every TCP byte through the server in both directions (frames, headers, acks) from just before the 16 writes until they have converged, then 50 ms more for trailing acks.',
  '8a bundles src with esbuild (minified, gzip level 9) like size-limit does in CI (.size-limit.json over the built dist). Peers (zustand, react, immer, dexie, socket.io-client, ...) are left out; nanoid, a dependency, counts. The CSS (zync/styles.css) is separate and not counted.',
  '8b is the V8 heap used per connection after full GCs, connected through socket.io-client (websocket transport); zync connections have joined a document.',
  'The machine is shared: the load average at the start and end of the run is printed with the results. Figures taken under load are noisier, and p99 in particular.',
]

/**
 * What profiling (node --cpu-prof on the bench processes; BENCH_SERVER_PROF=dir profiles the servers)
 * showed behind each target this code base still misses. Printed in docs/BENCHMARKS.md for targets
 * missed in the run; update it when a cause is fixed.
 */
const CAUSES: Record<string, string> = {
  '2': 'The engine side (diff, ops, outbox index) costs about 3.5 µs per op, ~15% of the raw bulkPut here; the rest is run-to-run noise of fake-indexeddb and GC on a shared machine.',
  '3': "Per op the server validates (zod, per op, plus the safety scan), checks clocks and vectors, applies, appends, broadcasts and then acknowledges, and the client diffs, builds the op, persists, sends, and applies its own change before the ack; the baseline server acknowledges a message and does nothing. Timed in one run (client and server stamping the same clock): set() to emit ~60-90 µs in the writer (capture, op, outbox row, encoding), the server's handler ~170 µs median from receipt to answer (of which ~50 µs is the turn it waits so that writers who land together share one broadcast, which target 7 needs; a leading-edge variant saved ~40 µs here but cost target 7 its byte budget), the ack applied ~60 µs; the bare round trip is 90-150 µs in all. Reaching 1.5x of a bare emit would need the durable, validated path to cost about as much as socket.io's own framing.",
  '4a': 'Not the readers: in the CPU profiles a zync reader applying a change costs less than a Yjs reader applying an update. The difference is the path before the broadcast: Yjs relays the update as soon as it arrives, zync validates the op, applies it, appends it durably and only then broadcasts (and, coalescing, one event-loop turn later). The tail (p99) comes from GC and the shared machine.',
  '4b': 'As 4a, plus the broadcast itself: socket.io\'s room broadcast costs ~12 µs per reader socket here (a packet object, events and a write per socket: ~125 µs measured for 10 readers), where y-websocket writes each frame straight to its socket; with 50 readers that is ~0.6 ms of a ~2 ms median.',
  '5': "This round: the client's memory outbox keeps the rows the engine hands over instead of deep-copying each, and an own write acknowledged as written is no longer recomputed on screen (0.39x -> 0.40-0.52x over runs). The server is now the bound: alone (the [5] line under the table: a raw socket sending compact batches of 500, four in flight) it reaches only ~0.55-0.6x the baseline, ~23 µs per op, spread over apply, clocks and vectors (~22% of its CPU), zod validation (~12%), GC (~14%), the JSON copy of each log entry (storages keep copies, ~10%), snapshots of the 20,000-field document (~7%) and the acknowledgement carrying the changes (~5%): no single hot spot is left. The baseline server does nothing with 50-80k messages/s. (Before: pipelining, compact ops and answers, copy-on-write application, snapshot interval scaled to the document.)",
  '6': 'Bound by the same server-side work per op as 5, so the rate swings between 24k and 41k ops/s and the ratio between 8x and 14x from run to run with the load of this shared machine; the baseline (zync with batchSize 1) moves less.',
  '7': 'Borderline, and it depends on the run: since the previous round broadcasts are coalesced per document per event-loop turn (16 writers → one message per reader) and change records, ops and answers travel in a compact form, so time went from 1.5x to 0.73-1.32x of Yjs over runs on this shared machine and bytes from 13x to 2.9-3.0x. Yjs sends ~30 B binary updates; a zync change record is ~75 B of JSON (op id, client id, packed stamp, seq) and an op carries its base vector, which names every writer of the entity (17 here).',
  '8a': 'src/core/engine.ts alone is ~29 kB minified (conflict inbox, dead letters, tabs, presence, lanes, catch-up in one class with long error messages); the compact wire codec added ~1.4 kB gzipped, and ordered id-keyed arrays (order keys, choosing between readings of an edit, the client predicting the server’s merge) ~1.6 kB; conflict-modal is ~4 kB. 8 kB needs optional features moved to separate entry points.',
  '8b': 'Passes since the previous round: one set of event handlers per server (socket.io calls them with the socket as `this`) instead of closures per connection, joined documents read from the socket\'s rooms instead of a second set, and rate-limit buckets that hold two numbers and are created on first use.',
}

async function main(): Promise<void> {
  const started = performance.now()
  const loadStart = loadavg()[0]!
  const results: Result[] = []
  const failures: string[] = []
  for (const s of suites) {
    if (only && !s.targets.some((t) => only.includes(t))) continue
    const t0 = performance.now()
    process.stdout.write(`[bench] ${s.name}... `)
    try {
      const r = await s.run()
      results.push(...r)
      console.log(`${((performance.now() - t0) / 1000).toFixed(1)} s`)
    } catch (err) {
      console.log('failed')
      console.error(err)
      failures.push(`${s.name}: ${(err as Error).message}`)
    }
  }
  const order = (t: string) => parseFloat(t) + (t.endsWith('b') ? 0.2 : t.endsWith('c') ? 0.3 : 0)
  results.sort((a, b) => order(a.target) - order(b.target))
  const durationS = (performance.now() - started) / 1000
  const loadEnd = loadavg()[0]!
  console.log('')
  printTable(results)
  const missed = results.filter((r) => !r.checks.every(pass)).map((r) => r.target)
  console.log(`\n${results.length - missed.length}/${results.length} pass${missed.length ? `; missed: ${missed.join(', ')}` : ''}. ${durationS.toFixed(0)} s, load average ${loadStart.toFixed(1)} → ${loadEnd.toFixed(1)} on ${machine().cores} cores.`)
  if (!smoke && !only) {
    const meta = { ...machine(), date: new Date().toISOString(), durationS, loadAverage: { start: loadStart, end: loadEnd } }
    writeFileSync(fromRoot('bench/results.json'), JSON.stringify({ meta, results, failures }, null, 2) + '\n')
    writeFileSync(fromRoot('docs/BENCHMARKS.md'), markdown(results, meta, NOTES, CAUSES))
    console.log('wrote bench/results.json and docs/BENCHMARKS.md')
  }
  if (failures.length) {
    console.error(`[bench] ${failures.length} suite(s) failed:\n${failures.join('\n')}`)
    process.exit(1)
  }
  process.exit(0)
}

// A suite waiting on something that can no longer happen would otherwise end the process silently.
let finished = false
process.on('beforeExit', () => {
  if (finished) return
  console.error('\n[bench] the event loop emptied before the bench finished: a suite waited on something that never came')
  process.exit(1)
})
void main().finally(() => (finished = true))
