// Writes of a whole top-level key (`cards` dropped, replaced or created at once) against writes inside
// the records under it: which is concurrent with which, what stands, and that a replay of the log decides
// the same (adversarial trial, round 2: a dropped collection came back as a partial record).
import { describe, expect, it } from 'vitest'
import { encodeHlc } from '../../src/core/hlc'
import type { Op } from '../../src/core/protocol'
import { DocState } from '../../src/server/doc-state'
import type { LogEntry } from '../../src/server/storage/types'
import { makeOp } from './helpers'

const at = { now: Date.now() }
/** A stamp `ms` after `at.now`. */
const hlc = (ms: number, node: string) => encodeHlc({ wall: at.now + ms, counter: 0, node })

/** Card a created by A (op A:1), seen by both B and C. */
function seeded(): { doc: DocState; entries: LogEntry[] } {
  const doc = new DocState('board')
  const entries = [doc.applyOp(makeOp('A', 1, ['cards', 'a'], { title: 'T', n: 1 }, { prev: {}, hlc: hlc(1, 'A') }), at)]
  return { doc, entries }
}

/** The state `entries` replay to, and the state they replay to without `mark` (a log stored before its rule). */
function replayed(entries: LogEntry[], mark: 'records' | 'removal'): { now: unknown; before: unknown } {
  const now = new DocState('board')
  const before = new DocState('board')
  for (const e of entries) {
    now.replay(e)
    const { [mark]: _m, ...rest } = e
    before.replay(rest)
  }
  return { now: now.state, before: before.state }
}

const drop = (client: string, n: number, ms: number, base: Record<string, number>): Op => ({ ...makeOp(client, n, ['cards'], undefined, { base, hlc: hlc(ms, client) }), op: 'remove' })
const editN = (client: string, n: number, ms: number, base: Record<string, number>, value = 2): Op => makeOp(client, n, ['cards', 'a', 'n'], value, { op: 'replace', base, hlc: hlc(ms, client) })

describe('a write of a whole top-level key', () => {
  it('drops the records under it for good: a concurrent edit inside one arriving later is superseded, whatever its stamp', () => {
    const { doc } = seeded()
    expect(doc.applyOp(drop('B', 1, 10, { A: 1 }), at).status).toBe('applied')
    // C had not seen the drop; its edit is later in time. Before, it brought back { cards: { a: { n: 3 } } }.
    const e = doc.applyOp(editN('C', 1, 20, { A: 1 }, 3), at)
    expect(e.status).toBe('superseded')
    expect(doc.state).toEqual({})
  })

  it('races with an unseen edit inside a record that reached the server first: the later stamp wins', () => {
    // The drop is older than C's edit: it is superseded, the card keeps C's edit.
    const older = seeded().doc
    older.applyOp(editN('C', 1, 20, { A: 1 }), at)
    expect(older.applyOp(drop('B', 1, 10, { A: 1 }), at).status).toBe('superseded')
    expect(older.state).toEqual({ cards: { a: { title: 'T', n: 2 } } })
    // The drop is newer: it applies. Before, it was never checked against the edit (only the key's own writes).
    const newer = seeded().doc
    newer.applyOp(editN('C', 1, 10, { A: 1 }), at)
    expect(newer.applyOp(drop('B', 1, 20, { A: 1 }), at).status).toBe('applied')
    expect(newer.state).toEqual({})
  })

  it('replaced whole, keeps a record it changed from an older concurrent edit inside it; one it left alone takes the edit', () => {
    const { doc } = seeded()
    doc.applyOp(makeOp('A', 2, ['cards', 'b'], { title: 'U', n: 1 }, { prev: {}, base: {}, hlc: hlc(2, 'A') }), at)
    // B replaces the collection with a non-object and back: a whole write of cards that keeps b as it was
    // and changes a.
    const whole = makeOp('B', 1, ['cards'], { a: { title: 'T2', n: 1 }, b: { title: 'U', n: 1 } }, { op: 'replace', base: { A: 2 }, hlc: hlc(30, 'B') })
    expect(doc.applyOp(whole, at).status).toBe('applied')
    // C, who had not seen B's write, edits n in both cards, with older stamps than B's.
    expect(doc.applyOp(editN('C', 1, 20, { A: 2 }, 5), at).status).toBe('superseded')
    expect(doc.applyOp(makeOp('C', 2, ['cards', 'b', 'n'], 5, { op: 'replace', base: { A: 2 }, hlc: hlc(21, 'C') }), at).status).toBe('applied')
    expect(doc.state).toEqual({ cards: { a: { title: 'T2', n: 1 }, b: { title: 'U', n: 5 } } })
  })

  it('is no conflict for a write made after seeing it: a record created again applies', () => {
    const { doc } = seeded()
    doc.applyOp(drop('B', 1, 10, { A: 1 }), at)
    // C saw the drop (its vector for the key names B:1) and creates card a again, then edits it.
    expect(doc.applyOp(makeOp('C', 1, ['cards', 'a'], { title: 'new' }, { prev: {}, base: { A: 1, B: 1 }, hlc: hlc(20, 'C') }), at).status).toBe('applied')
    expect(doc.applyOp(editN('C', 2, 21, { A: 1, B: 1, C: 1 }, 7), at).status).toBe('applied')
    expect(doc.state).toEqual({ cards: { a: { title: 'new', n: 7 } } })
  })

  it('created by two devices offline, merges by key', () => {
    const doc = new DocState('board')
    expect(doc.applyOp(makeOp('A', 1, ['lists'], { x: { name: 'X' } }, { prev: {}, hlc: hlc(1, 'A') }), at).status).toBe('applied')
    expect(doc.applyOp(makeOp('B', 1, ['lists'], { y: { name: 'Y' } }, { prev: {}, hlc: hlc(2, 'B') }), at).status).toBe('applied')
    expect(doc.state).toEqual({ lists: { x: { name: 'X' }, y: { name: 'Y' } } })
  })

  it('replays to the same state and decisions; an entry stored before the rule replays as it was applied', () => {
    const { doc: live, entries } = seeded()
    entries.push(live.applyOp(drop('B', 1, 10, { A: 1 }), at))
    entries.push(live.applyOp(editN('C', 1, 20, { A: 1 }, 3), at))
    expect(entries[1]!.records).toBe(1)
    const again = new DocState('board')
    for (const e of entries) again.replay(e)
    expect(again.state).toEqual(live.state)
    const next = editN('D', 1, 30, { A: 1 }, 4)
    expect(again.applyOp(next, at).status).toBe(live.applyOp({ ...next, id: next.id + 'x' }, at).status)

    // A server before the rule applied C's edit into the dropped collection (and logged the part of its
    // base it consulted, A's entry): its log replays so.
    const legacy = entries.map((e, i) => {
      const { records: _records, ...rest } = e
      return i === 2 ? { ...rest, status: 'applied' as const, op: { ...rest.op, base: { A: 1 } } } : rest
    })
    const old = new DocState('board')
    for (const e of legacy) old.replay(e)
    expect(old.state).toEqual({ cards: { a: { n: 3 } } })
  })
})

describe('a record only an initial state held, edited whole after someone deleted it', () => {
  it('is superseded (the deletion stands); replay decides the same, and a log from before the rule replays as applied', () => {
    const live = new DocState('board')
    const ops: Op[] = [
      makeOp('A', 1, ['cards', 'c1'], { title: 'default', notes: 'A' }, { prev: { title: 'default', notes: '' }, hlc: hlc(1, 'A') }),
      { ...makeOp('A', 2, ['cards', 'c1'], undefined, { base: { A: 1 }, hlc: hlc(2, 'A') }), op: 'remove' },
      // B never saw either: its first edit of its own default copy goes whole, later than the deletion.
      makeOp('B', 1, ['cards', 'c1'], { title: 'default', notes: 'B' }, { prev: { title: 'default', notes: '' }, hlc: hlc(3, 'B') }),
    ]
    const entries = ops.map((op) => live.applyOp(op, at))
    expect(entries.map((e) => e.status)).toEqual(['applied', 'applied', 'superseded'])
    expect(live.state).toEqual({ cards: {} })
    expect(entries[2]!.records).toBe(1)
    const replay = replayed(entries, 'records')
    expect(replay.now).toEqual(live.state)
    expect(replay.before).toEqual({ cards: { c1: { title: 'default', notes: 'B' } } })
  })
})

describe("a record's removal against edits inside the record that it had not seen", () => {
  const removeCard = (client: string, n: number, ms: number, base: Record<string, number>): Op => ({ ...makeOp(client, n, ['cards', 'a'], undefined, { base, hlc: hlc(ms, client) }), op: 'remove' })

  it('stands whichever reaches the server first, even against a later-stamped edit (records and the arrays listing them agree); replay decides the same, and a log from before the rule replays as it was decided', () => {
    // B removes card a at 10 ms; C, not having seen that, edits a field of it at 20 ms.
    const deleteFirst = seeded().doc
    expect(deleteFirst.applyOp(removeCard('B', 1, 10, { A: 1 }), at).status).toBe('applied')
    expect(deleteFirst.applyOp(editN('C', 1, 20, { A: 1 }), at).status).toBe('superseded')
    expect(deleteFirst.state).toEqual({ cards: {} })

    // The later edit first: before the rule, the removal was superseded and the card stayed with C's edit.
    const { doc: editFirst, entries } = seeded()
    entries.push(editFirst.applyOp(editN('C', 1, 20, { A: 1 }), at))
    const removal = editFirst.applyOp(removeCard('B', 1, 10, { A: 1 }), at)
    entries.push(removal)
    expect(removal.status).toBe('applied')
    expect(removal.removal).toBe(1)
    expect(editFirst.state).toEqual({ cards: {} })

    const replay = replayed(entries, 'removal')
    expect(replay.now).toEqual(editFirst.state)
    expect(replay.before).toEqual({ cards: { a: { title: 'T', n: 2 } } })
  })

  it("does not stand against a whole write of the record it had not seen (a later re-creation wins by its stamp), nor under 'remote'", () => {
    const { doc } = seeded()
    // C writes the whole record again at 20 ms (unseen by B), then B's older removal arrives.
    doc.applyOp(makeOp('C', 1, ['cards', 'a'], { title: 'again' }, { base: { A: 1 }, hlc: hlc(20, 'C') }), at)
    expect(doc.applyOp(removeCard('B', 1, 10, { A: 1 }), at).status).toBe('superseded')
    expect(doc.state).toEqual({ cards: { a: { title: 'again' } } })

    const remote = seeded().doc
    remote.applyOp(editN('C', 1, 20, { A: 1 }), at)
    expect(remote.applyOp({ ...removeCard('B', 1, 30, { A: 1 }), policy: 'remote' }, at).status).toBe('superseded')
    expect(remote.state).toEqual({ cards: { a: { title: 'T', n: 2 } } })
  })
})
