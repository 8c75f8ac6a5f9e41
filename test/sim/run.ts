/**
 * The convergence fuzzer from the command line (virtual time: fast).
 *
 *   npm run fuzz                                          200 seeds x 2000 edits x 8 clients
 *   npm run fuzz -- --seed 1234 --clients 8 --ops 2000    replay one seed (add --trace to see events)
 *   npm run fuzz -- --seeds 1000 --ops 30000              the long run
 *   npm run fuzz -- --from 5000 --seeds 100               another range of seeds
 *
 * `--ops` is the number of local edits per seed, over all clients. Seeds run in child processes
 * (`--jobs`, default: one per CPU). Exits 1 if a seed fails, after printing the command that replays it.
 */
import { availableParallelism } from 'node:os'
import { runPool } from './pool'
import { runSim, type SimResult } from './sim'

interface Args {
  seed?: number
  seeds: number
  from: number
  clients: number
  ops: number
  entities: number
  jobs: number
  trace: boolean
}

function parseArgs(argv: string[]): Args {
  const a: Args = { seeds: 200, from: 1, clients: 8, ops: 2000, entities: 4, jobs: availableParallelism(), trace: false }
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!
    const v = () => {
      const x = Number(argv[++i])
      if (!Number.isInteger(x) || x < 0) throw new Error(`${k} needs a non-negative integer`)
      return x
    }
    if (k === '--seed') a.seed = v()
    else if (k === '--seeds') a.seeds = v()
    else if (k === '--from') a.from = v()
    else if (k === '--clients') a.clients = Math.max(1, v())
    else if (k === '--ops') a.ops = v()
    else if (k === '--entities') a.entities = Math.max(1, v())
    else if (k === '--jobs') a.jobs = Math.max(1, v())
    else if (k === '--trace') a.trace = true
    else throw new Error(`unknown option ${k}; see the comment at the top of test/sim/run.ts`)
  }
  return a
}

export function summary(r: SimResult): string {
  const s = r.stats
  return `seed ${r.seed}: ${r.ok ? 'ok' : 'FAILED'} in ${s.ms} ms (${s.cpuMs} ms CPU) — ${s.ops} edits, ${s.serverSeq} log entries, ${s.conflictsRaised} conflicts raised, ${s.resolvedByUser} resolved by users, ${s.resolverRuns} app-function runs, ${s.superseded} superseded, ${s.reloads} reloads, ${s.partitions} partitions, ${s.disconnects} offline spells, ${s.clockJumps} clock jumps, ${s.restarts} server restarts, ${s.snapshots} snapshot catch-ups, ${s.dropped}/${s.messages} messages lost, ${s.duplicated} duplicated, ${s.virtualSeconds} s virtual`
}

function report(r: SimResult): void {
  console.error(`\n✗ seed ${r.seed} failed:`)
  for (const p of r.problems.slice(0, 20)) console.error(`  - ${p}`)
  console.error(`\nreplay: ${r.replay}\n`)
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2))
  if (a.seed !== undefined) {
    const r = await runSim({ seed: a.seed, clients: a.clients, ops: a.ops, entities: a.entities, trace: a.trace })
    console.log(summary(r))
    if (!r.ok) {
      report(r)
      process.exit(1)
    }
    return
  }
  const seeds = Array.from({ length: a.seeds }, (_, i) => a.from + i)
  const started = performance.now()
  let done = 0
  let edits = 0
  let conflicts = 0
  const results = await runPool({
    seeds,
    clients: a.clients,
    ops: a.ops,
    entities: a.entities,
    jobs: a.jobs,
    onResult: (r) => {
      done++
      edits += r.stats.ops
      conflicts += r.stats.conflictsRaised
      if (!r.ok) report(r)
      else if (done % 10 === 0 || done === seeds.length) console.log(`${done}/${seeds.length} seeds ok (${edits} edits, ${conflicts} conflicts, ${((performance.now() - started) / 1000).toFixed(1)} s)`)
    },
  })
  const secs = ((performance.now() - started) / 1000).toFixed(1)
  const failed = results.filter((r) => !r.ok)
  if (failed.length > 0) {
    console.error(`${failed.length} of ${results.length} seeds failed; replay: ${failed[0]!.replay}`)
    process.exit(1)
  }
  console.log(`all ${results.length} seeds converged (${a.clients} clients, ${a.ops} edits per seed; ${edits} edits and ${conflicts} conflicts in total) in ${secs} s on ${Math.min(a.jobs, seeds.length)} processes`)
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
