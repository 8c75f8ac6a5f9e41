/** A version vector: for each client id, the highest op counter of that client seen for an entity. */
export type VersionVector = Record<string, number>

export function vvGet(vv: VersionVector | undefined, client: string): number {
  if (!vv) return 0
  return Object.hasOwn(vv, client) ? (vv[client] ?? 0) : 0
}

/** a ≥ b for every client. */
export function vvDominates(a: VersionVector | undefined, b: VersionVector | undefined): boolean {
  if (!b) return true
  for (const k of Object.keys(b)) if (vvGet(a, k) < (b[k] ?? 0)) return false
  return true
}

export function vvMerge(a: VersionVector | undefined, b: VersionVector | undefined): VersionVector {
  const out: VersionVector = Object.create(null)
  if (a) for (const k of Object.keys(a)) out[k] = a[k]!
  if (b) for (const k of Object.keys(b)) out[k] = Math.max(vvGet(out, k), b[k]!)
  return { ...out }
}

/** For each client, the lower of the two counters (clients at 0 left out): what both vectors have seen. */
export function vvMeet(a: VersionVector | undefined, b: VersionVector | undefined): VersionVector {
  const out: VersionVector = {}
  if (a) for (const k of Object.keys(a)) {
    const n = Math.min(a[k]!, vvGet(b, k))
    if (n > 0) out[k] = n
  }
  return out
}

/** Returns a copy with `client` raised to at least `n`. */
export function vvBump(vv: VersionVector | undefined, client: string, n: number): VersionVector {
  const out: VersionVector = vv ? { ...vv } : {}
  if (vvGet(out, client) < n) out[client] = n
  return out
}

/** Neither vector dominates: the histories are concurrent. */
export function vvConcurrent(a: VersionVector, b: VersionVector): boolean {
  return !vvDominates(a, b) && !vvDominates(b, a)
}
