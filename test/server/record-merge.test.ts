// A whole-record write merged by key, and the replay of the log it leaves: which fields keep their last
// writers decides whether a later write of one of them is concurrent (a conflict under 'manual').
import { describe, expect, it } from 'vitest'
import { encodeHlc } from '../../src/core/hlc'
import type { Op } from '../../src/core/protocol'
import { DocState } from '../../src/server/doc-state'
import type { LogEntry } from '../../src/server/storage/types'
import { makeOp } from './helpers'

const at = { now: Date.now() }
/** A stamp `ms` after `at.now`: B's writes are the later ones. */
const hlc = (ms: number, node: string) => encodeHlc({ wall: at.now + ms, counter: 0, node })

/** Two devices create card c9 offline, each with a 'manual' title sent after its record (as the client does). */
function createdTwice(): { live: DocState; entries: LogEntry[] } {
  const live = new DocState('board')
  const ops: Op[] = [
    makeOp('A', 1, ['cards', 'c9'], { notes: 'from A' }, { prev: {}, hlc: hlc(1, 'A') }),
    makeOp('A', 2, ['cards', 'c9', 'title'], 'A title', { policy: 'manual', base: { A: 1 }, hlc: hlc(2, 'A') }),
    // B saw nothing of A's: its record merges by key; its title is concurrent with A's.
    makeOp('B', 1, ['cards', 'c9'], { notes: 'from B' }, { prev: {}, hlc: hlc(3, 'B') }),
    makeOp('B', 2, ['cards', 'c9', 'title'], 'B title', { policy: 'manual', base: { B: 1 }, hlc: hlc(4, 'B') }),
  ]
  const entries = ops.map((op) => live.applyOp(op, at))
  return { live, entries }
}

describe('a record write merged by key', () => {
  it("keeps the last writers of the fields it does not hold: another device's later write of one is concurrent", () => {
    const { live, entries } = createdTwice()
    expect(entries.map((e) => e.status)).toEqual(['applied', 'applied', 'applied', 'conflict'])
    expect(live.state).toEqual({ cards: { c9: { notes: 'from B', title: 'A title' } } })
    // Marked, so that a replay decides the same; never sent to clients.
    expect(entries[2]!.keep).toBe(1)
  })

  it('replays to the same state and decisions, and an entry stored before the rule replays as it was applied', () => {
    const { live, entries } = createdTwice()
    const again = new DocState('board')
    for (const e of entries) again.replay(e)
    expect(again.state).toEqual(live.state)
    // The same next write decides the same on both (A's title was kept as a last writer by both).
    const next = makeOp('C', 1, ['cards', 'c9', 'title'], 'C title', { policy: 'manual', base: { A: 2 }, hlc: hlc(5, 'C') })
    expect(again.applyOp(next, at).status).toBe(live.applyOp({ ...next, id: next.id + 'x' }, at).status)

    // An older server applied B's record write keeping only the fields it listed, so B's title applied.
    const legacy: LogEntry[] = entries.map((e, i) => {
      const { keep: _keep, ...rest } = e
      return i === 3 ? { ...rest, status: 'applied' } : rest
    })
    const old = new DocState('board')
    for (const e of legacy) old.replay(e)
    expect(old.state).toEqual({ cards: { c9: { notes: 'from B', title: 'B title' } } })
  })
})
