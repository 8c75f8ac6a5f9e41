/**
 * State-based merges (joins) behind the 'lww', 'counter', 'set' and id-keyed array policies. Each is
 * commutative, associative and idempotent (property-tested in test/merge.property.test.ts), so replicas
 * converge whatever order and however often updates arrive. The server keeps this state per field and
 * derives the visible value; the `*Apply` functions are the updates one client op makes.
 */
import { deepEqual, isPlainObject } from './diff'
import { compareHlc } from './hlc'
import { placeIds } from './order-key'

/** A total order on JSON values, used only to break ties between equal stamps deterministically. */
function valueKey(v: unknown): string {
  return JSON.stringify(v) ?? ''
}

function maxStamp(a: string, b: string): string {
  return a > b ? a : b
}

// ---- last-writer-wins register ------------------------------------------------------------------
export interface LwwRegister<T = unknown> {
  value: T
  hlc: string
}

export function mergeLww<T>(a: LwwRegister<T>, b: LwwRegister<T>): LwwRegister<T> {
  const c = compareHlc(a.hlc, b.hlc)
  if (c !== 0) return c > 0 ? a : b
  // Same stamp means same writer and event; pick deterministically anyway (undefined sorts first).
  return valueKey(a.value) >= valueKey(b.value) ? a : b
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
  for (const k of Object.keys(b)) out[k] = Math.max(Object.hasOwn(out, k) ? out[k]! : 0, b[k]!)
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
    e[k] = p ? { a: maxStamp(p.a, q.a), r: maxStamp(p.r, q.r) } : q
  }
  return { e }
}

export function setApply(s: AwSet, added: readonly unknown[], removed: readonly unknown[], hlc: string): AwSet {
  const e: AwSet['e'] = { ...s.e }
  for (const v of added) {
    const k = JSON.stringify(v)
    const cur = e[k] ?? { a: '', r: '' }
    e[k] = { a: maxStamp(cur.a, hlc), r: cur.r }
  }
  for (const v of removed) {
    const k = JSON.stringify(v)
    const cur = e[k] ?? { a: '', r: '' }
    e[k] = { a: cur.a, r: maxStamp(cur.r, hlc) }
  }
  return { e }
}

/** Present elements (added at or after the last remove: an add wins a tie), ordered by latest add stamp. */
export function setValue(s: AwSet): unknown[] {
  return Object.entries(s.e)
    .filter(([, t]) => t.a !== '' && t.a >= t.r)
    .sort((x, y) => (x[1].a < y[1].a ? -1 : x[1].a > y[1].a ? 1 : x[0] < y[0] ? -1 : 1))
    .map(([k]) => JSON.parse(k) as unknown)
}

// ---- id-keyed arrays --------------------------------------------------------------------------------
export interface IdArray {
  /**
   * id → element register: value `v` with its write stamp `h`, delete stamp `d` ('' when never), and
   * its place: order key `o` (order-key.ts) written at `m` (the stamp of the last move; absent for the
   * place of the first insert). Present while h > d.
   */
  e: Record<string, { v: unknown; h: string; d: string; o: string; m?: string }>
}

export function emptyIdArray(): IdArray {
  return { e: {} }
}

/** The register state of a plain array (no history: stamps '0', places in array order); empty for a non-array. */
export function seedIdArray(items: unknown, idKey: string): IdArray {
  return Array.isArray(items) ? idArrayApply(emptyIdArray(), idKey, [], items, '0') : emptyIdArray()
}

type Register = IdArray['e'][string]

/**
 * Join of two registers of one element: the later write (ties by value), the later delete, and the
 * place of the later move (ties, including two first inserts, by the lower key).
 */
function joinRegister(p: Register, q: Register): Register {
  // Equal stamps and the same value (a move: only the place changes) need no tie-break: both are the
  // write. Serializing the value for it cost two JSON.stringify per moved element.
  const w = p.h > q.h ? p : p.h < q.h ? q : p.v === q.v || valueKey(p.v) >= valueKey(q.v) ? p : q
  const pm = p.m ?? ''
  const qm = q.m ?? ''
  const at = pm > qm ? p : pm < qm ? q : p.o <= q.o ? p : q
  const r: Register = { v: w.v, h: w.h, d: maxStamp(p.d, q.d), o: at.o }
  if (at.m) r.m = at.m
  return r
}

export function mergeIdArray(x: IdArray, y: IdArray): IdArray {
  const e: IdArray['e'] = { ...x.e }
  for (const k of Object.keys(y.e)) {
    const p = e[k]
    const q = y.e[k]!
    e[k] = p ? joinRegister(p, q) : q
  }
  return { e }
}

/** What an element looks like in the register state: its value while present, else undefined. */
function presentValue(r: IdArray['e'][string] | undefined): unknown {
  return r && r.h > r.d ? r.v : undefined
}

/** The position of each id in `items` (the last one of an id listed twice). */
function positions(items: readonly unknown[], idKey: string): Map<string, number> {
  const m = new Map<string, number>()
  items.forEach((item, i) => m.set(idOf(item, idKey), i))
  return m
}

/**
 * Elements one client edit (`prev` → `next`) touches that someone else changed differently since `prev`
 * (a three-way comparison with the current state): edit against edit, edit against delete, delete
 * against edit, or the same id inserted twice with different values.
 */
export function idArrayClashes(s: IdArray, idKey: string, prev: readonly unknown[] | undefined, next: readonly unknown[]): string[] {
  const seen = prev ?? []
  const before = positions(seen, idKey)
  const after = positions(next, idKey)
  const out: string[] = []
  const check = (id: string, base: unknown, mine: unknown) => {
    if (deepEqual(base, mine)) return
    const theirs = presentValue(s.e[id])
    if (!deepEqual(theirs, base) && !deepEqual(theirs, mine)) out.push(id)
  }
  // The ids of `prev`, then those only `next` has (without building their union).
  for (const [id, i] of before) {
    const j = after.get(id)
    check(id, seen[i], j === undefined ? undefined : next[j])
  }
  for (const [id, j] of after) if (!before.has(id)) check(id, undefined, next[j])
  return out
}

/**
 * How an element change that clashes with a concurrent one is settled: 'lww' by stamps (the later of
 * edit and delete wins), 'local' the incoming change wins, 'remote' the current state wins.
 */
export type ClashRule = 'lww' | 'local' | 'remote'

/** A stamp just above `s` (still below any later clock reading that is not an extension of it). */
function above(s: string): string {
  return s + '\u0001'
}

/**
 * Applies one client's edit of an id-keyed array as a diff of what it saw (`prev`) and what it made
 * (`next`): inserted and edited elements are written, dropped ones deleted, untouched ones left alone
 * (so concurrent edits of other elements survive). Inserted and moved elements are placed between
 * their neighbours in `next` (placeIds); a move is last-writer-wins on the element's place, never a
 * clash. `clashes` (see idArrayClashes) are settled by `rule`.
 */
export function idArrayApply(
  s: IdArray,
  idKey: string,
  prev: readonly unknown[] | undefined,
  next: readonly unknown[],
  hlc: string,
  rule: ClashRule = 'lww',
  clashes: readonly string[] = [],
): IdArray {
  // A copy by key loop: about twice as fast as a spread for a state of thousands of elements.
  const e: IdArray['e'] = {}
  for (const id of Object.keys(s.e)) e[id] = s.e[id]!
  const seen = prev ?? []
  const seenAt = positions(seen, idKey)
  const clash = new Set(clashes)
  const ids = next.map((item) => idOf(item, idKey))
  // The keys of the present elements: read by placeIds only when it finds neighbours in the other order.
  const current: Iterable<string> = {
    *[Symbol.iterator]() {
      for (const r of Object.values(e)) if (r.h > r.d) yield r.o
    },
  }
  const placed = placeIds(ids, seenAt, (id) => (Object.hasOwn(e, id) ? e[id]!.o : undefined), hlc, current)
  // The positions of `prev` whose id `next` still holds (the others were dropped).
  const kept = new Uint8Array(seen.length)
  next.forEach((item, i) => {
    const id = ids[i]!
    const at = seenAt.get(id)
    if (at !== undefined) kept[at] = 1
    const cur = Object.hasOwn(e, id) ? e[id] : undefined
    const o = placed.get(id)
    if (at !== undefined && deepEqual(seen[at], item)) {
      // Only moved: a new place for the element, its value (and a concurrent delete) untouched.
      if (o !== undefined && cur) e[id] = joinRegister(cur, { ...cur, o, m: hlc })
      return
    }
    if (clash.has(id) && rule === 'remote') return
    let h = hlc
    if (clash.has(id) && rule === 'local' && cur) h = maxStamp(hlc, above(maxStamp(cur.h, cur.d)))
    const write: Register = { v: item, h, d: '', o: o ?? cur?.o ?? '' }
    if (cur && o !== undefined) write.m = hlc
    e[id] = cur ? joinRegister(cur, write) : write
  })
  for (const [id, at] of seenAt) {
    if (kept[at]) continue
    const cur = e[id]
    if (!cur) continue
    if (clash.has(id) && rule === 'remote') continue
    const d = clash.has(id) && rule === 'local' ? maxStamp(hlc, above(cur.h)) : hlc
    e[id] = { ...cur, d: maxStamp(cur.d, d) }
  }
  return { e }
}

/**
 * Three-way merge of an id-keyed array by element, as the server merges a concurrent edit: what `mine`
 * changed relative to `base` is applied over `theirs`, what only `theirs` changed stays, and an element
 * both changed differently goes to `winner`. Resolving a conflict with one side keeps the other side's
 * one-sided inserts, edits and deletes, as it does for the keys of an object.
 */
export function mergeIdArrays(base: unknown, mine: readonly unknown[], theirs: unknown, idKey: string, winner: 'mine' | 'theirs'): unknown[] {
  const s = seedIdArray(theirs, idKey)
  const prev = Array.isArray(base) ? base : []
  return idArrayValue(idArrayApply(s, idKey, prev, mine, '1', winner === 'mine' ? 'local' : 'remote', idArrayClashes(s, idKey, prev, mine)))
}

export function idArrayValue(s: IdArray): unknown[] {
  const present: Array<{ id: string; o: string; v: unknown }> = []
  for (const id of Object.keys(s.e)) {
    const r = s.e[id]!
    if (r.h > r.d) present.push({ id, o: r.o, v: r.v })
  }
  // By key, then id (ids are distinct). Filled from the keys without the [id, register] pairs of
  // Object.entries and the arrays filter and map made.
  present.sort((x, y) => (x.o < y.o ? -1 : x.o > y.o ? 1 : x.id < y.id ? -1 : 1))
  return present.map((x) => x.v)
}

export function idOf(item: unknown, idKey: string): string {
  const v = item !== null && typeof item === 'object' ? (item as Record<string, unknown>)[idKey] : undefined
  return typeof v === 'string' ? `s:${v}` : `n:${String(v)}`
}

/**
 * True for arrays whose every element is an object carrying `idKey` (string or number), no id twice.
 * Merged by id, an array with a repeated id kept one element of each id: an acknowledged element was
 * dropped without a word (adversarial trial). Such an array is a whole value instead.
 */
export function isIdArray(v: unknown, idKey: string | false): v is Array<Record<string, unknown>> {
  if (!idKey || !Array.isArray(v) || v.length === 0) return false
  // String and number ids apart, as idOf tells them apart (without making its string per element).
  const strings = new Set<string>()
  const numbers = new Set<number>()
  for (const x of v) {
    const id = x !== null && typeof x === 'object' && !Array.isArray(x) ? (x as Record<string, unknown>)[idKey] : undefined
    if (typeof id === 'string') {
      if (strings.has(id)) return false
      strings.add(id)
    } else if (typeof id === 'number') {
      // The same as idOf's String(id): a Set takes 0 and -0 as one id, and NaN as equal to NaN.
      if (numbers.has(id)) return false
      numbers.add(id)
    } else return false
  }
  return true
}

/** An array merged by `idKey` may be empty or an id array (isIdArray); anything else is not one. */
export const idArrayOrEmpty = (v: unknown, idKey: string): boolean => Array.isArray(v) && (v.length === 0 || isIdArray(v, idKey))

type Obj = Record<string, unknown>

/**
 * An op the server merges by key when it is concurrent (mergeObject): a write of an object that carries
 * the object its author saw.
 */
export function mergesByKey(op: { op: string; value?: unknown; prev?: unknown }): op is { op: string; value: Obj; prev: Obj } {
  return op.op !== 'remove' && isPlainObject(op.prev) && isPlainObject(op.value)
}

const own = (o: Obj, k: string): unknown => (Object.hasOwn(o, k) ? o[k] : undefined)

/**
 * Three-way merge of an object value by key, nested objects recursively: what `mine` changed relative
 * to `base` (what its author saw) is written over `theirs` (the current value); what only `theirs`
 * changed stays. A key both changed to different values (not both objects) is a clash, settled by
 * `winner`, and counted. The server runs it for a concurrent write of an object below a field; the
 * client runs it to show its pending writes over newer remote values as the server will merge them.
 */
export function mergeObject(base: Obj, mine: Obj, theirs: Obj, winner: 'mine' | 'theirs'): { value: Obj; clashes: number } {
  let clashes = 0
  const walk = (b: Obj, m: Obj, t: Obj): Obj => {
    const out: Obj = {}
    for (const k of new Set([...Object.keys(t), ...Object.keys(m)])) {
      const [bv, mv, tv] = [own(b, k), own(m, k), own(t, k)]
      let v: unknown
      if (deepEqual(mv, bv) || deepEqual(mv, tv)) v = tv
      else if (deepEqual(tv, bv)) v = mv
      else if (isPlainObject(mv) && isPlainObject(tv)) v = walk(isPlainObject(bv) ? bv : {}, mv, tv)
      else {
        clashes++
        v = winner === 'mine' ? mv : tv
      }
      if (v !== undefined) out[k] = v
    }
    return out
  }
  return { value: walk(base, mine, theirs), clashes }
}
