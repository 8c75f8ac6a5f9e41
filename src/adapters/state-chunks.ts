/**
 * Splitting a document's confirmed state into parts that IndexedDB can write in separate tasks.
 *
 * IndexedDB clones what it stores on the main thread, inside `put()`: one put of a 10,000-record state
 * was a 50-95 ms task (143-227 ms at 50,000), so the page stuttered whenever zync saved it. Split into
 * parts of at most CHUNK_ENTRIES entries, each part is a task of a few milliseconds.
 *
 * A part is `{ path, entries }`: the own entries of the plain object at `path`, in order. The root, and
 * containers up to two levels down with more than CHUNK_ENTRIES entries (a collection of records, say,
 * or one inside a small container), are split; anything else (records, arrays, small containers) stays
 * whole inside its parent's part. A container that is split appears in its parent's part as `{}`, so
 * joining the parts in order gives every object its keys in their original order.
 */
import { isPlainObject } from '../core/diff'

export interface StatePart {
  path: string[]
  entries: Record<string, unknown>
}

/** Entries per part: a few milliseconds of cloning each. */
export const CHUNK_ENTRIES = 500
/** Containers deeper than this are never split (their keys are not even counted). */
const SPLIT_DEPTH = 2


/** Whether `v`, `depth` levels below the root, is split (or holds something that is). */
function splits(v: Record<string, unknown>, depth: number, max: number): boolean {
  const keys = Object.keys(v)
  if (keys.length > max) return true
  if (depth >= SPLIT_DEPTH) return false
  for (const k of keys) {
    const c = v[k]
    if (isPlainObject(c) && splits(c, depth + 1, max)) return true
  }
  return false
}

/** The parts of `state` in order. A state small enough gives exactly one part: `{ path: [], entries: state }`. */
export function splitState(state: Record<string, unknown>, max = CHUNK_ENTRIES): StatePart[] {
  const out: StatePart[] = []
  const visit = (obj: Record<string, unknown>, path: string[], depth: number): void => {
    let entries: Record<string, unknown> = {}
    let n = 0
    let any = false
    const flush = () => {
      out.push({ path, entries })
      entries = {}
      n = 0
      any = true
    }
    for (const k of Object.keys(obj)) {
      const v = obj[k]
      if (depth < SPLIT_DEPTH && isPlainObject(v) && splits(v, depth + 1, max)) {
        setOwn(entries, k, {})
        flush()
        visit(v, [...path, k], depth + 1)
        continue
      }
      setOwn(entries, k, v)
      if (++n >= max) flush()
    }
    if (n > 0 || !any) flush()
  }
  visit(state, [], 0)
  return out
}

/** Joins parts made by splitState, in their order, into a new state. */
export function joinState(parts: readonly StatePart[]): Record<string, unknown> {
  const root: Record<string, unknown> = {}
  for (const p of parts) {
    let target = root
    for (const k of p.path) {
      const next = Object.hasOwn(target, k) ? target[k] : undefined
      if (!isPlainObject(next)) setOwn(target, k, {})
      target = target[k] as Record<string, unknown>
    }
    for (const k of Object.keys(p.entries)) setOwn(target, k, p.entries[k])
  }
  return root
}

/** An own property, even for '__proto__' (a plain assignment would set the prototype instead). */
function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true })
  else o[k] = v
}
