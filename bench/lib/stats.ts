/** Small statistics helpers: every figure in the report is a median (p50) or p99 of raw samples. */

export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return NaN
  const s = [...samples].sort((a, b) => a - b)
  const pos = (s.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo)
}

export const median = (s: readonly number[]): number => quantile(s, 0.5)
export const p99 = (s: readonly number[]): number => quantile(s, 0.99)

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/** Polls `check` (also on every macrotask) until it is true or `timeout` ms pass. */
export async function until(check: () => boolean, timeout = 10_000, what = 'condition'): Promise<void> {
  const start = performance.now()
  while (!check()) {
    if (performance.now() - start > timeout) throw new Error(`[bench] timed out waiting for ${what}`)
    await new Promise((r) => setImmediate(r))
  }
}

export function gc(): void {
  ;(globalThis as { gc?: () => void }).gc?.()
}
