/**
 * The convergence proof at CI scale: the deterministic simulation (test/sim/sim.ts) over many seeds,
 * run in child processes so both cores work. Each seed is one test; a failing one names the command
 * that replays it. Scale with ZYNC_FUZZ_SEEDS, ZYNC_FUZZ_OPS, ZYNC_FUZZ_CLIENTS, ZYNC_FUZZ_FROM and
 * ZYNC_FUZZ_JOBS; the long run is `npm run fuzz -- --seeds 1000 --ops 30000`.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import { runPool } from './pool'
import { runSim, type SimResult } from './sim'

const env = (name: string, fallback: number) => {
  const v = process.env[name]
  return v === undefined || v === '' ? fallback : Number(v)
}
const SEEDS = env('ZYNC_FUZZ_SEEDS', 200)
const OPS = env('ZYNC_FUZZ_OPS', 2000)
const CLIENTS = env('ZYNC_FUZZ_CLIENTS', 8)
const FROM = env('ZYNC_FUZZ_FROM', 1)
const JOBS = process.env.ZYNC_FUZZ_JOBS ? Number(process.env.ZYNC_FUZZ_JOBS) : undefined
const seeds = Array.from({ length: SEEDS }, (_, i) => FROM + i)

function failure(r: SimResult): string {
  return [`seed ${r.seed} failed; replay: ${r.replay}`, ...r.problems.slice(0, 15).map((p) => `  - ${p}`)].join('\n')
}

describe('the simulation itself', () => {
  it('is deterministic: one seed gives the same run twice', async () => {
    const a = await runSim({ seed: 424242, clients: 4, ops: 400 })
    const b = await runSim({ seed: 424242, clients: 4, ops: 400 })
    expect(a.problems).toEqual([])
    expect(b.fingerprint).toBe(a.fingerprint)
    const { ms: _a, cpuMs: _ac, ...sa } = a.stats
    const { ms: _b, cpuMs: _bc, ...sb } = b.stats
    expect(sb).toEqual(sa)
    // The run did meet trouble, or it would prove little.
    expect(sa.conflictsRaised + sa.resolverRuns).toBeGreaterThan(0)
    expect(sa.superseded).toBeGreaterThan(0)
  })
})

describe(`convergence: ${SEEDS} seeds x ${OPS} edits x ${CLIENTS} clients`, () => {
  const pending = new Map<number, { promise: Promise<SimResult>; resolve: (r: SimResult) => void }>()
  for (const seed of seeds) {
    let resolve!: (r: SimResult) => void
    const promise = new Promise<SimResult>((r) => (resolve = r))
    pending.set(seed, { promise, resolve })
  }
  let pool: Promise<unknown>

  beforeAll(() => {
    pool = runPool({ seeds, clients: CLIENTS, ops: OPS, entities: 4, stopOnFailure: false, ...(JOBS ? { jobs: JOBS } : {}), onResult: (r) => pending.get(r.seed)?.resolve(r) })
    // A dead worker fails every seed still waiting, with the reason.
    pool.catch((err: Error) => {
      for (const p of pending.values()) p.resolve({ seed: -1, ok: false, problems: [err.message], replay: '', fingerprint: '', stats: {} as SimResult['stats'] })
    })
  })

  for (const seed of seeds) {
    it(`seed ${seed}`, { timeout: 20 * 60_000 }, async () => {
      const r = await pending.get(seed)!.promise
      if (!r.ok) expect.fail(failure(r))
      expect(r.stats.ops).toBeGreaterThanOrEqual(OPS)
    })
  }
})
