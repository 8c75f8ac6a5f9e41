import { deepEqual } from './diff'
import type { PresenceMessage, PresencePeer } from './protocol'
import type { Presence, PresenceUser } from './types'
import { weakInterval } from './timers'

/** A peer heard from this recently is kept when a full list without it arrives (see receive). */
const FULL_KEEP_MS = 5000

interface TrackerOptions {
  clientId: string
  user: PresenceUser
  /** Entries expire after this many ms without a heartbeat. */
  ttl: number
  /** Minimum ms between two sends; updates in between are coalesced. */
  throttle: number
  now: () => number
  send: (state: Record<string, unknown> | null) => void
}

/**
 * Ephemeral presence (awareness): never persisted, never in the outbox. Our state is re-sent every
 * ttl/2 as a heartbeat; peers not heard from within ttl are dropped; a peer with state null has left.
 */
export class PresenceTracker {
  private mine: Record<string, unknown> | null = null
  /** setPresence(null) was called: stay away until a state is set again. */
  private left = false
  private readonly peers = new Map<string, PresencePeer>()
  private cache: Presence[] | undefined
  /** Each peer's entry, the same object while the peer is unchanged (see list()). */
  private readonly entries = new WeakMap<PresencePeer, Presence>()
  private selfEntry: Presence | undefined
  private readonly listeners = new Set<(p: Presence[]) => void>()
  private lastSent = 0
  private sendTimer: ReturnType<typeof setTimeout> | undefined
  private beat: ReturnType<typeof setInterval> | undefined
  private every = 0
  /** Subscriptions that show presence (watch()), and the pending leave once the last one went. */
  private watchers = 0
  private leaveTimer: ReturnType<typeof setTimeout> | undefined

  /** Who we are in our own entry: the `user` option until the server says who it authenticated (setUser). */
  private user: PresenceUser

  constructor(private readonly o: TrackerOptions) {
    this.throttle = o.throttle
    this.user = o.user
    this.beatEvery(o.ttl)
  }

  /** The user the server authenticated, as peers see it: our own entry shows the same. */
  setUser(user: PresenceUser): void {
    if (deepEqual(user, this.user)) return
    this.user = user
    this.selfEntry = undefined
    this.cache = undefined
    this.changed()
  }

  /** Heartbeats every half of `ttl`. */
  private beatEvery(ttl: number): void {
    const every = Math.max(1, Math.floor(ttl / 2))
    if (every === this.every) return
    this.every = every
    clearInterval(this.beat)
    this.beat = weakInterval(this, (t) => t.tick(), every)
  }

  /**
   * The server's TTL (from the join answer): heartbeats come often enough for the shorter of the two, so a
   * server configured with a shorter `presenceTtl` than this client's `ttl` never drops a live client.
   */
  serverTtl(ttl: number): void {
    this.beatEvery(Math.min(this.o.ttl, ttl))
  }

  /** Sends at least this far apart (ms): the app's throttle, and no faster than the server admits. */
  private throttle: number

  /**
   * The server's presence rate per socket (from the join answer): a throttle below it had updates
   * refused, and the last position was lost until the next heartbeat.
   */
  serverRate(perSecond: number): void {
    this.throttle = Math.max(this.o.throttle, Math.ceil(1000 / perSecond))
  }

  /**
   * Someone here watches presence (subscribePresence: usePresence, PresenceAvatars): then this client is
   * present itself, with `{}` until it sets a state, as every Yjs awareness client is. A client whose
   * app never shows presence sends nothing, so documents without presence carry no heartbeats.
   */
  appear(): void {
    if (this.mine !== null || this.left) return
    this.mine = {}
    this.sendNow()
    // Not synchronously: this runs inside a subscribe call.
    queueMicrotask(() => this.changed())
  }

  /**
   * A subscription that shows presence (usePresence, PresenceAvatars): this client is present while one
   * is mounted (see appear()). Once the last one goes, it leaves after LEAVE_AFTER_MS (a remount in
   * between, StrictMode's second effect or a route swapping components, keeps it). A first watcher (none
   * was open) makes it present again, even after setPresence(null): an app's cleanup that left on purpose,
   * then a remount.
   */
  watch(fn: (p: Presence[]) => void): () => void {
    if (this.watchers++ === 0) this.left = false
    clearTimeout(this.leaveTimer)
    this.leaveTimer = undefined
    this.appear()
    const off = this.subscribe(fn)
    let on = true
    return () => {
      if (!on) return
      on = false
      off()
      if (--this.watchers > 0) return
      this.leaveTimer = setTimeout(() => {
        this.leaveTimer = undefined
        if (this.watchers > 0 || !this.mine) return
        this.mine = null
        this.changed()
        this.sendNow()
      }, LEAVE_AFTER_MS)
      ;(this.leaveTimer as { unref?: () => void }).unref?.()
    }
  }

  set(state: Record<string, unknown> | null): void {
    this.left = state === null
    this.mine = state
    this.changed()
    const wait = this.lastSent + this.throttle - this.o.now()
    if (wait <= 0 && !this.sendTimer) return this.sendNow()
    if (!this.sendTimer) {
      this.sendTimer = setTimeout(() => {
        this.sendTimer = undefined
        this.sendNow()
      }, Math.max(0, wait))
    }
  }

  /** After a (re)connect the server has forgotten us. */
  resend(): void {
    if (this.mine) this.sendNow()
  }

  private sendNow(): void {
    this.lastSent = this.o.now()
    this.o.send(this.mine)
  }

  private tick(): void {
    if (this.mine) this.sendNow()
    const cutoff = this.o.now() - this.o.ttl
    let removed = false
    for (const [id, p] of this.peers) {
      if (p.updatedAt < cutoff) {
        this.peers.delete(id)
        removed = true
      }
    }
    if (removed) this.changed()
  }

  receive(msg: PresenceMessage): void {
    let changed = !!msg.full
    const before = msg.full ? new Map(this.peers) : this.peers
    const now = this.o.now()
    if (msg.full) {
      // The full list is a snapshot the server took after this client joined; a peer's update can arrive
      // before it (across nodes, through Redis, it often did) and be newer than it. A peer heard from in
      // the last FULL_KEEP_MS stays (the TTL drops it if it is gone); clearing it hid a present peer until
      // its next heartbeat, 15 s later (a multi-node trial).
      this.peers.clear()
      for (const [id, p] of before) if (p.updatedAt >= now - FULL_KEEP_MS) this.peers.set(id, p)
    }
    for (const p of msg.peers) {
      if (p.clientId === this.o.clientId) continue
      if (p.state === null) {
        changed = this.peers.delete(p.clientId) || changed
        continue
      }
      const had = before.get(p.clientId)
      // A heartbeat (the same state from the same person): the peer and its entry stay the same objects,
      // only the time they were last heard from moves, so nothing selected from them re-renders.
      if (had && deepEqual(had.state, p.state) && deepEqual(had.user, p.user)) {
        had.updatedAt = now
        const e = this.entries.get(had)
        if (e) e.updatedAt = now
        this.peers.set(p.clientId, had)
        continue
      }
      this.peers.set(p.clientId, { ...(p as PresencePeer), updatedAt: now })
      changed = true
    }
    if (changed) this.changed()
  }

  clearPeers(): void {
    if (this.peers.size === 0) return
    this.peers.clear()
    this.changed()
  }

  list(): Presence[] {
    if (!this.cache) {
      const out: Presence[] = []
      // Entries keep their identity while unchanged: a hook whose selector keeps some peers re-renders
      // only when one of those changes, not at every other peer's cursor move.
      if (this.mine) {
        if (this.selfEntry?.state !== this.mine) this.selfEntry = { clientId: this.o.clientId, user: this.user, state: this.mine, updatedAt: this.lastSent, self: true }
        out.push(this.selfEntry)
      }
      // By name (then user id, then connection): the same order in every tab and after reconnects, where
      // connection ids are random.
      const others = [...this.peers.values()].sort(byPerson)
      for (const p of others) {
        let e = this.entries.get(p)
        if (!e) this.entries.set(p, (e = { clientId: p.clientId, user: p.user, state: p.state, updatedAt: p.updatedAt, self: false }))
        out.push(e)
      }
      this.cache = out
    }
    return this.cache
  }

  subscribe(fn: (p: Presence[]) => void): () => void {
    this.listeners.add(fn)
    return () => {
      this.listeners.delete(fn)
    }
  }

  private changed(): void {
    this.cache = undefined
    const list = this.list()
    for (const fn of [...this.listeners]) {
      try {
        fn(list)
      } catch (err) {
        queueMicrotask(() => {
          throw err
        })
      }
    }
  }

  destroy(): void {
    clearInterval(this.beat)
    clearTimeout(this.leaveTimer)
    if (this.sendTimer) clearTimeout(this.sendTimer)
    this.listeners.clear()
  }
}

/** How long after the last presence watcher unmounts this client leaves (see watch()). */
const LEAVE_AFTER_MS = 1000

const key = (p: PresencePeer) => p.user.name ?? p.user.id
function byPerson(a: PresencePeer, b: PresencePeer): number {
  const k = key(a).localeCompare(key(b))
  if (k !== 0) return k
  if (a.user.id !== b.user.id) return a.user.id < b.user.id ? -1 : 1
  return a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0
}
