import { OP_DEPTH, type Path } from './path'

export interface Patch {
  op: 'add' | 'replace' | 'remove'
  path: Path
  value?: unknown
  /** The value before the change. */
  prev?: unknown
  /** A resolution of a conflict over an id-keyed array: sent as one (merged by element) even when both sides are empty. */
  idKey?: string
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object') return false
  const p = Object.getPrototypeOf(v)
  return p === Object.prototype || p === null
}

/**
 * Structural diff of two synced states down to field level (collection / record / field).
 * Subtrees that are the same reference are skipped, so the cost follows what changed, not the
 * size of the store. Values below the field level are compared by reference and replaced whole.
 */
export function diff(prev: Record<string, unknown>, next: Record<string, unknown>, out: Patch[] = []): Patch[] {
  if (prev !== next) diffObject(prev, next, [], out)
  return out
}

function diffObject(a: Record<string, unknown>, b: Record<string, unknown>, path: Array<string | number>, out: Patch[]): void {
  // Hot path (one changed record among thousands): Object.keys and plain lookups instead of for-in and
  // hasOwn on both sides, and no second pass over `a` when every key of `a` is still in `b`.
  const keys = Object.keys(b)
  let common = 0
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!
    const nv = b[k]
    const ov0 = a[k]
    // Same non-undefined value: own in `a` too (the prototype holds only functions), so unchanged.
    if (ov0 === nv && nv !== undefined) {
      common++
      continue
    }
    const has = Object.hasOwn(a, k)
    if (has) common++
    if (typeof nv === 'function') continue
    const ov = has ? ov0 : undefined
    if (has && ov === nv) continue
    const p = [...path, k]
    if (!has) {
      // A new top-level collection goes as the creation of each of its records, as records added to an
      // existing one do: two devices creating it offline then merge record by record, counters adding up
      // and sets joining (one write of the whole key kept one device's counts). An empty one goes whole.
      if (p.length === 1 && isPlainObject(nv) && Object.keys(nv).length > 0) diffObject({}, nv, p, out)
      else if (nv !== undefined) out.push({ op: 'add', path: p, value: nv })
      continue
    }
    if (nv === undefined) {
      out.push({ op: 'remove', path: p, prev: ov })
      continue
    }
    if (p.length < OP_DEPTH && isPlainObject(ov) && isPlainObject(nv)) {
      diffObject(ov, nv, p, out)
      continue
    }
    if (deepEqual(ov, nv)) continue
    out.push({ op: 'replace', path: p, value: nv, prev: ov })
  }
  if (common === Object.keys(a).length) return
  for (const k in a) {
    if (!Object.hasOwn(a, k) || typeof a[k] === 'function') continue
    if (!Object.hasOwn(b, k) && a[k] !== undefined) out.push({ op: 'remove', path: [...path, k], prev: a[k] })
  }
}

/** Deep equality for JSON-like values. Iterative over a work list so deep values cannot overflow. */
export function deepEqual(x: unknown, y: unknown): boolean {
  if (x === y) return true
  // Most calls compare a changed leaf (a number, a string): answered without the work list.
  if (typeof x !== 'object' || typeof y !== 'object' || x === null || y === null) return Number.isNaN(x) && Number.isNaN(y)
  const work: Array<[unknown, unknown]> = [[x, y]]
  while (work.length > 0) {
    const [a, b] = work.pop()!
    if (a === b) continue
    if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) {
      if (Number.isNaN(a) && Number.isNaN(b)) continue
      return false
    }
    const aa = Array.isArray(a)
    if (aa !== Array.isArray(b)) return false
    if (aa) {
      const bb = b as unknown[]
      if (a.length !== bb.length) return false
      for (let i = 0; i < a.length; i++) work.push([a[i], bb[i]])
      continue
    }
    const ka = Object.keys(a)
    const kb = Object.keys(b)
    if (ka.length !== kb.length) return false
    // Two Maps or Dates (no own keys): not JSON, never equal unless the same object (a new one is a
    // change, which capture then refuses with a reason instead of dropping it as "nothing changed").
    if (ka.length === 0 && (!isPlainObject(a) || !isPlainObject(b))) return false
    for (const k of ka) {
      if (!Object.hasOwn(b, k)) return false
      work.push([(a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]])
    }
  }
  return true
}

/** A value's type as resolutions are checked: 'null', 'array', or its typeof. */
export function shapeOf(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  return typeof v
}

/** The sides' shapes ('number or null') when `value` has neither (a side that removed the field admits any). */
export function shapeMismatch(c: { local: unknown; remote: unknown }, value: unknown): string | undefined {
  const shapes = new Set([shapeOf(c.local), shapeOf(c.remote)])
  return shapes.has('undefined') || shapes.has(shapeOf(value)) ? undefined : [...shapes].join(' or ')
}
