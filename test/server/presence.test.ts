// Presence on the server: stamped with the authenticated user (no impersonation), at most 4 KB,
// rate-limited, gone after its TTL and on disconnect.
import { afterAll, describe, expect, it } from 'vitest'
import type { Socket } from 'socket.io-client'
import type { PresenceMessage, PresencePeer } from '../../src/core/protocol'
import { createSyncServer, type SyncServer, type SyncServerOptions } from '../../src/server/index'
import { makeBoard, waitFor } from '../helpers'
import { ask, connectRaw } from './helpers'

const servers: SyncServer[] = []
const cleanups: Array<() => unknown> = []
afterAll(async () => {
  for (const c of cleanups.reverse()) await c()
  for (const s of servers) await s.close()
})

const PEOPLE: Record<string, { id: string; name: string; color: string; email: string; token: string; role: string }> = {
  'tok-alice': { id: 'alice', name: 'Alice', color: '#f00', email: 'alice@example.test', token: 'tok-alice', role: 'admin' },
  'tok-bob': { id: 'bob', name: 'Bob', color: '#00f', email: 'bob@example.test', token: 'tok-bob', role: 'user' },
  'tok-eve': { id: 'eve', name: 'Eve', color: '#0f0', email: 'eve@example.test', token: 'tok-eve', role: 'user' },
}

async function server(opts: Partial<SyncServerOptions> = {}) {
  const s = await createSyncServer({
    port: 0,
    storage: { kind: 'memory' },
    logLevel: 'silent',
    authenticate: ({ auth }) => {
      const p = PEOPLE[String(auth.token)]
      if (!p) throw new Error('who are you')
      return p
    },
    ...opts,
  })
  servers.push(s)
  return s
}

interface Peer {
  sock: Socket
  got: PresenceMessage[]
  /** The latest state of every other peer, as this one sees it. */
  view(): Map<string, PresencePeer | null>
}

async function peer(url: string, token: string, doc = 'room'): Promise<Peer> {
  const sock = await connectRaw(url, { auth: { token } })
  cleanups.push(() => sock.disconnect())
  const got: PresenceMessage[] = []
  sock.on('zync:presence', (m: PresenceMessage) => got.push(m))
  expect((await ask(sock, 'zync:join', { v: 2, doc, client: `c-${token}`, since: 0 })).ok).toBe(true)
  return {
    sock,
    got,
    view: () => {
      const v = new Map<string, PresencePeer | null>()
      for (const m of got) {
        if (m.full) v.clear()
        for (const p of m.peers) v.set(p.clientId, p.state === null ? null : (p as PresencePeer))
      }
      return v
    },
  }
}
const live = (p: Peer) => [...p.view().values()].filter((x): x is PresencePeer => x !== null)

describe('presence', () => {
  it('is stamped with the authenticated user; every impersonation attempt fails', async () => {
    const s = await server()
    const alice = await peer(s.url, 'tok-alice')
    const eve = await peer(s.url, 'tok-eve')
    type A = { ok: boolean; code?: string }
    // 1. a user object inside the state: kept as app data, the stamp says eve.
    expect(await ask<A>(eve.sock, 'zync:presence', { doc: 'room', state: { cursor: 1, user: { id: 'alice', name: 'Alice' }, userId: 'alice' } })).toEqual({ ok: true })
    // 2. a user field next to the state: refused.
    expect(await ask<A>(eve.sock, 'zync:presence', { doc: 'room', state: { cursor: 2 }, user: { id: 'alice' } })).toMatchObject({ ok: false, code: 'BAD_REQUEST' })
    // 3. a clientId of alice's socket: refused (not a field of the message).
    expect(await ask<A>(eve.sock, 'zync:presence', { doc: 'room', state: { cursor: 3 }, clientId: alice.sock.id })).toMatchObject({ ok: false, code: 'BAD_REQUEST' })
    // 4. clearing someone else's presence: only one's own entry can be cleared.
    expect(await ask<A>(alice.sock, 'zync:presence', { doc: 'room', state: { cursor: 10 } })).toEqual({ ok: true })
    expect(await ask<A>(eve.sock, 'zync:presence', { doc: 'room', state: null, clientId: alice.sock.id })).toMatchObject({ ok: false, code: 'BAD_REQUEST' })
    // 5. presence in a room eve has not joined.
    expect(await ask<A>(eve.sock, 'zync:presence', { doc: 'other-room', state: { x: 1 } })).toMatchObject({ ok: false, code: 'NOT_JOINED' })

    await waitFor(() => live(alice).some((p) => p.state.cursor === 1), 5000, 'alice sees eve')
    const seen = live(alice).find((p) => p.state.cursor === 1)!
    expect(seen.clientId).toBe(eve.sock.id)
    // The stamp is the authenticated user's public fields only: no email, role or token.
    expect(seen.user).toEqual({ id: 'eve', name: 'Eve', color: '#0f0' })
    await waitFor(() => live(eve).some((p) => p.state.cursor === 10), 5000, 'eve sees alice')
    expect(live(eve).find((p) => p.state.cursor === 10)!.user.id).toBe('alice')
    // Alice's entry survived eve's attempt to clear it.
    expect(live(eve).filter((p) => p.user.id === 'alice')).toHaveLength(1)
    // Every entry anyone received carries the id of the socket's authenticated user.
    const ids = new Map([[alice.sock.id, 'alice'], [eve.sock.id, 'eve']])
    for (const m of [...alice.got, ...eve.got]) for (const p of m.peers) if (p.state !== null) expect((p as PresencePeer).user.id).toBe(ids.get(p.clientId))
  })

  it('is at most 4 KB and rate-limited per socket', async () => {
    const s = await server({ limits: { presencePerSecond: 4 } })
    const bob = await peer(s.url, 'tok-bob')
    type A = { ok: boolean; code?: string; retryable?: boolean }
    // {"pad":"..."} is 10 bytes of JSON around the string.
    expect(await ask<A>(bob.sock, 'zync:presence', { doc: 'room', state: { pad: 'x'.repeat(4096 - 10) } })).toEqual({ ok: true })
    expect(await ask<A>(bob.sock, 'zync:presence', { doc: 'room', state: { pad: 'x'.repeat(4096 - 9) } })).toMatchObject({ ok: false, code: 'TOO_LARGE' })
    const burst = await Promise.all(Array.from({ length: 8 }, (_, i) => ask<A>(bob.sock, 'zync:presence', { doc: 'room', state: { i } })))
    expect(burst.filter((a) => a.code === 'RATE_LIMITED' && a.retryable).length).toBeGreaterThanOrEqual(4)
    await new Promise((r) => setTimeout(r, 600))
    expect(await ask<A>(bob.sock, 'zync:presence', { doc: 'room', state: { later: true } })).toEqual({ ok: true })
  })

  it('setPresence() refuses what the server would not take with a typed error, at the call, and keeps the last state', async () => {
    // Found by a presence trial: a BigInt threw from the throttle's timer (crashing Node, then again on
    // every heartbeat); a state over the server's limit was dropped by it in silence (over maxPayload, a
    // reconnect loop that held edits back), while the sender showed it as its own.
    const s = await server({ limits: { presenceBytes: 1000 } })
    const a = makeBoard({ url: s.url, storage: 'memory', auth: { token: 'tok-alice' } })
    cleanups.push(() => a.sync.destroy())
    await waitFor(() => a.sync.status().connection === 'online', 5000, 'online')
    a.sync.setPresence({ cursor: 1 })
    const code = (state: unknown) => {
      try {
        a.sync.setPresence(state as Record<string, unknown>)
        return 'accepted'
      } catch (err) {
        return `${(err as Error).constructor.name} ${(err as { code?: string }).code}`
      }
    }
    expect(code({ id: 10n })).toBe('ZyncError BAD_REQUEST')
    expect(code({ at: new Date() })).toBe('ZyncError BAD_REQUEST')
    expect(code({ x: Number.NaN })).toBe('ZyncError BAD_REQUEST')
    expect(code([1, 2])).toBe('ZyncError BAD_REQUEST')
    const loop: Record<string, unknown> = {}
    loop.self = loop
    expect(code(loop)).toBe('ZyncError BAD_REQUEST')
    expect(code({ __proto__: null, constructor: 1 })).toBe('ZyncError UNSAFE_PATH')
    // The server's own limit, from its join answer (1000 bytes here, not the 4 KB default).
    expect(code({ pad: 'x'.repeat(1200) })).toBe('ZyncError TOO_LARGE')
    expect(a.sync.presence().find((p) => p.self)?.state).toEqual({ cursor: 1 })
    expect(code({ cursor: 2 })).toBe('accepted')
  })

  it("a presence the server refuses is not refused in silence: 'presence:error' with the code (at most once a second) and one warning", async () => {
    // Presence goes without an ack (one message per cursor move): a refusal by the server's authorize
    // reached no one, and the app showed a cursor nobody else saw.
    const s = await server({ authorize: (user, _doc, action) => action !== 'presence' || user.id !== 'bob' })
    const warnings: string[] = []
    const bob = makeBoard({ name: 'pres-refused', url: s.url, storage: 'memory', auth: { token: 'tok-bob' }, onWarning: (m) => warnings.push(m) })
    const alice = makeBoard({ name: 'pres-refused', url: s.url, storage: 'memory', auth: { token: 'tok-alice' } })
    cleanups.push(() => bob.sync.destroy(), () => alice.sync.destroy())
    const errors: string[] = []
    bob.sync.on('presence:error', ({ error }) => errors.push(`${error.constructor.name} ${error.code}`))
    await waitFor(() => bob.sync.status().connection === 'online' && alice.sync.status().connection === 'online', 5000, 'online')
    bob.sync.setPresence({ cursor: 1 })
    await waitFor(() => errors.length === 1, 3000, 'presence:error')
    expect(errors).toEqual(['ZyncError FORBIDDEN'])
    for (let i = 2; i < 6; i++) {
      bob.sync.setPresence({ cursor: i })
      await new Promise((r) => setTimeout(r, 60))
    }
    // Refused again, but told at most once a second; warned once.
    expect(errors.length).toBe(1)
    expect(warnings.filter((w) => w.includes('refused') && w.includes('presence'))).toHaveLength(1)
    await new Promise((r) => setTimeout(r, 1100))
    bob.sync.setPresence({ cursor: 9 })
    await waitFor(() => errors.length === 2, 3000, 'told again after a second')
    // Alice, allowed, is seen by Bob; Bob is not seen by Alice.
    alice.sync.setPresence({ cursor: 3 })
    await waitFor(() => bob.sync.presence().some((p) => !p.self && p.user.id === 'alice'), 3000, 'bob sees alice')
    expect(alice.sync.presence().some((p) => !p.self && p.user.id === 'bob')).toBe(false)
  })

  it("a throttle below the server's rate is raised to it: the last of a fast stream of updates is never refused and lost", async () => {
    // Found by a presence trial: with `throttle: 16` (60 Hz) the server refused updates over its
    // 20/s, and peers kept a stale position until the next heartbeat (up to 15 s).
    const s = await server({ limits: { presencePerSecond: 10 } })
    const a = makeBoard({ url: s.url, storage: 'memory', auth: { token: 'tok-alice' }, presence: { throttle: 0 } })
    const b = makeBoard({ url: s.url, storage: 'memory', auth: { token: 'tok-bob' } })
    cleanups.push(() => a.sync.destroy(), () => b.sync.destroy())
    const watching = b.sync.subscribePresence(() => {})
    cleanups.push(watching)
    await waitFor(() => a.sync.status().connection === 'online' && b.sync.status().connection === 'online', 5000, 'online')
    for (let i = 1; i <= 60; i++) {
      a.sync.setPresence({ x: i })
      await new Promise((r) => setTimeout(r, 16))
    }
    await waitFor(() => b.sync.presence().some((p) => !p.self && p.state.x === 60), 1500, 'the last position seen')
  })

  /** A raw connection of `token`'s user that joins 'room' as store `client` and sets `state`. */
  async function present(url: string, token: string, client: string, state: Record<string, unknown>) {
    const sock = await connectRaw(url, { auth: { token } })
    cleanups.push(() => sock.disconnect())
    expect((await ask(sock, 'zync:join', { v: 2, doc: 'room', client, since: 0 })).ok).toBe(true)
    await ask(sock, 'zync:presence', { doc: 'room', state })
    return sock
  }

  it("a store's new connection replaces its old one's presence at once (no ghost while the old socket times out)", async () => {
    // Found by a presence trial: after a half-open connection (a network change) the store reconnected,
    // and peers showed it twice, the old entry a frozen cursor, for ~19 s until the old socket timed out.
    const s = await server()
    const watcher = await peer(s.url, 'tok-bob')
    const old = await present(s.url, 'tok-alice', 'store-1', { cursor: 1 })
    await waitFor(() => live(watcher).some((p) => p.clientId === old.id), 3000, 'old entry seen')
    // The same store (client id) on a new socket, while the old one is still open (half-open to the server).
    const fresh = await present(s.url, 'tok-alice', 'store-1', { cursor: 2 })
    await waitFor(() => live(watcher).some((p) => p.clientId === fresh.id), 3000, 'new entry seen')
    expect(old.connected).toBe(true)
    expect(live(watcher).map((p) => p.state)).toEqual([{ cursor: 2 }])
    // Another store of the same user keeps its own entry.
    await present(s.url, 'tok-alice', 'store-2', { cursor: 3 })
    await waitFor(() => live(watcher).length === 2, 3000, 'two entries')
  })

  it("another user joining with someone's client id (public: change records name it) does not clear their presence", async () => {
    // Found by an auth trial: one join a second with alice's client id kept her hidden 19 s in 20.
    const s = await server()
    const watcher = await peer(s.url, 'tok-bob')
    const alice = await present(s.url, 'tok-alice', 'alice-store', { cursor: 1 })
    await waitFor(() => live(watcher).some((p) => p.clientId === alice.id), 3000, 'alice seen')
    const eve = await present(s.url, 'tok-eve', 'alice-store', { cursor: 9 })
    await waitFor(() => live(watcher).some((p) => p.clientId === eve.id), 3000, 'eve seen')
    expect(live(watcher).map((p) => [p.user.id, p.state])).toEqual([
      ['alice', { cursor: 1 }],
      ['eve', { cursor: 9 }],
    ])
  })

  it('expires after its TTL without a heartbeat, and late joiners never see expired entries', async () => {
    const s = await server({ presenceTtl: 400 })
    const alice = await peer(s.url, 'tok-alice')
    const bob = await peer(s.url, 'tok-bob')
    await ask(alice.sock, 'zync:presence', { doc: 'room', state: { typing: true } })
    await waitFor(() => live(bob).length === 1, 5000, 'bob sees alice')
    await waitFor(() => live(bob).length === 0, 3000, 'alice expired for bob')
    const late = await peer(s.url, 'tok-eve')
    await new Promise((r) => setTimeout(r, 100))
    expect(late.got.find((m) => m.full)?.peers).toEqual([])
    expect(await s.metrics()).toMatch(/zync_presence_entries 0/)
  })

  it('a server TTL shorter than the clients\' heartbeat never drops a live store: the join answer tells the client to beat faster', async () => {
    const s = await server({ presenceTtl: 600 })
    // Stores keep their default presence ttl (30 s: a heartbeat every 15 s), far longer than the server's.
    const a = makeBoard({ name: 'pres-ttl', url: s.url, auth: { token: 'tok-alice' } })
    const b = makeBoard({ name: 'pres-ttl', url: s.url, auth: { token: 'tok-bob' } })
    cleanups.push(() => a.sync.destroy(), () => b.sync.destroy())
    await waitFor(() => a.sync.status().connection === 'online' && b.sync.status().connection === 'online', 5000, 'online')
    a.sync.setPresence({ typing: true })
    const sees = () => b.sync.presence().some((p) => !p.self && p.user.id === 'alice')
    await waitFor(sees, 5000, 'b sees a')
    // Three server TTLs later, alice is still there all along.
    for (let t = 0; t < 18; t++) {
      await new Promise((r) => setTimeout(r, 100))
      expect(sees(), `after ${(t + 1) * 100} ms`).toBe(true)
    }
    expect(await s.metrics()).toMatch(/zync_presence_entries [12]\b/)
  })

  it('a disconnecting socket is not sent its own departure (a browser that sent its close frame logs "Data frame received after close")', async () => {
    const s = await server()
    const sentAfterClose: string[] = []
    s.io.on('connection', (sock) => {
      let closing = false
      // The client's disconnect packet (socket.io type 1), as the engine receives it: before any handler runs.
      sock.conn.on('packet', (packet: { type: string; data?: unknown }) => {
        if (packet.type === 'message' && String(packet.data).startsWith('1')) closing = true
      })
      sock.conn.on('packetCreate', (packet: { type: string; data?: unknown }) => {
        if (closing && packet.type === 'message') sentAfterClose.push(String(packet.data))
      })
    })
    const alice = await peer(s.url, 'tok-alice')
    const bob = await peer(s.url, 'tok-bob')
    await ask(alice.sock, 'zync:presence', { doc: 'room', state: { here: 1 } })
    await waitFor(() => live(bob).length === 1, 5000, 'bob sees alice')
    alice.sock.disconnect()
    await waitFor(() => live(bob).length === 0, 5000, 'alice gone for bob')
    expect(sentAfterClose).toEqual([])
  })

  it('vanishes on disconnect and on leave', async () => {
    const s = await server()
    const alice = await peer(s.url, 'tok-alice')
    const bob = await peer(s.url, 'tok-bob')
    const eve = await peer(s.url, 'tok-eve')
    await ask(alice.sock, 'zync:presence', { doc: 'room', state: { here: 1 } })
    await ask(eve.sock, 'zync:presence', { doc: 'room', state: { here: 2 } })
    await waitFor(() => live(bob).length === 2, 5000, 'bob sees both')
    expect(await s.metrics()).toMatch(/zync_presence_entries 2/)
    alice.sock.disconnect()
    await waitFor(() => live(bob).length === 1, 5000, 'alice gone on disconnect')
    await ask(eve.sock, 'zync:leave', { doc: 'room' })
    await waitFor(() => live(bob).length === 0, 5000, 'eve gone on leave')
    const late = await peer(s.url, 'tok-alice')
    await new Promise((r) => setTimeout(r, 100))
    expect(late.got.find((m) => m.full)?.peers).toEqual([])
  })

  it('reaches stores: the peer list shows the authenticated user, not what the client claims', async () => {
    const s = await server()
    const a = makeBoard({ name: 'pres-store', url: s.url, auth: { token: 'tok-eve' }, user: { id: 'alice', name: 'Alice (fake)' } })
    const b = makeBoard({ name: 'pres-store', url: s.url, auth: { token: 'tok-bob' } })
    cleanups.push(() => a.sync.destroy(), () => b.sync.destroy())
    await waitFor(() => a.sync.status().connection === 'online' && b.sync.status().connection === 'online', 5000, 'online')
    a.sync.setPresence({ cursor: 7 })
    await waitFor(() => b.sync.presence().some((p) => !p.self && (p.state as { cursor?: number }).cursor === 7), 5000, 'b sees a')
    const other = b.sync.presence().find((p) => !p.self)!
    expect(other.user.id).toBe('eve')
    expect(other.user.name).toBe('Eve')
    // Its own entry says so too: it showed the `user` option (or the client id without one), which no
    // one else saw (a new-user trial's app showed "_joFvMnVIKyGCne7 (you)").
    expect(a.sync.presence().find((p) => p.self)!.user).toEqual({ id: 'eve', name: 'Eve', color: '#0f0' })
    b.sync.setPresence({ cursor: 1 })
    await waitFor(() => b.sync.presence().some((p) => p.self), 5000, 'b present')
    expect(b.sync.presence().find((p) => p.self)!.user).toEqual({ id: 'bob', name: 'Bob', color: '#00f' })
  })

  it('a store that watches presence is present without setPresence (state {}); one that never looks sends nothing; setPresence(null) leaves', async () => {
    const s = await server({ authenticate: undefined })
    const a = makeBoard({ name: 'pres-default', url: s.url, user: { id: 'ada', name: 'Ada' } })
    const b = makeBoard({ name: 'pres-default', url: s.url, user: { id: 'grace', name: 'Grace' } })
    const quiet = makeBoard({ name: 'pres-default', url: s.url, user: { id: 'quiet' } })
    cleanups.push(() => a.sync.destroy(), () => b.sync.destroy(), () => quiet.sync.destroy())
    // What usePresence and PresenceAvatars do.
    a.sync.subscribePresence(() => {})
    b.sync.subscribePresence(() => {})
    await waitFor(() => b.sync.presence().some((p) => !p.self && p.user.id === 'ada'), 5000, 'b sees a without setPresence')
    await waitFor(() => a.sync.presence().some((p) => !p.self && p.user.id === 'grace'), 5000, 'a sees b')
    await waitFor(() => quiet.sync.status().connection === 'online', 5000, 'quiet online')
    await new Promise((r) => setTimeout(r, 100))
    expect(a.sync.presence().map((p) => p.user.id).sort()).toEqual(['ada', 'grace'])
    expect(b.sync.presence().find((p) => !p.self)).toMatchObject({ user: { id: 'ada', name: 'Ada' }, state: {} })
    expect(a.sync.presence().find((p) => p.self)).toMatchObject({ self: true, user: { id: 'ada', name: 'Ada' }, state: {} })
    a.sync.setPresence(null)
    await waitFor(() => !b.sync.presence().some((p) => !p.self), 5000, 'a left')
    expect(a.sync.presence().some((p) => p.self)).toBe(false)
  })

  it("entries keep their identity while a peer is unchanged: another peer's move or a heartbeat leaves them as they were (a selector keeping some peers re-rendered at everyone's cursor)", async () => {
    const s = await server({ authenticate: undefined, presenceTtl: 400 })
    const opts = { name: 'pres-stable', url: s.url, presence: { ttl: 400 } }
    const a = makeBoard({ ...opts, user: { id: 'ada', name: 'Ada' } })
    const b = makeBoard({ ...opts, user: { id: 'ben', name: 'Ben' } })
    const c = makeBoard({ ...opts, user: { id: 'cy', name: 'Cy' } })
    cleanups.push(() => a.sync.destroy(), () => b.sync.destroy(), () => c.sync.destroy())
    let calls = 0
    a.sync.subscribePresence(() => calls++)
    b.sync.setPresence({ focus: 'title' })
    c.sync.setPresence({ cursor: 0 })
    const peer = (id: string) => a.sync.presence().find((p) => p.user.id === id)
    await waitFor(() => (peer('ben')?.state as { focus?: string })?.focus === 'title' && (peer('cy')?.state as { cursor?: number })?.cursor === 0, 5000, 'a sees both')
    const ben = peer('ben')!
    const self = a.sync.presence().find((p) => p.self)!
    c.sync.setPresence({ cursor: 1 })
    await waitFor(() => (peer('cy')?.state as { cursor?: number })?.cursor === 1, 5000, 'cy moved')
    expect(peer('ben')).toBe(ben)
    expect(a.sync.presence().find((p) => p.self)).toBe(self)
    // Heartbeats (every 200 ms here) of unchanged peers: no notification, the same entries, still alive.
    const list = a.sync.presence()
    const before = calls
    await new Promise((r) => setTimeout(r, 700))
    expect(calls).toBe(before)
    expect(a.sync.presence()).toBe(list)
    expect(peer('ben')).toBe(ben)
  })

  it('a client leaves about a second after its last presence subscription closes (a route without presence), and a new one makes it present again, even after setPresence(null)', async () => {
    const s = await server({ authenticate: undefined })
    const a = makeBoard({ name: 'pres-watch', url: s.url, user: { id: 'ada', name: 'Ada' } })
    const b = makeBoard({ name: 'pres-watch', url: s.url, user: { id: 'ben', name: 'Ben' } })
    cleanups.push(() => a.sync.destroy(), () => b.sync.destroy())
    b.sync.subscribePresence(() => {})
    const seesAda = () => b.sync.presence().some((p) => p.user.id === 'ada')
    let off = a.sync.subscribePresence(() => {})
    a.sync.setPresence({ cursor: 1 })
    await waitFor(seesAda, 5000, 'ben sees ada')
    // StrictMode's second effect, or a route that swaps one presence component for another: no flicker.
    off()
    off = a.sync.subscribePresence(() => {})
    await new Promise((r) => setTimeout(r, 1300))
    expect(seesAda()).toBe(true)
    // The last one goes: she leaves.
    off()
    await waitFor(() => !seesAda(), 5000, 'ada left')
    expect(a.sync.presence().some((p) => p.self)).toBe(false)
    // Back on a route with presence: present again.
    off = a.sync.subscribePresence(() => {})
    await waitFor(seesAda, 5000, 'ada back')
    // An app that left on purpose in its cleanup, then mounts presence again, is present again.
    a.sync.setPresence(null)
    off()
    await waitFor(() => !seesAda(), 5000, 'ada left on purpose')
    off = a.sync.subscribePresence(() => {})
    await waitFor(seesAda, 5000, 'ada back after setPresence(null)')
    // A destroyed store shows nobody (hooks still mounted on it read an empty list), and is gone for ben.
    await a.sync.destroy()
    expect(a.sync.presence()).toEqual([])
    await waitFor(() => !seesAda(), 5000, 'ada gone after destroy')
    off()
  })

  it('without authenticate (development), the user option is who the server trusts: presence, history and conflict metadata; auth.userId wins over it', async () => {
    const s = await server({ authenticate: undefined })
    const a = makeBoard({ name: 'pres-dev', url: s.url, user: { id: 'ada', name: 'Ada', color: '#0a0' }, conflicts: { paths: { 'cards.*.title': 'manual' } } })
    const b = makeBoard({ name: 'pres-dev', url: s.url, user: { id: 'grace', name: 'Grace' }, auth: { userId: 'grace-from-auth' }, conflicts: { paths: { 'cards.*.title': 'manual' } } })
    cleanups.push(() => a.sync.destroy(), () => b.sync.destroy())
    await waitFor(() => a.sync.status().connection === 'online' && b.sync.status().connection === 'online', 5000, 'online')
    a.sync.setPresence({ cursor: 1 })
    await waitFor(() => b.sync.presence().some((p) => !p.self), 5000, 'b sees a')
    expect(b.sync.presence().find((p) => !p.self)!.user).toEqual({ id: 'ada', name: 'Ada', color: '#0a0' })
    a.getState().addCard('c1', 'first')
    await a.sync.flush({ timeout: 5000 })
    const [entry] = await a.sync.history({ path: 'cards.c1', limit: 1 })
    expect(entry!.user).toBe('ada')
    await waitFor(() => b.getState().cards.c1?.title === 'first', 5000, 'b has c1')
    a.sync.disconnect()
    b.sync.disconnect()
    a.getState().rename('c1', 'by ada')
    b.getState().rename('c1', 'by grace')
    b.sync.connect()
    await b.sync.flush({ timeout: 5000 })
    a.sync.connect()
    await waitFor(() => a.sync.conflicts().length === 1, 5000, 'a has the conflict')
    expect(a.sync.conflicts()[0]!.remoteMeta.userId).toBe('grace-from-auth')
  })
})
