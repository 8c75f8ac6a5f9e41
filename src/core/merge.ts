/**
 * State-based merges (joins) behind the 'lww', 'counter', 'set' and id-keyed array policies. Each is
 * commutative, associative and idempotent (property-tested), so replicas converge whatever order and
 * however often updates arrive. The server keeps this state per field and derives the visible value.
 */
import { deepEqual } from './diff'
import { compareHlc } from './hlc'

// ---- last-writer-wins register ------------------------------------------------------------------
export interface LwwRegister<T = unknown> {
  value: T
  hlc: string
}

export function mergeLww<T>(a: LwwRegister<T>, b: LwwRegister<T>): LwwRegister<T> {
  const c = compareHlc(a.hlc, b.hlc)
  if (c !== 0) return c > 0 ? a : b
  // Same stamp means same writer and event; pick deterministically anyway.
  return JSON.stringify(a.value) >= JSON.stringify(b.value) ? a : b
}

// ---- PN-counter -----------------------------------------------------------------------------------
export interface PnCounter {
  p: Record<string, number>
  n: Record<string, number>
}

export function emptyCounter(): PnCounter {
  return { p: {}, n: {} }
}

function maxMap(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = { ...a }
  for (const k of Object.keys(b)) out[k] = Math.max(out[k] ?? 0, b[k]!)
  return out
}

export function mergeCounter(a: PnCounter, b: PnCounter): PnCounter {
  return { p: maxMap(a.p, b.p), n: maxMap(a.n, b.n) }
}

/** Adds `delta` on behalf of `replica` (each replica only grows its own entries). */
export function incrementCounter(c: PnCounter, replica: string, delta: number): PnCounter {
  if (delta >= 0) return { p: { ...c.p, [replica]: (c.p[replica] ?? 0) + delta }, n: c.n }
  return { p: c.p, n: { ...c.n, [replica]: (c.n[replica] ?? 0) - delta } }
}

export function counterValue(c: PnCounter): number {
  let v = 0
  for (const k of Object.keys(c.p)) v += c.p[k]!
  for (const k of Object.keys(c.n)) v -= c.n[k]!
  return v
}

// ---- add/remove set (LWW-element-set) ------------------------------------------------------------
export type SetElement = string | number | boolean | null
export interface AwSet {
  /** key: JSON of the element → add and remove stamps ('' when never). */
  e: Record<string, { a: string; r: string }>
}

export function emptySet(): AwSet {
  return { e: {} }
}

export function mergeSet(x: AwSet, y: AwSet): AwSet {
  const e: AwSet['e'] = { ...x.e }
  for (const k of Object.keys(y.e)) {
    const p = e[k]
    const q = y.e[k]!
    e[k] = p ? { a: p.a > q.a ? p.a : q.a, r: p.r > q.r ? p.r : q.r } : q
  }
  return { e }
}

export function setApply(s: AwSet, added: readonly unknown[], removed: readonly unknown[], hlc: string): AwSet {
  const e: AwSet['e'] = { ...s.e }
  for (const v of added) {
    const k = JSON.stringify(v)
    const cur = e[k] ?? { a: '', r: '' }
    e[k] = { a: cur.a > hlc ? cur.a : hlc, r: cur.r }
  }
  for (const v of removed) {
    const k = JSON.stringify(v)
    const cur = e[k] ?? { a: '', r: '' }
    e[k] = { a: cur.a, r: cur.r > hlc ? cur.r : hlc }
  }
  return { e }
}

/** Present elements (added after last removed; an add wins a tie), in order of first... add stamp. */
export function setValue(s: AwSet): unknown[] {
  return Object.entries(s.e)
    .filter(([, t]) => t.a !== '' && t.a >= t.r)
    .sort((x, y) => (x[1].a < y[1].a ? -1 : x[1].a > y[1].a ? 1 : x[0] < y[0] ? -1 : 1))
    .map(([k]) => JSON.parse(k) as unknown)
}

// ---- id-keyed arrays --------------------------------------------------------------------------------
export interface IdArray {
  /** id → element register: value + write stamp, delete stamp, and a stable order key. */
  e: Record<string, { v: unknown; h: string; d: string; o: string }>
}

export function emptyIdArray(): IdArray {
  return { e: {} }
}

export function mergeIdArray(x: IdArray, y: IdArray): IdArray {
  const e: IdArray['e'] = { ...x.e }
  for (const k of Object.keys(y.e)) {
    const p = e[k]
    const q = y.e[k]!
    if (!p) {
      e[k] = q
      continue
    }
    const w = p.h > q.h ? p : p.h < q.h ? q : JSON.stringify(p.v) >= JSON.stringify(q.v) ? p : q
    e[k] = { v: w.v, h: w.h, d: p.d > q.d ? p.d : q.d, o: p.o < q.o ? p.o : q.o }
  }
  return { e }
}

/**
 * Applies one client's edit of an id-keyed array: elements that differ from what the client saw are
 * written, ids it dropped are deleted, new elements get order keys after the op's stamp in the client's order.
 */
export function idArrayApply(s: IdArray, idKey: string, prev: readonly unknown[] | undefined, next: readonly unknown[], hlc: string): IdArray {
  const e: IdArray['e'] = { ...s.e }
  const before = new Map<string, unknown>()
  for (const item of prev ?? []) before.set(idOf(item, idKey), item)
  const seen = new Set<string>()
  next.forEach((item, i) => {
    const id = idOf(item, idKey)
    seen.add(id)
    const cur = e[id]
    if (before.has(id) && deepEqual(before.get(id), item) && cur) return
    const o = cur ? cur.o : `${hlc}#${i.toString(36).padStart(4, '0')}`
    const h = cur && cur.h > hlc ? cur.h : hlc
    e[id] = { v: cur && cur.h > hlc ? cur.v : item, h, d: cur?.d ?? '', o }
  })
  for (const id of before.keys()) {
    if (seen.has(id)) continue
    const cur = e[id]
    if (cur) e[id] = { ...cur, d: cur.d > hlc ? cur.d : hlc }
  }
  return { e }
}

export function idArrayValue(s: IdArray): unknown[] {
  return Object.entries(s.e)
    .filter(([, r]) => r.h > r.d)
    .sort((x, y) => (x[1].o < y[1].o ? -1 : x[1].o > y[1].o ? 1 : x[0] < y[0] ? -1 : 1))
    .map(([, r]) => r.v)
}

export function idOf(item: unknown, idKey: string): string {
  const v = item !== null && typeof item === 'object' ? (item as Record<string, unknown>)[idKey] : undefined
  return typeof v === 'string' ? `s:${v}` : `n:${String(v)}`
}

/** True for arrays whose every element is an object carrying `idKey` (string or number). */
export function isIdArray(v: unknown, idKey: string | false): v is Array<Record<string, unknown>> {
  if (!idKey || !Array.isArray(v) || v.length === 0) return false
  return v.every((x) => x !== null && typeof x === 'object' && !Array.isArray(x) && (typeof (x as Record<string, unknown>)[idKey] === 'string' || typeof (x as Record<string, unknown>)[idKey] === 'number'))
}
