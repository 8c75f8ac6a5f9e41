/**
 * Runs seeds in child processes (one per core by default), so the fuzzer uses every core from the
 * command line and from vitest alike. Each child is test/sim/worker.ts under tsx; seeds are handed out
 * one at a time, so a slow seed does not hold up the others.
 */
import { fork } from 'node:child_process'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import type { SimResult } from './sim'

export interface PoolOptions {
  seeds: number[]
  clients: number
  ops: number
  entities: number
  /** Child processes. Default: the number of CPUs. */
  jobs?: number
  /** Stop handing out seeds after the first failure. Default true. */
  stopOnFailure?: boolean
  onResult?: (r: SimResult) => void
}

const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url))

export async function runPool(o: PoolOptions): Promise<SimResult[]> {
  const queue = [...o.seeds]
  const results: SimResult[] = []
  let failed = false
  const jobs = Math.max(1, Math.min(o.jobs ?? availableParallelism(), queue.length))
  await Promise.all(
    Array.from(
      { length: jobs },
      () =>
        new Promise<void>((resolve, reject) => {
          const child = fork(WORKER, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
          let current: number | undefined
          const next = () => {
            current = queue.shift()
            if (current === undefined || (failed && o.stopOnFailure !== false)) {
              current = undefined
              child.send('exit')
              return
            }
            child.send({ seed: current, clients: o.clients, ops: o.ops, entities: o.entities })
          }
          child.on('message', (m: SimResult | 'ready') => {
            if (m === 'ready') return next()
            results.push(m)
            if (!m.ok) failed = true
            o.onResult?.(m)
            next()
          })
          child.on('error', reject)
          child.on('exit', (code) => {
            if (current !== undefined) reject(new Error(`fuzz worker died (exit ${code}) while running seed ${current}; replay it with: npm run fuzz -- --seed ${current} --clients ${o.clients} --ops ${o.ops} --entities ${o.entities}`))
            else resolve()
          })
        }),
    ),
  )
  return results.sort((a, b) => a.seed - b.seed)
}
