import { Bench } from 'tinybench'
import { median, p99 } from './stats'

export interface TaskDef {
  name: string
  /** Returns the sample in ms through tinybench's overriddenDuration, or is timed whole. */
  fn: () => unknown
}

/**
 * Runs the tasks of a comparison in alternating rounds (A B, B A, A B, ...) with tinybench, so drift
 * on a shared machine (other processes, GC, JIT) falls on both sides alike. Returns µs per task.
 */
export async function compare(tasks: TaskDef[], o: { rounds: number; time: number; warmupTime: number }): Promise<Record<string, { median: number; p99: number; samples: number }>> {
  const samples = new Map<string, number[]>(tasks.map((t) => [t.name, []]))
  for (let r = 0; r < o.rounds; r++) {
    const order = r % 2 === 0 ? tasks : [...tasks].reverse()
    const bench = new Bench({ time: o.time / o.rounds, warmupTime: r === 0 ? o.warmupTime : o.warmupTime / 4, retainSamples: true, throws: true })
    for (const t of order) bench.add(t.name, t.fn)
    await bench.run()
    for (const t of bench.tasks) {
      const got = (t.result as unknown as { latency?: { samples?: number[] } }).latency?.samples
      if (!got?.length) throw new Error(`[bench] no samples for ${t.name}`)
      samples.get(t.name)!.push(...got)
    }
  }
  const out: Record<string, { median: number; p99: number; samples: number }> = {}
  for (const [name, s] of samples) out[name] = { median: median(s) * 1000, p99: p99(s) * 1000, samples: s.length }
  return out
}
