/**
 * The id-keyed array merge as it was before it was made fast: src/core/order-key.ts and the id-keyed
 * array part of src/core/merge.ts at commit 9cf8aa1, copied verbatim. test/merge.property.test.ts
 * compares the current functions with it: the same states, values, clashes and keys, whatever the edits.
 * Not used by the library.
 */
import { deepEqual } from '../src/core/diff'
import type { ClashRule, IdArray } from '../src/core/merge'

// ---- src/core/order-key.ts --------------------------------------------------------------------------
const ZERO = 0x20 // ' ': never the last character of a key, so there is always room below a key
const BASE = 0x7f - ZERO // digits ' ' .. '~'

/** The digit of a key's first character (callers check the key is not empty). */
function firstDigit(s: string): number {
  return Math.min(Math.max(s.charCodeAt(0) - ZERO, 0), BASE - 1)
}

/**
 * A key strictly between `a` and `b` ('' is below everything, undefined above everything), for keys
 * that do not end in the zero digit. The digit-wise midpoint of fractional-indexing (rocicorp), over
 * printable ASCII instead of base 62, because the keys it extends are not in that library's format.
 */
export function keyBetween(a: string, b: string | undefined): string {
  let prefix = ''
  for (;;) {
    if (b !== undefined) {
      // Drop the common prefix (`a` padded with zeros).
      let n = 0
      while (n < b.length && (n < a.length ? a[n] : ' ') === b[n]) n++
      if (n > 0) {
        prefix += b.slice(0, n)
        a = a.slice(n)
        b = b.slice(n)
      }
    }
    const da = a.length > 0 ? firstDigit(a) : 0
    const db = b !== undefined && b.length > 0 ? firstDigit(b) : BASE
    if (db - da > 1) return prefix + String.fromCharCode(ZERO + Math.round((da + db) / 2))
    // Consecutive first digits: below `b`'s first digit when `b` goes on, else after `a`'s first digit.
    if (b !== undefined && b.length > 1) return prefix + b[0]
    prefix += String.fromCharCode(ZERO + da)
    a = a.slice(1)
    b = undefined
  }
}

/** `count` increasing keys strictly between `lo` and `hi`, by bisection (lengths grow with log(count)). */
function keysBetween(lo: string, hi: string | undefined, count: number, out: string[]): void {
  if (count <= 0) return
  const mid = keyBetween(lo, hi)
  const left = (count - 1) >> 1
  keysBetween(lo, mid, left, out)
  out.push(mid)
  keysBetween(mid, hi, count - 1 - left, out)
}

const DIGITS36 = '0123456789abcdefghijklmnopqrstuvwxyz'

/** Digit-wise complement in base 36: reverses the order of equal-length strings of 0-9a-z. */
function complement(s: string): string {
  let out = ''
  for (const c of s) {
    const d = DIGITS36.indexOf(c)
    out += d < 0 ? c : DIGITS36[35 - d]
  }
  return out
}

/** The positions of a longest strictly increasing subsequence of `xs` (patience sorting, O(n log n)). */
function longestIncreasing(xs: readonly number[]): Set<number> {
  const tails: number[] = [] // tails[k]: index of the smallest tail of an increasing run of length k+1
  const back: number[] = new Array(xs.length)
  for (let i = 0; i < xs.length; i++) {
    let lo = 0
    let hi = tails.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (xs[tails[mid]!]! < xs[i]!) lo = mid + 1
      else hi = mid
    }
    back[i] = lo > 0 ? tails[lo - 1]! : -1
    tails[lo] = i
  }
  const out = new Set<number>()
  for (let i = tails.length > 0 ? tails[tails.length - 1]! : -1; i >= 0; i = back[i]!) out.add(i)
  return out
}

/**
 * Where an edit of a list puts its elements. `next` is the list the client made, `seenAt` the position
 * of each id in the list it saw, `keyOf` the current order key of an id (undefined if unknown), `keys`
 * the current keys of every element. The elements that kept their relative order (a longest increasing
 * run of their old positions) stay where they are; every other element of `next` (inserted, or moved)
 * gets a new key between the keys of its neighbours in `next`. Returns those new keys by id.
 * Deterministic: the server and the author's client place an edit the same way.
 *
 * Two arrays do not always say which element moved (after a swap of neighbours either one may have),
 * and concurrent moves can leave an element's two neighbours in the other order (then it goes right
 * after the left one, or right before the right one). When these readings differ, the one that keeps
 * the most pairs in the order the edit asked for (pairs it reordered) and in the order others gave
 * them meanwhile (pairs whose current order differs from what the client saw) wins; ties, and every
 * edit made without concurrent changes, take the first reading.
 */
export function placeIds(
  next: readonly string[],
  seenAt: ReadonlyMap<string, number>,
  keyOf: (id: string) => string | undefined,
  stamp: string,
  keys: readonly string[],
): Map<string, string> {
  const kept: number[] = []
  const old: number[] = []
  next.forEach((id, i) => {
    const at = seenAt.get(id)
    if (at !== undefined && keyOf(id) !== undefined) {
      kept.push(i)
      old.push(at)
    }
  })
  const stays = new Set<number>()
  for (const k of longestIncreasing(old)) stays.add(kept[k]!)
  const first = placeAround(next, stays, keyOf, stamp, keys, false)
  if (kept.length > MAX_REREAD || kept.length < 2) return first.placed
  // The other readings: the longest run taken from the back, and the other side of inverted neighbours.
  const fromBack = new Set<number>()
  for (const k of longestIncreasing(old.map((x) => -x).reverse())) fromBack.add(kept[kept.length - 1 - k]!)
  const readings = [first]
  if (!sameSet(stays, fromBack)) readings.push(placeAround(next, fromBack, keyOf, stamp, keys, false))
  for (const r of [...readings]) if (r.inverted) readings.push(placeAround(next, r.stays, keyOf, stamp, keys, true))
  if (readings.length === 1) return first.placed
  // Score each reading over the pairs of elements the client saw that are still in the list.
  const ids = kept.map((i) => next[i]!)
  const now = ids.map((id) => keyOf(id)!)
  const before = (x: string, y: string, kx: string, ky: string) => kx < ky || (kx === ky && x < y)
  let best = first
  let bestScore = -1
  for (const r of readings) {
    const then = ids.map((id, x) => r.placed.get(id) ?? now[x]!)
    let score = 0
    for (let x = 0; x < ids.length; x++) {
      for (let y = x + 1; y < ids.length; y++) {
        const p = ids[x]!
        const q = ids[y]!
        // The edit made p before q (`ids` is in `next` order); `seen`: so was it in the list it saw.
        const seen = old[x]! < old[y]!
        const current = before(p, q, now[x]!, now[y]!)
        const result = before(p, q, then[x]!, then[y]!)
        if (!seen && result) score++ // a pair this edit reordered, as it asked
        else if (seen && !current && !result) score++ // a pair another edit reordered meanwhile, kept
      }
    }
    if (score > bestScore) {
      best = r
      bestScore = score
    }
  }
  return best.placed
}

/** Lists longer than this are placed with the first reading only (scoring is quadratic). */
const MAX_REREAD = 256

function sameSet(x: ReadonlySet<number>, y: ReadonlySet<number>): boolean {
  if (x.size !== y.size) return false
  for (const v of x) if (!y.has(v)) return false
  return true
}

interface Reading {
  stays: ReadonlySet<number>
  placed: Map<string, string>
  /** Some run had its two neighbours in the other order. */
  inverted: boolean
}

/**
 * New keys for the elements of `next` not in `stays`, between the keys of their neighbours. Neighbours
 * in the other order (concurrent moves): right after the left one (`beforeRight` false) or right
 * before the right one, i.e. up to the nearest current key on the other side.
 */
function placeAround(next: readonly string[], stays: ReadonlySet<number>, keyOf: (id: string) => string | undefined, stamp: string, all: readonly string[], beforeRight: boolean): Reading {
  // Stamp part of an hlc ('wall:counter'), without the node id: ASCII, and the same width for every op.
  const colon = stamp.indexOf(':', stamp.indexOf(':') + 1)
  const base = colon > 0 ? stamp.slice(0, colon) : stamp
  const placed = new Map<string, string>()
  let inverted = false
  let left: string | undefined
  for (let i = 0; i < next.length; ) {
    if (stays.has(i)) {
      left = keyOf(next[i]!)
      i++
      continue
    }
    let j = i
    while (j < next.length && !stays.has(j)) j++
    let right = j < next.length ? keyOf(next[j]!) : undefined
    if (right !== undefined && left !== undefined && right <= left) {
      inverted = true
      if (beforeRight) left = nearest(all, right, -1)
      else right = nearest(all, left, 1)
    }
    const keys: string[] = []
    const stamped = (prefix: string) => Array.from({ length: j - i }, (_, t) => `${prefix}#${(i + t).toString(36).padStart(4, '0')}`)
    if (right === undefined) {
      const appended = stamped(base)
      if (left === undefined || appended[0]! > left) keys.push(...appended)
      else for (let t = i, k = left; t < j; t++) keys.push((k = keyBetween(k, undefined)))
    } else if (left === undefined) {
      // At the top: below every stamped key, later prepends below earlier ones.
      const prepended = stamped(`!${complement(base)}`)
      if (prepended[prepended.length - 1]! < right) keys.push(...prepended)
      else keysBetween('', right, j - i, keys)
    } else keysBetween(left, right, j - i, keys)
    for (let t = i; t < j; t++) placed.set(next[t]!, keys[t - i]!)
    left = keys[keys.length - 1]
    i = j
  }
  return { stays, placed, inverted }
}

/** The nearest key in `all` below (`dir` -1) or above (1) `key`; undefined when there is none. */
function nearest(all: readonly string[], key: string, dir: -1 | 1): string | undefined {
  let best: string | undefined
  for (const k of all) {
    if (dir < 0 ? k < key && (best === undefined || k > best) : k > key && (best === undefined || k < best)) best = k
  }
  return best
}

// ---- src/core/merge.ts (id-keyed arrays) --------------------------------------------------------------
function valueKey(v: unknown): string {
  return JSON.stringify(v) ?? ''
}

function maxStamp(a: string, b: string): string {
  return a > b ? a : b
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
  const w = p.h > q.h ? p : p.h < q.h ? q : valueKey(p.v) >= valueKey(q.v) ? p : q
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

function byId(items: readonly unknown[] | undefined, idKey: string): Map<string, { item: unknown; i: number }> {
  const m = new Map<string, { item: unknown; i: number }>()
  ;(items ?? []).forEach((item, i) => m.set(idOf(item, idKey), { item, i }))
  return m
}

/**
 * Elements one client edit (`prev` → `next`) touches that someone else changed differently since `prev`
 * (a three-way comparison with the current state): edit against edit, edit against delete, delete
 * against edit, or the same id inserted twice with different values.
 */
export function idArrayClashes(s: IdArray, idKey: string, prev: readonly unknown[] | undefined, next: readonly unknown[]): string[] {
  const before = byId(prev, idKey)
  const after = byId(next, idKey)
  const out: string[] = []
  for (const id of new Set([...before.keys(), ...after.keys()])) {
    const base = before.get(id)?.item
    const mine = after.get(id)?.item
    if (deepEqual(base, mine)) continue
    const theirs = presentValue(s.e[id])
    if (!deepEqual(theirs, base) && !deepEqual(theirs, mine)) out.push(id)
  }
  return out
}

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
  const e: IdArray['e'] = { ...s.e }
  const before = byId(prev, idKey)
  const clash = new Set(clashes)
  const ids = next.map((item) => idOf(item, idKey))
  const seenAt = new Map<string, number>()
  for (const [id, b] of before) seenAt.set(id, b.i)
  const current: string[] = []
  for (const r of Object.values(e)) if (r.h > r.d) current.push(r.o)
  const placed = placeIds(ids, seenAt, (id) => (Object.hasOwn(e, id) ? e[id]!.o : undefined), hlc, current)
  next.forEach((item, i) => {
    const id = ids[i]!
    const b = before.get(id)
    const cur = Object.hasOwn(e, id) ? e[id] : undefined
    const o = placed.get(id)
    if (b && deepEqual(b.item, item)) {
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
  const after = byId(next, idKey)
  for (const id of before.keys()) {
    if (after.has(id)) continue
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
  return Object.entries(s.e)
    .filter(([, r]) => r.h > r.d)
    .sort((x, y) => (x[1].o < y[1].o ? -1 : x[1].o > y[1].o ? 1 : x[0] < y[0] ? -1 : 1))
    .map(([, r]) => r.v)
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
  const seen = new Set<string>()
  for (const x of v) {
    const id = x !== null && typeof x === 'object' && !Array.isArray(x) ? (x as Record<string, unknown>)[idKey] : undefined
    if (typeof id !== 'string' && typeof id !== 'number') return false
    const k = idOf(x, idKey)
    if (seen.has(k)) return false
    seen.add(k)
  }
  return true
}

