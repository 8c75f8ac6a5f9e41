/**
 * `npm run bench`: every scenario beside its baseline, measured in the same run on the same machine.
 * Prints a table and writes bench/results.json and docs/BENCHMARKS.md. npm runs it through
 * bench/launch.mjs, which bundles bench/ and src/ with esbuild first (the code as shipped).
 * `npm run bench:smoke` (CI): small sizes and few iterations, under a minute, writes nothing.
 * `--only=1,4` runs some targets (and writes nothing either).
 * Profiling: `node --cpu-prof bench/launch.mjs --only=5` profiles the clients (the flag is passed on);
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
import { machine, markdown, parallelism, pass, printTable, type Result } from './lib/report'
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
  '2 runs on fake-indexeddb (Node has no IndexedDB): much slower than a browser, so only the ratio means anything. The baseline table has the outbox\'s schema (id, doc, [doc+owner], order). The store joins a stand-in server that holds the records first, then goes offline: the burst is field ops on records the server has.',
  'Network scenarios (3-7) run each server (zync, bare socket.io, y-websocket) in its own Node process; the clients share this one. zync clients keep their outbox in memory (Node has no IndexedDB) and the zync server uses memory storage unless noted. The bench server lifts the per-socket rate limits (5,000 ops and 2,000 messages per second by default, which zync clients pace themselves to), which would otherwise cap 3 to 6.',
  'Network scenarios measure steady state: each side first makes 2,000 round trips (3), 2,000 writes (4a; 500 more for 4b), two full runs (5, 6) or 40 rounds (7) that are not counted, because the server processes start fresh for each scenario and zync runs far more code per write than the baselines, code the JIT needs a few thousand calls to optimize. What a freshly started server shows (the first 200 of those, the first run for 5 and 6) is printed beside 3, 4a, 5 and 6.',
  'The bench runs as an esbuild bundle of bench/ and src/ (bench/launch.mjs), built as tsup builds dist: run through tsx instead, every closure zync creates pays a __name() call the shipped code does not.',
  '4 and 7 seed the document on the server first (a seeding client writes the 100 records), and so do 5 and 6 (the 1,000 records of 20 fields), so every client starts from the same confirmed state and its writes are field ops on records the server has (a record only in a client\'s initial state is written whole at its first edit). 6 joins once before going offline for its edits.',
  '7 counts every TCP byte through the server in both directions (frames, headers, acks) from just before the 16 writes until they have converged, then 50 ms more for trailing acks.',
  '8a bundles src with esbuild (minified, gzip level 9) like size-limit does in CI (.size-limit.json over the built dist). Peers (zustand, react, immer, dexie, socket.io-client, ...) are left out; nanoid, a dependency, counts. The CSS (zync/styles.css) is separate and not counted.',
  '8b is the V8 heap used per connection after full GCs, connected through socket.io-client (websocket transport); zync connections have joined a document. Both servers first see 200 connections that join and leave, uncounted, so the code V8 compiles on the connect and join path (a one-off) is in place before the first reading, as the other network scenarios warm up.',
  'The machine is shared: the load average at the start and end of the run is printed with the results. Figures taken under load are noisier, and p99 in particular.',
]

/**
 * What profiling (node --cpu-prof on the bench processes; BENCH_SERVER_PROF=dir profiles the servers)
 * showed behind each target this code base still misses. Printed in docs/BENCHMARKS.md for targets
 * missed in the run; update it when a cause is fixed.
 */
const CAUSES: Record<string, string> = {
  '2': 'Borderline: 1.39x and 1.55x in this round\'s two full runs (2026-11-23), 1.43-1.48x run alone; the previous round measured 1.37-1.48x. The engine side (diff, ops, outbox index) costs about 3.5 µs per op, ~15% of the raw bulkPut here; the rest is run-to-run noise of fake-indexeddb and GC on a shared machine. Session of 2026-11-23 11:26: a full run measured 1.64x (load average 1.4 at its start), then 1.58x, 1.48x and 1.41x run alone; alternating runs of the code before the session (2706aba) and after it gave 1.54x/1.35x, 1.48x/1.46x, 1.52x/1.45x (before/after): the band is the machine\'s, and the session\'s outbox changes (counts of record-level rows and rows per client id) did not move it.',
  '3': 'Both sides are measured in steady state now (2,000 warm-up trips each): the bare emit got faster with warming (~0.11 -> ~0.07 ms), so the ratio grew although zync\'s own time did not; the cold figure beside the result is the first 200 trips of fresh servers. Timed trip by trip in one process pair (client and server stamping the same monotonic clock), warm: set() to emit ~25 µs in the writer; one-way transfer ~55-75 µs each way (larger frames than the bare emit\'s, and the writer is still running its outbox write when the frame leaves); the server ~70 µs from receipt to ack for a one-op batch, ~55-60 µs of it before the broadcast (envelope and op validation, clocks and vectors, the append, the per-batch promises, and the one event-loop turn that lets writers who land together share one broadcast, which target 7 needs: a leading-edge variant saved ~40 µs but cost target 7 its byte budget); the ack applied ~20 µs. ~220-260 µs in all against ~70 µs for a bare emit with ack: 1.5x would need the validated, durable path to cost about as much as socket.io\'s own framing.',
  '4a': 'Steady state (2,000 warm-up writes per side). Timed per stage, warm, for 10 readers (client and server stamping one monotonic clock): writer set() to emit ~30 µs; emit to the server ~85-100 µs, including the writer\'s socket write itself (~35-55 µs per write on this VM, which the Yjs writer pays too); the server ~75-90 µs to the broadcast: validating the envelope and the op (zod) ~30 µs in place (the same code takes ~8 µs in a hot loop: on this path it runs once per write, with cold caches), apply and append ~30 µs, ~12 µs until the coalescing turn flushes; then ~85-160 µs until the first reader has the frame (socket.io writes a packet per reader socket) and ~16-20 µs per reader (the readers share one process here). A reader now copies the 100-record collection once per change, in its store (the copy the Yjs readers\' spread makes too): the engine\'s confirmed state keeps its collections across remote batches (copy-on-write epoch renewed only when one is handed out), which took the reader\'s apply from ~10 µs to ~5 µs and target 1c from 2.1x to 1.05x. Yjs relays an update as soon as it arrives and writes each frame straight to its socket. The tail (p99) comes from GC and the shared machine. The ratio moves with the machine\'s state more than with zync: on 2026-11-22 night, with the machine quiet, Yjs took 0.34-0.39 ms and zync 0.48-0.56 ms (1.39-1.6x), and the previous commit measured the same (1.39x, 1.60x) in the same minutes, where earlier that day runs gave 1.13-1.27x. On 2026-11-23: 1.12x and 1.15x in two full runs. Later on 2026-11-23 a lone-writer variant was tried (no coalescing turn when the document\'s last message carried only the same writer\'s changes): in alternating runs on a quiet machine 4a measured 1.56x and 1.85x with it against 1.40x and 1.58x without (4b 1.03x, 1.06x against 0.96x, 0.93x), no gain within the noise, so it was reverted.',
  '4b': 'Borderline: 0.84-1.37x over the last rounds\' runs (2026-11-22 evening: 0.85x, 1.10x, 1.12x, 1.00x and 0.96x in five runs; night: 0.99x, 0.97x, 0.93x, then 1.18x, 1.11x, 1.24x and 0.93x, with the previous commit run in between at 1.44x and 1.05x: the band is the machine\'s, not this round\'s changes; 2026-11-23: 1.27x, then 0.76x, later 0.68x and 0.98x). As 4a, with the broadcast\'s per-socket cost paid 50 times.',
  '5': 'Both sides are measured warm now (two uncounted full runs each). The zync client is the bound: the server alone (the [5] line: a raw socket sending compact batches of 500, four in flight) reaches ~0.6-0.8x the baseline over runs, the whole path ~0.45-0.6x. Per op the client spends ~12 µs before anything is sent (measured with the client offline: the app\'s own spread and setState, the diff, the op, the outbox index and the row copy the storage keeps) and ~8 µs on sending and on the answer (socket.io encoding and parsing, the own changes the ack carries applied to the confirmed state, outbox bookkeeping); GC is ~13% of its CPU, and no single function is above ~5%. The server spends ~14-16 µs per op in a 500-op batch (apply, clocks and vectors, GC, the JSON copy the memory storage keeps of each entry, zod). The bare client sends one message per op and the bare server does nothing with it: reaching 1.0x would take both zync sides about halving their per-op work. On 2026-11-23 midday the default snapshot interval became half the document\'s field count (a document that only grows was never snapshotted again, so keepLog never compacted it): this bench writes new fields in every run, so it now snapshots about twice as often; alternating runs measured 0.39x and 0.43x with the new interval against 0.45x and 0.48x with the old one, a cost kept for the operators\' bound on the log. Later that day (session of 11:26) the ack stopped repeating what the client sent: a change applied as sent now travels as its op\'s index (shortAcks, docs/PROTOCOL.md), the server no longer copies each entry into its op\'s answer, and the client\'s outbox skips two per-op walks of a record\'s rows when there is nothing to find (no record-level rows, no rows of other client ids); the ack\'s decoding fell from ~90 ms to ~30 ms of the client\'s profile over ten runs, and the client\'s CPU per steady run from ~410-430 ms to ~385-400 ms: ~5%, within the run-to-run band of the ratio (0.42-0.52x in single runs that hour). What remains per op on the client: capture ~4.5 µs (diff, op, outbox index), the pump and socket.io ~3 µs, the acked change applied to the confirmed state ~4 µs, GC ~5 µs, the app\'s own spread and setState ~2.5 µs.',
  '6': 'Bound by the per-op work of the client and the server (see 5); the rate moves by a third from run to run with the load of this shared machine.',
  '7': 'Borderline, and it depends on the run: since the previous round broadcasts are coalesced per document per event-loop turn (16 writers → one message per reader) and change records, ops and answers travel in a compact form, so time went from 1.5x to 0.58-1.32x of Yjs over runs on this shared machine (0.58-1.09x in this round\'s runs; a compact op\'s base vector is no longer validated client id by client id, which with 17 writers was most of an op\'s validation) and bytes from 13x to 2.8-3.0x. Yjs sends ~30 B binary updates; a zync change record is ~75 B of JSON (op id, client id, packed stamp, seq) and an op carries its base vector, which names every writer of the entity (17 here).',
  '8a': 'The feature set is the cause, not waste: src/core/engine.ts alone is ~31 kB minified (conflict inbox, dead letters, tabs with device-wide pending, presence, lanes, catch-up, whole-record writes for records only in the initial state, in one class with typed error messages), the compact wire codec ~4.3 kB, ordered id-keyed arrays (order keys, the client predicting the server’s merge) ~4.7 kB, the Dexie outbox ~3.8 kB, conflict-modal ~4.3 kB. String literals are ~3.8 kB of the gzipped total; mangling private names (measured) would save ~1 kB. The last three rounds each added ~0.7-1.4 kB for what user trials needed; this one ~1.3 kB (avatar names on focus and the +N list, Edit merged starting from a key-by-key merge, the toast stepping aside for the modal, store names checked at sync(), records only in the initial state written whole and deleted defaults kept deleted, the server’s presence TTL, the outbox order and pending list kept incrementally). This round added ~2 kB more, all for what this round’s trials found (closed tabs’ rows adopted by claims instead of rewritten, id-keyed arrays merged by element when a conflict is resolved with one side and shown element by element in the modal, new records merged by field with their counter and set fields as their own ops, values that cannot be synced refused at capture with their path, a type check of every sync() option, a frozen tab’s rows kept apart and tabs told what was settled before they opened). The round of 2026-11-22 evening added ~0.6 kB (size-limit 29.39 -> 30.02 kB), again for what trials found: server rendering (fixed snapshots for the hooks, no connection from a server-side store, a "use client" entry), a pure isDirty(), the idKey a conflict carries to the modal, the server:rewound signal, a clock that recovers from a jump, pending ops rebased after a rewound server. The round of 2026-11-22 night added ~0.7 kB (size-limit 30.05 -> 30.78 kB; the regression budget moved from 30.5 to 31 kB) for what two trials found: the client paces its sends to the server\'s rate limits (a token bucket shared with the server, the limits from the join answer, retryAfter on refusals), so a long offline queue is no longer refused and backed off for many seconds; an avatar\'s name is kept inside the screen. The round of 2026-11-23 added ~0.75 kB (size-limit 30.78 -> 31.53 kB; the regression budget moved from 31 to 32 kB), again for what two trials found: what is in flight follows the link\'s measured pace (a backlog on a slow uplink never drained), an acknowledged write stays on screen until its change is applied (it vanished during a catch-up, and a delete made then was lost), stores sharing one socket share its pace, a conflicts.paths pattern naming no key of the state warns, and so does a value its policy cannot merge, remote changes are named for devtools (size-limit 31.72 kB at the final code). The round of 2026-11-23 morning added ~1.9 kB (size-limit 31.72 -> 34.06 kB at the final code; the regression budget moved from 32 to 34.5 kB) for what three trials found: a store that comes online delivers the edits other documents\' stores left unsent (multi-document apps lost them until the document was opened again), a store on a shared socket leaves its document on destroy() and disconnect(), edits carry their user so another user of a shared device never sends them as theirs, setPresence() refuses what the server would drop (a BigInt crashed Node from a timer) and keeps to the server\'s presence rate, presence components re-render only when who is here changes (not on every cursor move), translatable avatar texts, edits left behind delivered only to their own server, and the modal\'s focus return. A later round of 2026-11-23 added ~0.7 kB (size-limit 34.06 -> 34.74 kB; the regression budget moved from 34.5 to 35 kB) for what four trials and their re-checks found: focus that goes back where it came from when the offline banner or the conflict toast goes, a translatable badge tooltip and a badge whose live region holds its state only, a quiet close of sockets still opening and a connection closed before it opened reported as unreachable, a store that meets another shape of the document (an array where it has keyed records, or the reverse) showing the document and warning, and a join retried after the server\'s retryAfter. The round of 2026-11-23 midday added ~0.6 kB (size-limit 34.82 -> 35.4 kB; the regression budget moved from 35 to 35.5 kB) for what three trials found: a device\'s edit stamped after its own pending ones made under another client id (an edit after a reload lost to the one before it), a wall clock set back detected against monotonic time, an edit refused as CLOCK_SKEW stamped anew after a join instead of left as a dead letter, the op id of the last change sent with each join so a server restored from a backup and written to since is noticed, and deleteLocalData() for signing out on a shared device. The session of 2026-11-23 11:26 added ~0.5 kB (size-limit 35.46 -> 35.96 kB, measured commit by commit; the regression budget moved from 35.5 to 36 kB): the client rebuilding its own changes from the ops it sent (the short form of acks, ~0.3 kB), the outbox\'s counts of record-level rows and rows per client id (~0.15 kB), and join answers read as bytes (a large document\'s join no longer holds the server\'s event loop). 8 kB would need the optional features (conflict UI, presence, tabs, id-keyed arrays) moved to separate entry points, which would change the API the issues fix.',
  '8b': 'Per connection, from heap snapshots of both servers (300 joined connections, after the warm-up): zync holds ~1.2-1.3 kB more than a bare socket.io server. ~280 B is the table of eight event listeners each socket.io socket keeps (routing the protocol from the one catch-all listener saved it but was reverted: socket.io calls catch-all listeners before per-socket middleware, `socket.use`, so an operator\'s middleware would no longer gate zync\'s handlers); ~130 B the two flood-limit buckets the join takes from; ~200 B the room membership (the socket\'s rooms and the document room\'s set). Until 2026-11-22 the bench took its first heap reading after a single connection, so the code V8 compiles on the connect and join path (~0.5-0.7 kB per connection over 300, a one-off) was charged to the connections: 1.05-1.24x then, ~1.11x since.',
}

async function main(): Promise<void> {
  const started = performance.now()
  const loadStart = loadavg()[0]!
  const parStart = smoke ? undefined : await parallelism()
  if (parStart !== undefined) console.log(`[bench] measured parallelism: ${parStart.toFixed(2)} CPUs' worth of work at once on ${machine().cores} cores`)
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
  const parEnd = parStart === undefined ? undefined : await parallelism()
  console.log('')
  printTable(results)
  const missed = results.filter((r) => !r.checks.every(pass)).map((r) => r.target)
  console.log(`\n${results.length - missed.length}/${results.length} pass${missed.length ? `; missed: ${missed.join(', ')}` : ''}. ${durationS.toFixed(0)} s, load average ${loadStart.toFixed(1)} → ${loadEnd.toFixed(1)} on ${machine().cores} cores.`)
  if (!smoke && !only) {
    const meta = { ...machine(), ...(parStart !== undefined && parEnd !== undefined ? { parallelism: { start: parStart, end: parEnd } } : {}), date: new Date().toISOString(), durationS, loadAverage: { start: loadStart, end: loadEnd } }
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
