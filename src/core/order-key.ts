/**
 * Order keys for id-keyed arrays: strings compared with `<`, so an element can be placed between two
 * others by giving it a key between theirs (fractional indexing, as Figma and Replicache order lists).
 * Keys are printable ASCII. Appends at the end take keys made from the op's stamp (`wall:counter#index`),
 * prepends at the top keys from the stamp's complement (`!` + digits that fall as time goes on), so
 * both stay the same length however many there are (newest-first lists prepend forever); inserts and
 * moves between two elements take midpoints of their neighbours' keys.
 */

const ZERO = 0x20 // ' ': never the last character of a key, so there is always room below a key
const BASE = 0x7f - ZERO // digits ' ' .. '~'

/** The digit of a key's `i`-th character (callers check the key is that long). */
function digitAt(s: string, i: number): number {
  return Math.min(Math.max(s.charCodeAt(i) - ZERO, 0), BASE - 1)
}

/**
 * A key strictly between `a` and `b` ('' is below everything, undefined above everything), for keys
 * that do not end in the zero digit. The digit-wise midpoint of fractional-indexing (rocicorp), over
 * printable ASCII instead of base 62, because the keys it extends are not in that library's format.
 */
export function keyBetween(a: string, b: string | undefined): string {
  let prefix = ''
  while (b !== undefined) {
    // Drop the common prefix (`a` padded with zeros).
    let n = 0
    while (n < b.length && (n < a.length ? a[n] : ' ') === b[n]) n++
    if (n > 0) {
      prefix += b.slice(0, n)
      a = a.slice(n)
      b = b.slice(n)
    }
    const da = a.length > 0 ? digitAt(a, 0) : 0
    const db = b.length > 0 ? digitAt(b, 0) : BASE
    if (db - da > 1) return prefix + String.fromCharCode(ZERO + Math.round((da + db) / 2))
    // Consecutive first digits: below `b`'s first digit when `b` goes on, else after `a`'s first digit.
    if (b.length > 1) return prefix + b[0]
    prefix += String.fromCharCode(ZERO + da)
    a = a.slice(1)
    b = undefined
  }
  return prefix + keyAbove(a)
}

/**
 * A key above `a` (keyBetween(a, undefined)): its leading top digits ('~', or a character above it) as
 * '~', then the midpoint of its next digit and the top. At once, not a digit at a time: keys made one
 * after another above the last one (an append after a key above the op's stamp) grow a digit every few
 * keys, and building them a character at a time made such an append of thousands of elements slow.
 */
function keyAbove(a: string): string {
  let n = 0
  while (n < a.length && digitAt(a, n) === BASE - 1) n++
  const da = n < a.length ? digitAt(a, n) : 0
  return '~'.repeat(n) + String.fromCharCode(ZERO + Math.round((da + BASE) / 2))
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
function longestIncreasing(xs: readonly number[]): number[] {
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
  const out: number[] = []
  for (let i = tails.length > 0 ? tails[tails.length - 1]! : -1; i >= 0; i = back[i]!) out.push(i)
  return out
}

/**
 * Where an edit of a list puts its elements. `next` is the list the client made, `seenAt` the position
 * of each id in the list it saw, `keyOf` the current order key of an id (undefined if unknown), `keys`
 * the current keys of every element (iterated only if some neighbours are in the other order: a lazy
 * iterable spares most edits a pass over the whole state). The elements that kept their relative order
 * (a longest increasing run of their old positions) stay where they are; every other element of `next`
 * (inserted, or moved) gets a new key between the keys of its neighbours in `next`. Returns those new
 * keys by id.
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
  keys: Iterable<string>,
): Map<string, string> {
  // Each id's current key, looked up once (the readings below read them again and again).
  const keyAt = next.map((id) => keyOf(id))
  const kept: number[] = []
  const old: number[] = []
  next.forEach((id, i) => {
    const at = seenAt.get(id)
    if (at !== undefined && keyAt[i] !== undefined) {
      kept.push(i)
      old.push(at)
    }
  })
  // Which positions of `next` stay: a flag per position (a Set of thousands of numbers cost more).
  const stays = new Uint8Array(next.length)
  for (const k of longestIncreasing(old)) stays[kept[k]!] = 1
  const all = new SortedKeys(keys)
  const first = placeAround(next, stays, keyAt, stamp, all, false)
  if (kept.length > MAX_REREAD || kept.length < 2) return first.placed
  // The other readings: the longest run taken from the back, and the other side of inverted neighbours.
  const fromBack = new Uint8Array(next.length)
  for (const k of longestIncreasing(old.map((x) => -x).reverse())) fromBack[kept[kept.length - 1 - k]!] = 1
  const readings = [first]
  if (!sameFlags(stays, fromBack)) readings.push(placeAround(next, fromBack, keyAt, stamp, all, false))
  for (const r of [...readings]) if (r.inverted) readings.push(placeAround(next, r.stays, keyAt, stamp, all, true))
  if (readings.length === 1) return first.placed
  // Score each reading over the pairs of elements the client saw that are still in the list.
  const ids = kept.map((i) => next[i]!)
  const oldAt = Int32Array.from(old)
  const now = ranks(ids, kept.map((i) => keyAt[i]!))
  let best = first
  let bestScore = -1
  for (const r of readings) {
    const score = pairsHonoured(oldAt, now, ranks(ids, ids.map((id, x) => r.placed.get(id) ?? keyAt[kept[x]!]!)))
    if (score > bestScore) {
      best = r
      bestScore = score
    }
  }
  return best.placed
}

/**
 * The score of a reading: over the pairs x < y of elements (in the order the edit made them), those it
 * reordered that end in that order, plus those another edit reordered meanwhile (`old`: their positions
 * in the list the client saw, `now`: their current ranks) that stay in the other order (`then`: their
 * ranks after the reading).
 */
function pairsHonoured(old: Int32Array, now: Int32Array, then: Int32Array): number {
  let score = 0
  for (let x = 0; x < old.length; x++) {
    for (let y = x + 1; y < old.length; y++) {
      // The edit made x before y; `seen`: so was it in the list it saw.
      const seen = old[x]! < old[y]!
      const current = now[x]! < now[y]!
      const result = then[x]! < then[y]!
      if (!seen && result) score++ // a pair this edit reordered, as it asked
      else if (seen && !current && !result) score++ // a pair another edit reordered meanwhile, kept
    }
  }
  return score
}

/**
 * The rank of each element in list order (by key, then id, as idArrayValue orders them; equal for equal
 * key and id, so comparing ranks is comparing keys and ids): the scoring compares ranks, a sort's worth
 * of string comparisons per reading instead of two per pair of elements.
 */
function ranks(ids: readonly string[], keys: readonly string[]): Int32Array {
  const before = (x: number, y: number) => keys[x]! < keys[y]! || (keys[x] === keys[y] && ids[x]! < ids[y]!)
  const order = ids.map((_, x) => x).sort((x, y) => (before(x, y) ? -1 : before(y, x) ? 1 : 0))
  const out = new Int32Array(ids.length)
  for (let k = 1; k < order.length; k++) out[order[k]!] = out[order[k - 1]!]! + (before(order[k - 1]!, order[k]!) ? 1 : 0)
  return out
}

/** Lists longer than this are placed with the first reading only (scoring is quadratic). */
const MAX_REREAD = 256

function sameFlags(x: Uint8Array, y: Uint8Array): boolean {
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false
  return true
}

interface Reading {
  /** 1 at the positions of `next` that keep their keys. */
  stays: Uint8Array
  placed: Map<string, string>
  /** Some run had its two neighbours in the other order. */
  inverted: boolean
}

/**
 * New keys for the elements of `next` not in `stays`, between the keys of their neighbours (`keyAt`:
 * the current key of each element of `next`). Neighbours in the other order (concurrent moves): right
 * after the left one (`beforeRight` false) or right before the right one, i.e. up to the nearest
 * current key on the other side.
 */
function placeAround(next: readonly string[], stays: Uint8Array, keyAt: ReadonlyArray<string | undefined>, stamp: string, all: SortedKeys, beforeRight: boolean): Reading {
  // Stamp part of an hlc ('wall:counter'), without the node id: ASCII, and the same width for every op.
  const colon = stamp.indexOf(':', stamp.indexOf(':') + 1)
  const base = colon > 0 ? stamp.slice(0, colon) : stamp
  const placed = new Map<string, string>()
  let inverted = false
  let left: string | undefined
  for (let i = 0; i < next.length; ) {
    if (stays[i]) {
      left = keyAt[i]
      i++
      continue
    }
    let j = i
    while (j < next.length && !stays[j]) j++
    let right = j < next.length ? keyAt[j] : undefined
    if (right !== undefined && left !== undefined && right <= left) {
      inverted = true
      if (beforeRight) left = all.nearest(right, -1)
      else right = all.nearest(left, 1)
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

/**
 * The current keys, sorted once on first use: placeAround looks up the nearest key on the other side of
 * every inverted run, and a scan of all keys per run made an edit with thousands of inverted runs
 * (swapping every pair of neighbours while another client moved them) quadratic.
 */
class SortedKeys {
  private sorted: string[] | undefined
  constructor(private readonly all: Iterable<string>) {}

  /** The nearest key below (`dir` -1) or above (1) `key`; undefined when there is none. */
  nearest(key: string, dir: -1 | 1): string | undefined {
    // Sorted by code unit, as `<` compares strings.
    const keys = (this.sorted ??= [...this.all].sort())
    // Binary search: `lo` ends at the first key not below `key` (dir -1) or the first above it (dir 1).
    let lo = 0
    let hi = keys.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (dir < 0 ? keys[mid]! < key : keys[mid]! <= key) lo = mid + 1
      else hi = mid
    }
    return dir < 0 ? (lo > 0 ? keys[lo - 1] : undefined) : keys[lo]
  }
}
