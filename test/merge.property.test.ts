/**
 * Property tests of the joins in src/core/merge.ts (10,000 cases per property): each merge is
 * commutative, associative and idempotent, so replicas converge whatever the order and however often
 * states meet. Plus the laws the server relies on when it applies client ops: updates are inflations
 * (nothing known is forgotten), set and counter updates commute, and the visible value depends on the
 * state only. Small domains (three nodes, a few walls) make equal stamps and clashes frequent.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { deepEqual } from '../src/core/diff'
import { encodeHlc } from '../src/core/hlc'
import {
  counterValue,
  emptyIdArray,
  emptySet,
  idArrayApply,
  idArrayClashes,
  idArrayValue,
  incrementCounter,
  isIdArray,
  mergeCounter,
  mergeIdArray,
  mergeIdArrays,
  mergeLww,
  mergeObject,
  mergeSet,
  seedIdArray,
  setApply,
  setValue,
  type AwSet,
  type IdArray,
  type LwwRegister,
  type PnCounter,
} from '../src/core/merge'
import { keyBetween } from '../src/core/order-key'
import * as ref from './id-array-reference'

const RUNS = { numRuns: 10_000 }

// ---- arbitraries -----------------------------------------------------------------------------------
const node = fc.constantFrom('a', 'b', 'c')
const hlc = fc.record({ wall: fc.integer({ min: 0, max: 12 }), counter: fc.integer({ min: 0, max: 3 }), node }).map(encodeHlc)
const stampOrNever = fc.oneof(fc.constant(''), hlc)
const json = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -3, max: 3 }),
  fc.constantFrom('x', 'y', ''),
  fc.array(fc.integer({ min: 0, max: 2 }), { maxLength: 2 }),
  fc.record({ k: fc.integer({ min: 0, max: 2 }) }),
)
const lww: fc.Arbitrary<LwwRegister> = fc.record({ value: fc.oneof(fc.constant(undefined), json), hlc })

const replica = fc.constantFrom('a', 'b', 'c', '~')
const counts = fc.dictionary(replica, fc.nat({ max: 20 }), { maxKeys: 4 })
const counter: fc.Arbitrary<PnCounter> = fc.record({ p: counts, n: counts })

const element = fc.constantFrom<string | number | boolean | null>('a', 'b', 'c', 1, 2, true, null)
const set: fc.Arbitrary<AwSet> = fc.record({
  e: fc.dictionary(
    element.map((x) => JSON.stringify(x)),
    fc.record({ a: stampOrNever, r: stampOrNever }),
    { maxKeys: 5 },
  ),
})

const itemId = fc.constantFrom('i1', 'i2', 'i3', 'i4')
const item = fc.record({ id: itemId, text: fc.constantFrom('p', 'q', 'r') })
const items = fc.uniqueArray(item, { selector: (x) => x.id, maxLength: 4 })
const register = fc.record({
  v: item,
  h: hlc,
  d: stampOrNever,
  o: fc.tuple(hlc, fc.integer({ min: 0, max: 3 })).map(([h, i]) => `${h}#${String(i).padStart(4, '0')}`),
  m: fc.option(hlc, { nil: undefined }),
}).map((r) => {
  const { m, ...rest } = r
  return m === undefined ? rest : { ...rest, m }
})
const idArray: fc.Arbitrary<IdArray> = fc.record({ e: fc.dictionary(itemId.map((i) => `s:${i}`), register, { maxKeys: 4 }) })

// ---- the three laws, for every merge -------------------------------------------------------------
function laws<T>(name: string, arb: fc.Arbitrary<T>, merge: (a: T, b: T) => T): void {
  describe(name, () => {
    it('is commutative', () => {
      fc.assert(
        fc.property(arb, arb, (a, b) => deepEqual(merge(a, b), merge(b, a))),
        RUNS,
      )
    })
    it('is associative', () => {
      fc.assert(
        fc.property(arb, arb, arb, (a, b, c) => deepEqual(merge(merge(a, b), c), merge(a, merge(b, c)))),
        RUNS,
      )
    })
    it('is idempotent', () => {
      fc.assert(
        fc.property(arb, arb, (a, b) => deepEqual(merge(a, a), a) && deepEqual(merge(merge(a, b), b), merge(a, b))),
        RUNS,
      )
    })
  })
}

laws('mergeLww (last-writer-wins register)', lww, mergeLww)
laws('mergeCounter (PN-counter)', counter, mergeCounter)
laws('mergeSet (add/remove set)', set, mergeSet)
laws('mergeIdArray (id-keyed array)', idArray, mergeIdArray)

// ---- what the server's updates rely on -----------------------------------------------------------
describe('updates', () => {
  const setUpdate = fc.record({ added: fc.array(element, { maxLength: 3 }), removed: fc.array(element, { maxLength: 3 }), hlc })

  it('mergeLww keeps the later stamp, whatever the values', () => {
    fc.assert(
      fc.property(lww, lww, (a, b) => a.hlc === b.hlc || mergeLww(a, b).hlc === (a.hlc > b.hlc ? a.hlc : b.hlc)),
      RUNS,
    )
  })

  it('set updates commute and are joins with their delta', () => {
    fc.assert(
      fc.property(set, setUpdate, setUpdate, (s, u, w) => {
        const uw = setApply(setApply(s, u.added, u.removed, u.hlc), w.added, w.removed, w.hlc)
        const wu = setApply(setApply(s, w.added, w.removed, w.hlc), u.added, u.removed, u.hlc)
        const viaJoin = mergeSet(s, setApply(emptySet(), u.added, u.removed, u.hlc))
        return deepEqual(uw, wu) && deepEqual(setApply(s, u.added, u.removed, u.hlc), viaJoin) && deepEqual(setValue(uw), setValue(wu))
      }),
      RUNS,
    )
  })

  it('counter increments commute and add up', () => {
    fc.assert(
      fc.property(counter, replica, fc.integer({ min: -5, max: 5 }), replica, fc.integer({ min: -5, max: 5 }), (c, r1, d1, r2, d2) => {
        const a = incrementCounter(incrementCounter(c, r1, d1), r2, d2)
        const b = incrementCounter(incrementCounter(c, r2, d2), r1, d1)
        return deepEqual(a, b) && counterValue(a) === counterValue(c) + d1 + d2 && deepEqual(mergeCounter(a, c), a)
      }),
      RUNS,
    )
  })

  it('an id-array edit never forgets anything the state knew (it is an inflation), under every rule', () => {
    fc.assert(
      fc.property(idArray, items, items, hlc, fc.constantFrom('lww' as const, 'local' as const, 'remote' as const), (s, prev, next, h, rule) => {
        const clashes = idArrayClashes(s, 'id', prev, next)
        const after = idArrayApply(s, 'id', prev, next, h, rule, clashes)
        return deepEqual(mergeIdArray(after, s), after)
      }),
      RUNS,
    )
  })

  it('edits of different elements and concurrent inserts both survive', () => {
    fc.assert(
      fc.property(items, itemId, itemId, hlc, hlc, (base, x, y, h1, h2) => {
        fc.pre(x !== y && h1 !== h2)
        const s0 = idArrayApply(emptyIdArray(), 'id', [], base, encodeHlc({ wall: 0, counter: 0, node: '0' }))
        // Two clients edit (or insert) different elements starting from the same view.
        const one = base.some((i) => i.id === x) ? base.map((i) => (i.id === x ? { ...i, text: 'one' } : i)) : [...base, { id: x, text: 'one' }]
        const two = base.some((i) => i.id === y) ? base.map((i) => (i.id === y ? { ...i, text: 'two' } : i)) : [...base, { id: y, text: 'two' }]
        const s1 = idArrayApply(s0, 'id', base, one, h1, 'lww', idArrayClashes(s0, 'id', base, one))
        const s2 = idArrayApply(s1, 'id', base, two, h2, 'lww', idArrayClashes(s1, 'id', base, two))
        const out = idArrayValue(s2) as Array<{ id: string; text: string }>
        return out.find((i) => i.id === x)?.text === 'one' && out.find((i) => i.id === y)?.text === 'two' && idArrayClashes(s1, 'id', base, two).length === 0
      }),
      RUNS,
    )
  })

  it('no clash when nothing changed since the client saw the array', () => {
    fc.assert(
      fc.property(items, items, hlc, (base, next, h) => {
        // Nothing changed since the client's view: never a clash.
        const s = idArrayApply(emptyIdArray(), 'id', [], base, h)
        return idArrayClashes(s, 'id', base, next).length === 0 && idArrayClashes(s, 'id', base, base).length === 0
      }),
      RUNS,
    )
  })

  it('the visible value depends on the state only, not on the order keys were added', () => {
    fc.assert(
      fc.property(idArray, set, (a, b) => {
        const ra: IdArray = { e: Object.fromEntries(Object.entries(a.e).reverse()) }
        const rb: AwSet = { e: Object.fromEntries(Object.entries(b.e).reverse()) }
        return deepEqual(idArrayValue(ra), idArrayValue(a)) && deepEqual(setValue(rb), setValue(b))
      }),
      RUNS,
    )
  })
})

// ---- order: inserts and moves land where the client put them --------------------------------------
describe('order keys and moves', () => {
  const keyChars = fc.constantFrom(...'!#0123456789:abz~'.split(''))
  const key = fc.array(keyChars, { minLength: 1, maxLength: 6 }).map((cs) => cs.join(''))

  it('keyBetween lies strictly between its bounds and never ends in the zero digit', () => {
    fc.assert(
      fc.property(fc.option(key, { nil: undefined }), fc.option(key, { nil: undefined }), (x, y) => {
        const [lo, hi] = x !== undefined && y !== undefined && y < x ? [y, x] : [x, y]
        fc.pre(lo === undefined || hi === undefined || lo < hi)
        const k = keyBetween(lo ?? '', hi)
        return (lo === undefined || lo < k) && (hi === undefined || k < hi) && !k.endsWith(' ')
      }),
      RUNS,
    )
  })

  const ids = ['i1', 'i2', 'i3', 'i4', 'i5', 'i6']
  // A list and any edit of it: some elements dropped, some new, any order, some texts changed.
  const list = fc.shuffledSubarray(ids).map((xs) => xs.map((id) => ({ id, text: 'p' })))
  const edit = (base: Array<{ id: string; text: string }>) =>
    fc.tuple(fc.shuffledSubarray([...base, ...ids.filter((i) => !base.some((b) => b.id === i)).map((id) => ({ id, text: 'new' }))]), fc.array(fc.boolean(), { minLength: 6, maxLength: 6 })).map(([xs, flip]) => xs.map((x, i) => (flip[i] ? { ...x, text: 'q' } : x)))
  const stamp = (wall: number) => encodeHlc({ wall, counter: 0, node: 'a' })
  type Item = { id: string; text: string }

  it('with no concurrent edit, the array ends exactly as the client made it (inserts anywhere, moves, deletes)', () => {
    fc.assert(
      fc.property(
        list.chain((base) => fc.tuple(fc.constant(base), edit(base))),
        ([base, next]) => {
          const s0 = idArrayApply(emptyIdArray(), 'id', [], base, '0')
          const s1 = idArrayApply(s0, 'id', base, next, stamp(1))
          return deepEqual(idArrayValue(s1), next)
        },
      ),
      RUNS,
    )
  })

  it('a chain of edits keeps ending exactly as the last client made it', () => {
    fc.assert(
      fc.property(list, fc.integer(), (base, seed) => {
        let s = idArrayApply(emptyIdArray(), 'id', [], base, '0')
        let cur = base
        for (let i = 0; i < 8; i++) {
          const next = fc.sample(edit(cur), { numRuns: 1, seed: seed + i })[0]!
          s = idArrayApply(s, 'id', cur, next, stamp(i + 1))
          if (!deepEqual(idArrayValue(s), next)) return false
          cur = next
        }
        return true
      }),
      { numRuns: 1000 },
    )
  })

  it('two clients moving different elements from the same view: both moves survive', () => {
    const base = ids.map((id) => ({ id, text: 'p' }))
    const s0 = idArrayApply(emptyIdArray(), 'id', [], base, '0')
    // One drags i5 to the top, the other drags i2 to the bottom.
    const one = [base[4]!, ...base.filter((x) => x.id !== 'i5')]
    const two = [...base.filter((x) => x.id !== 'i2'), base[1]!]
    const s1 = idArrayApply(s0, 'id', base, one, stamp(1))
    const s2 = idArrayApply(s1, 'id', base, two, stamp(2))
    expect((idArrayValue(s2) as Array<{ id: string }>).map((x) => x.id)).toEqual(['i5', 'i1', 'i3', 'i4', 'i6', 'i2'])
  })

  it('swaps of neighbours made at once on both sides keep both intents, in either arrival order', () => {
    // The demo's checklist: one person moves V up one place, the other moves W down one place.
    const [w, i, v] = ['W', 'I', 'V'].map((id) => ({ id, text: 'p' })) as [Item, Item, Item]
    const base = [w, i, v]
    const s0 = idArrayApply(emptyIdArray(), 'id', [], base, '0')
    const vUp = [w, v, i]
    const wDown = [i, w, v]
    const order = (st: IdArray) => (idArrayValue(st) as Item[]).map((x) => x.id).join('')
    // V above I and W below I: only V I W has both.
    expect(order(idArrayApply(idArrayApply(s0, 'id', base, vUp, stamp(1)), 'id', base, wDown, stamp(2)))).toBe('VIW')
    expect(order(idArrayApply(idArrayApply(s0, 'id', base, wDown, stamp(1)), 'id', base, vUp, stamp(2)))).toBe('VIW')
  })

  it('two clients moving the same element: the later move wins, and a move never revives a deleted element', () => {
    const base = ids.slice(0, 4).map((id) => ({ id, text: 'p' }))
    const s0 = idArrayApply(emptyIdArray(), 'id', [], base, '0')
    const toTop = [base[3]!, ...base.slice(0, 3)]
    const afterFirst = [base[0]!, base[3]!, base[1]!, base[2]!]
    const later = idArrayApply(idArrayApply(s0, 'id', base, afterFirst, stamp(1)), 'id', base, toTop, stamp(2))
    const earlier = idArrayApply(idArrayApply(s0, 'id', base, toTop, stamp(2)), 'id', base, afterFirst, stamp(1))
    expect(idArrayValue(later)).toEqual(toTop)
    expect(idArrayValue(earlier)).toEqual(toTop)
    const deleted = idArrayApply(s0, 'id', base, base.filter((x) => x.id !== 'i4'), stamp(3))
    const moved = idArrayApply(deleted, 'id', base, toTop, stamp(4))
    expect((idArrayValue(moved) as Array<{ id: string }>).map((x) => x.id)).toEqual(['i1', 'i2', 'i3'])
  })

  it('keys stay short however many elements are prepended, appended or moved to the top one after another', () => {
    let s = idArrayApply(emptyIdArray(), 'id', [], [{ id: 'first', text: 'p' }], '0')
    let cur: Array<{ id: string; text: string }> = [{ id: 'first', text: 'p' }]
    for (let i = 1; i <= 3000; i++) {
      // A newest-first list: a new element at the top; every third op appends one at the end instead,
      // and every fifth moves the last element to the top.
      const next = i % 5 === 0 ? [cur[cur.length - 1]!, ...cur.slice(0, -1)] : i % 3 === 0 ? [...cur, { id: `n${i}`, text: 'p' }] : [{ id: `n${i}`, text: 'p' }, ...cur]
      s = idArrayApply(s, 'id', cur, next, stamp(i))
      cur = next
    }
    expect(idArrayValue(s)).toEqual(cur)
    expect(Math.max(...Object.values(s.e).map((r) => r.o.length))).toBeLessThanOrEqual(32)
  })

  it('inserting at the top or in the middle lands there (not at the end)', () => {
    const base = ids.slice(0, 3).map((id) => ({ id, text: 'p' }))
    const s0 = idArrayApply(emptyIdArray(), 'id', [], base, '0')
    const top = [{ id: 'n1', text: 'new' }, ...base]
    const s1 = idArrayApply(s0, 'id', base, top, stamp(1))
    expect(idArrayValue(s1)).toEqual(top)
    const middle = [top[0]!, top[1]!, { id: 'n2', text: 'new' }, ...top.slice(2)]
    expect(idArrayValue(idArrayApply(s1, 'id', top, middle, stamp(2)))).toEqual(middle)
  })
})

// ---- the same results as before the id-keyed merge was made fast -----------------------------------
describe('id-keyed arrays give exactly what the reference implementation gives (test/id-array-reference.ts)', () => {
  type Item = { id: string | number; t: number }
  // String and number ids, '1' and 1 among them (distinct ids for idOf).
  const pool: Array<string | number> = ['a', 'b', 'c', 'd', 'e', 'f', 'g', '1', 1, 2]
  const rules = ['lww', 'local', 'remote'] as const
  /** One change of a list; indexes are taken modulo the list's length. */
  const change = fc.oneof(
    fc.constant({ k: 'reverse' as const }),
    fc.constant({ k: 'swaps' as const }), // every pair of neighbours
    fc.record({ k: fc.constant('shuffle' as const), seed: fc.integer() }),
    fc.record({ k: fc.constant('swap' as const), i: fc.nat() }),
    fc.record({ k: fc.constant('move' as const), i: fc.nat(), j: fc.nat() }),
    fc.record({ k: fc.constant('insert' as const), i: fc.nat(), id: fc.nat(), t: fc.nat({ max: 2 }) }),
    fc.record({ k: fc.constant('delete' as const), i: fc.nat() }),
    fc.record({ k: fc.constant('edit' as const), i: fc.nat(), t: fc.nat({ max: 2 }) }),
  )
  type Change = typeof change extends fc.Arbitrary<infer C> ? C : never
  function applyChange(xs: Item[], c: Change, ids: ReadonlyArray<string | number>): Item[] {
    const out = xs.slice()
    const n = out.length
    if (c.k === 'reverse') return out.reverse()
    if (c.k === 'swaps') return out.map((x, i) => out[i ^ 1] ?? x)
    if (c.k === 'shuffle') {
      let r = c.seed
      for (let i = n - 1; i > 0; i--) {
        r = (Math.imul(r, 1103515245) + 12345) | 0
        const j = (r >>> 0) % (i + 1)
        ;[out[i], out[j]] = [out[j]!, out[i]!]
      }
      return out
    }
    if (c.k === 'insert') {
      // An id the list does not hold (if any is left): a new element, or one someone else has.
      const free = ids.filter((id) => !out.some((x) => x.id === id))
      if (free.length > 0) out.splice(c.i % (n + 1), 0, { id: free[c.id % free.length]!, t: c.t })
      return out
    }
    if (n === 0) return out
    if (c.k === 'swap') {
      const i = c.i % n
      const j = (i + 1) % n
      ;[out[i], out[j]] = [out[j]!, out[i]!]
    } else if (c.k === 'move') out.splice(c.j % n, 0, ...out.splice(c.i % n, 1))
    else if (c.k === 'delete') out.splice(c.i % n, 1)
    else out[c.i % n] = { ...out[c.i % n]!, t: c.t }
    return out
  }
  /** An op: the client saw an earlier value (`from` back in history: a stale view is a concurrent edit). */
  const op = fc.record({
    from: fc.nat({ max: 3 }),
    changes: fc.array(change, { minLength: 1, maxLength: 3 }),
    // Few walls and nodes: equal stamps, and stamps older than keys already placed.
    hlc: fc.record({ wall: fc.integer({ min: 0, max: 6 }), counter: fc.integer({ min: 0, max: 1 }), node }).map(encodeHlc),
    rule: fc.constantFrom(...rules),
  })
  const list = (ids: ReadonlyArray<string | number>, maxLength: number) => fc.shuffledSubarray([...ids], { maxLength }).map((xs) => xs.map((id) => ({ id, t: 0 })))

  /** Replays the ops with both implementations, comparing every clash list, state and value. */
  function same(ids: ReadonlyArray<string | number>, base: Item[], ops: Array<typeof op extends fc.Arbitrary<infer O> ? O : never>): void {
    let fast = seedIdArray(base, 'id')
    let slow = ref.seedIdArray(base, 'id')
    expect(fast).toStrictEqual(slow)
    const history: Item[][] = [base]
    for (const o of ops) {
      const prev = history[Math.max(0, history.length - 1 - o.from)]!
      const next = o.changes.reduce((xs, c) => applyChange(xs, c, ids), prev)
      // Ops arrive as JSON: no element is shared with the state.
      const [p, n] = JSON.parse(JSON.stringify([prev, next])) as [Item[], Item[]]
      expect(isIdArray(n, 'id')).toBe(ref.isIdArray(n, 'id'))
      const clashes = idArrayClashes(fast, 'id', p, n)
      expect(clashes).toStrictEqual(ref.idArrayClashes(slow, 'id', p, n))
      fast = idArrayApply(fast, 'id', p, n, o.hlc, o.rule, clashes)
      slow = ref.idArrayApply(slow, 'id', p, n, o.hlc, o.rule, clashes)
      expect(fast).toStrictEqual(slow)
      const value = idArrayValue(fast) as Item[]
      expect(value).toStrictEqual(ref.idArrayValue(slow))
      for (const winner of ['mine', 'theirs'] as const) expect(mergeIdArrays(p, n, value, 'id', winner)).toStrictEqual(ref.mergeIdArrays(p, n, value, 'id', winner))
      history.push(value)
    }
  }

  it('on short lists: moves, swaps, inserts, deletes and edits, concurrent or not, under every rule', () => {
    fc.assert(
      fc.property(list(pool, 8), fc.array(op, { minLength: 1, maxLength: 5 }), (base, ops) => {
        same(pool, base, ops)
      }),
      { numRuns: 3000 },
    )
  })

  it('on lists longer than the re-reading limit (256), with many inverted neighbours', () => {
    const many = Array.from({ length: 320 }, (_, i) => (i % 3 === 0 ? i : `x${i}`))
    fc.assert(
      fc.property(list(many, 320), fc.array(op, { minLength: 1, maxLength: 4 }), (base, ops) => {
        same(many, base, ops)
      }),
      { numRuns: 60 },
    )
  })

  it('keyBetween as before, for any strings (characters outside the digits, runs of the top digit)', () => {
    const char = fc.constantFrom(...' !#0P}~\u007fé\u0000'.split(''))
    const str = fc.array(char, { maxLength: 8 }).map((cs) => cs.join(''))
    fc.assert(
      fc.property(str, fc.option(str, { nil: undefined }), (a, b) => {
        const k = keyBetween(a, b)
        expect(k).toBe(ref.keyBetween(a, b))
        // And keys made one after another above the last one, as a long append after a newer key does.
        let x = k
        let y = k
        for (let i = 0; i < 20; i++) expect((x = keyBetween(x, undefined))).toBe((y = ref.keyBetween(y, undefined)))
      }),
      RUNS,
    )
  })

  it('isIdArray as before, with repeated, mixed, -0 and NaN ids', () => {
    const id = fc.constantFrom<unknown>('a', '1', 1, 0, -0, Number.NaN, 'NaN', undefined, null, true)
    const elem = fc.oneof(fc.record({ id }), fc.constant(null), fc.constant([]), fc.constant({}))
    fc.assert(
      fc.property(fc.array(elem, { maxLength: 5 }), (xs) => isIdArray(xs, 'id') === ref.isIdArray(xs, 'id')),
      RUNS,
    )
  })
})

describe('mergeObject (three-way, by key)', () => {
  // Small key and value domains, nested one level, so unchanged, one-sided and clashing keys all occur.
  const leaf = fc.constantFrom(1, 2, 'x', null, true)
  const inner = fc.dictionary(fc.constantFrom('p', 'q'), leaf, { maxKeys: 2 })
  const obj = fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd'), fc.oneof(leaf, inner), { maxKeys: 4 })
  const side = fc.constantFrom<'mine' | 'theirs'>('mine', 'theirs')
  const opts = { numRuns: 5000 }

  it('a side that changed nothing gives the other side, without clashes', () => {
    fc.assert(
      fc.property(obj, obj, side, (base, other, w) => {
        const a = mergeObject(base, base, other, w)
        const b = mergeObject(base, other, base, w)
        return deepEqual(a.value, other) && deepEqual(b.value, other) && a.clashes === 0 && b.clashes === 0
      }),
      opts,
    )
  })

  it('keeps every key only one side changed, and clashing keys go to the winner; swapping sides and winner gives the same value', () => {
    fc.assert(
      fc.property(obj, obj, obj, side, (base, mine, theirs, w) => {
        const r = mergeObject(base, mine, theirs, w)
        for (const k of new Set([...Object.keys(mine), ...Object.keys(theirs)])) {
          const [bv, mv, tv, v] = [base[k], mine[k], theirs[k], r.value[k]]
          if (deepEqual(mv, bv) && !deepEqual(v, tv)) return false
          if (deepEqual(tv, bv) && !deepEqual(v, mv)) return false
        }
        const swapped = mergeObject(base, theirs, mine, w === 'mine' ? 'theirs' : 'mine')
        return deepEqual(r.value, swapped.value) && r.clashes === swapped.clashes
      }),
      opts,
    )
  })
})
