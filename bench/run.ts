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
import { fork } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { runBundle } from './bundle'
import { CAUSES } from './causes'
import { runLocal } from './local'
import { runOutbox } from './outbox'
import { runContention, runFanout, runMemory, runReplay, runRtt, runThroughput } from './network'
import { machine, markdown, parallelism, pass, printTable, type Result } from './lib/report'
import { fromRoot } from './lib/paths'

const smoke = process.argv.includes('--smoke')
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7).split(',')
/** Set in the process that runs one suite for the main one (see runIsolated). */
const suiteArg = process.argv.find((a) => a.startsWith('--suite='))?.slice(8)
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
  'Each suite runs in a fresh Node process (the table\'s rows come from the processes in turn), so no scenario measures in the heap, JIT state or open handles an earlier one left behind.',
  'In-process scenarios (1) use tinybench with tasks alternating over several rounds (A B, B A, ...), so drift on the machine falls on both sides. The synced store is the real middleware and engine over a stand-in socket (passed through the public `socket` option) and an outbox storage that keeps nothing: IndexedDB is excluded there, as the target says. 1a times store.setState() alone (the engine diffs later, in a microtask); 1b times set() plus one awaited microtask on both sides, which on the synced side runs the diff, builds the op and enqueues it in the outbox index.',
  '1c delivers a server broadcast (one change) to a joined store whose confirmed state holds the same 1,000 entities, against the same update spread by hand on a bare store.',
  '2 runs on fake-indexeddb (Node has no IndexedDB): much slower than a browser, so only the ratio means anything. The baseline table has the outbox\'s schema (id, doc, [doc+owner], order). The store joins a stand-in server that holds the records first, then goes offline: the burst is field ops on records the server has.',
  'Network scenarios (3-7) run each server (zync, bare socket.io, y-websocket) in its own Node process; the clients share this one. zync clients keep their outbox in memory (Node has no IndexedDB) and the zync server uses memory storage unless noted. The bench server lifts the per-socket rate limits (5,000 ops and 2,000 messages per second by default, which zync clients pace themselves to), which would otherwise cap 3 to 6.',
  'Network scenarios measure steady state: each side first makes 2,000 round trips (3), 2,000 writes (4a; 500 for 4b), two full runs (5, 6) or 40 rounds (7) that are not counted (in 4 and 7 by the very clients then measured: each side keeps its clients for the whole scenario), because the server processes start fresh for each scenario and zync runs far more code per write than the baselines, code the JIT needs a few thousand calls to optimize. What a freshly started server shows (the first 200 of those, the first run for 5 and 6) is printed beside 3, 4a, 5 and 6.',
  'The bench runs as an esbuild bundle of bench/ and src/ (bench/launch.mjs), built as tsup builds dist: run through tsx instead, every closure zync creates pays a __name() call the shipped code does not.',
  '4 and 7 seed the document on the server first (a seeding client writes the 100 records), and so do 5 and 6 (the 1,000 records of 20 fields), so every client starts from the same confirmed state and its writes are field ops on records the server has (a record only in a client\'s initial state is written whole at its first edit). 6 joins once before going offline for its edits.',
  '7 counts every TCP byte through the server in both directions (frames, headers, acks) from just before the 16 writes until they have converged, then 50 ms more for trailing acks.',
  '8a bundles src with esbuild (minified, gzip level 9) like size-limit does in CI (.size-limit.json over the built dist). Peers (zustand, react, immer, dexie, socket.io-client, ...) are left out; nanoid, a dependency, counts. The CSS (zync/styles.css) is separate and not counted.',
  '8b is the V8 heap used per connection after full GCs, connected through socket.io-client (websocket transport); zync connections have joined a document. Both servers first see 200 connections that join and leave, uncounted, so the code V8 compiles on the connect and join path (a one-off) is in place before the first reading, as the other network scenarios warm up.',
  'The machine is shared: the load average at the start and end of the run is printed with the results. Figures taken under load are noisier, and p99 in particular.',
]

/**
 * Runs suite `i` in a fresh Node process (this script with --suite=i) and returns its results: no suite
 * measures in a heap, a JIT state or open handles that an earlier suite left behind (target 2's
 * fake-indexeddb databases alone stay in the heap for the rest of a process and lengthen every
 * major GC after them: 4a's p99 was 4.0 ms in a full run against 3.4 ms run alone).
 */
function runIsolated(i: number): Promise<Result[]> {
  return new Promise((resolve, reject) => {
    const child = fork(process.argv[1]!, [`--suite=${i}`, ...(smoke ? ['--smoke'] : [])], { execArgv: process.execArgv, stdio: 'inherit', serialization: 'advanced' })
    let answer: { results?: Result[]; error?: string } = {}
    child.on('message', (m: typeof answer) => (answer = m))
    child.on('error', reject)
    child.on('exit', (code, signal) => (answer.results ? resolve(answer.results) : reject(new Error(answer.error ?? `the suite's process exited with ${signal ?? `code ${code}`}`))))
  })
}

/** In the suite's own process: runs it and hands its results to the main process. */
async function runSuite(i: number): Promise<void> {
  try {
    process.send!({ results: await suites[i]!.run() })
    process.exit(0)
  } catch (err) {
    process.send!({ error: (err as Error)?.stack ?? String(err) })
    process.exit(1)
  }
}

async function main(): Promise<void> {
  if (suiteArg !== undefined) return runSuite(Number(suiteArg))
  const started = performance.now()
  const loadStart = loadavg()[0]!
  const parStart = smoke ? undefined : await parallelism()
  if (parStart !== undefined) console.log(`[bench] measured parallelism: ${parStart.toFixed(2)} CPUs' worth of work at once on ${machine().cores} cores`)
  const results: Result[] = []
  const failures: string[] = []
  for (const [i, s] of suites.entries()) {
    if (only && !s.targets.some((t) => only.includes(t))) continue
    const t0 = performance.now()
    console.log(`[bench] ${s.name}...`)
    try {
      const r = await runIsolated(i)
      results.push(...r)
      console.log(`[bench] ${s.name}: ${((performance.now() - t0) / 1000).toFixed(1)} s`)
    } catch (err) {
      console.log(`[bench] ${s.name}: failed`)
      console.error((err as Error).message)
      failures.push(`${s.name}: ${(err as Error).message.split('\n')[0]}`)
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
