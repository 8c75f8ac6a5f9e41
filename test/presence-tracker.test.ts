import { afterEach, describe, expect, it } from 'vitest'
import { PresenceTracker } from '../src/core/presence'

const trackers: PresenceTracker[] = []
afterEach(() => {
  for (const t of trackers.splice(0)) t.destroy()
})

function tracker(clock: { now: number }) {
  const t = new PresenceTracker({ clientId: 'me', user: { id: 'me' }, ttl: 30_000, throttle: 0, now: () => clock.now, send: () => {} })
  trackers.push(t)
  return t
}
const peer = (clientId: string, x: number) => ({ clientId, user: { id: clientId }, state: { x }, updatedAt: 0 })

describe('a full presence list', () => {
  it('does not drop a peer heard from just before it arrived (its update overtook the list), but drops one long silent', () => {
    // A multi-node trial: the joiner's full list came through Redis after a peer's own update, and
    // cleared it: the peer was missing for 15 s, until its next heartbeat.
    const clock = { now: 100_000 }
    const t = tracker(clock)
    t.receive({ doc: 'd', peers: [peer('old', 1)] })
    clock.now += 20_000
    t.receive({ doc: 'd', peers: [peer('fresh', 1)] })
    clock.now += 50
    t.receive({ doc: 'd', full: true, peers: [peer('other', 1)] })
    expect(t.list().map((p) => p.clientId).sort()).toEqual(['fresh', 'other'])
    // Gone for good: a later full list without it drops it once it has been silent a while.
    clock.now += 6_000
    t.receive({ doc: 'd', full: true, peers: [peer('other', 2)] })
    expect(t.list().map((p) => p.clientId)).toEqual(['other'])
  })
})
