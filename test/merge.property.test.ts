/**
 * Property tests of the joins in src/core/merge.ts (10,000 cases per property): each merge is
 * commutative, associative and idempotent, so replicas converge whatever the order and however often
 * states meet. Plus the laws the server relies on when it applies client ops: updates are inflations
 * (nothing known is forgotten), set and counter updates commute, and the visible value depends on the
 * state only. Small domains (three nodes, a few walls) make equal stamps and clashes frequent.
 */
import fc from 'fast-check'
import { describe, it } from 'vitest'
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
  mergeCounter,
  mergeIdArray,
  mergeLww,
  mergeSet,
  setApply,
  setValue,
  type AwSet,
  type IdArray,
  type LwwRegister,
  type PnCounter,
} from '../src/core/merge'

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
