import type { PresenceMessage, PresencePeer } from './protocol'
import type { Presence, PresenceUser } from './types'

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
  private readonly listeners = new Set<(p: Presence[]) => void>()
  private lastSent = 0
  private sendTimer: ReturnType<typeof setTimeout> | undefined
  private beat: ReturnType<typeof setInterval> | undefined
  private every = 0

  constructor(private readonly o: TrackerOptions) {
    this.throttle = o.throttle
    this.beatEvery(o.ttl)
  }

  /** Heartbeats every half of `ttl`. */
  private beatEvery(ttl: number): void {
    const every = Math.max(1, Math.floor(ttl / 2))
    if (every === this.every) return
    this.every = every
    clearInterval(this.beat)
    this.beat = setInterval(() => this.tick(), every)
    ;(this.beat as { unref?: () => void }).unref?.()
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
    if (msg.full) this.peers.clear()
    for (const p of msg.peers) {
      if (p.clientId === this.o.clientId) continue
      if (p.state === null) this.peers.delete(p.clientId)
      else this.peers.set(p.clientId, { ...(p as PresencePeer), updatedAt: this.o.now() })
    }
    this.changed()
  }

  clearPeers(): void {
    if (this.peers.size === 0) return
    this.peers.clear()
    this.changed()
  }

  list(): Presence[] {
    if (!this.cache) {
      const out: Presence[] = []
      if (this.mine) out.push({ clientId: this.o.clientId, user: this.o.user, state: this.mine, updatedAt: this.lastSent, self: true })
      // By name (then user id, then connection): the same order in every tab and after reconnects, where
      // connection ids are random.
      const others = [...this.peers.values()].sort(byPerson)
      for (const p of others) out.push({ clientId: p.clientId, user: p.user, state: p.state, updatedAt: p.updatedAt, self: false })
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
    if (this.sendTimer) clearTimeout(this.sendTimer)
    this.listeners.clear()
  }
}

const key = (p: PresencePeer) => p.user.name ?? p.user.id
function byPerson(a: PresencePeer, b: PresencePeer): number {
  const k = key(a).localeCompare(key(b))
  if (k !== 0) return k
  if (a.user.id !== b.user.id) return a.user.id < b.user.id ? -1 : 1
  return a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0
}
