import type { Server, Socket } from 'socket.io'
import { EVENTS, type PresencePeer } from '../core/protocol'

interface Entry {
  peer: PresencePeer
  socketId: string
}

/**
 * Ephemeral presence per document: stamped with the authenticated user (no impersonation), never
 * stored, dropped on disconnect and after `ttl` without a heartbeat. Lives on each socket's data too,
 * so a joiner on another node gets the full list through fetchSockets().
 */
export class PresenceHub {
  private readonly docs = new Map<string, Map<string, Entry>>()
  private readonly timer: ReturnType<typeof setInterval>

  constructor(
    private readonly io: Server,
    private readonly o: { ttl: number; onCount?: (n: number) => void },
  ) {
    this.timer = setInterval(() => this.sweep(), Math.max(250, Math.floor(o.ttl / 2)))
    this.timer.unref()
  }

  /** Ms an entry lives without a heartbeat; clients learn it in the join answer. */
  get ttl(): number {
    return this.o.ttl
  }

  update(socket: Socket, doc: string, user: { id: string; [k: string]: unknown }, state: Record<string, unknown> | null): void {
    const clientId = socket.id
    let m = this.docs.get(doc)
    if (!m) this.docs.set(doc, (m = new Map()))
    const data = socket.data as { presence?: Record<string, PresencePeer> }
    if (state === null) {
      m.delete(clientId)
      if (data.presence) delete data.presence[doc]
      socket.to(`doc:${doc}`).emit(EVENTS.presence, { doc, peers: [{ clientId, state: null }] })
    } else {
      const peer: PresencePeer = { clientId, user: publicUser(user), state, updatedAt: Date.now() }
      m.set(clientId, { peer, socketId: socket.id })
      data.presence = { ...(data.presence ?? {}), [doc]: peer }
      socket.to(`doc:${doc}`).emit(EVENTS.presence, { doc, peers: [peer] })
    }
    this.count()
  }

  leave(socket: Socket, doc: string): void {
    const data = socket.data as { presence?: Record<string, PresencePeer> }
    if (data.presence) delete data.presence[doc]
    const m = this.docs.get(doc)
    if (!m?.delete(socket.id)) return
    // Not to the socket itself: on 'disconnecting' it is still in the room, and a browser that has sent its
    // close frame logs a frame that arrives after it as an error ("Data frame received after close").
    this.io.to(`doc:${doc}`).except(socket.id).emit(EVENTS.presence, { doc, peers: [{ clientId: socket.id, state: null }] })
    this.count()
  }

  async sendFull(socket: Socket, doc: string): Promise<void> {
    const peers: PresencePeer[] = []
    const cutoff = Date.now() - this.o.ttl
    const sockets = await this.io.in(`doc:${doc}`).fetchSockets()
    for (const s of sockets) {
      const p = (s.data as { presence?: Record<string, PresencePeer> }).presence?.[doc]
      if (p && s.id !== socket.id && p.updatedAt >= cutoff) peers.push(p)
    }
    socket.emit(EVENTS.presence, { doc, peers, full: true })
  }

  private sweep(): void {
    const cutoff = Date.now() - this.o.ttl
    for (const [doc, m] of this.docs) {
      for (const [id, e] of m) {
        if (e.peer.updatedAt >= cutoff) continue
        m.delete(id)
        const data = this.io.of('/').sockets.get(e.socketId)?.data as { presence?: Record<string, PresencePeer> } | undefined
        if (data?.presence?.[doc] === e.peer) delete data.presence[doc]
        this.io.to(`doc:${doc}`).emit(EVENTS.presence, { doc, peers: [{ clientId: id, state: null }] })
      }
      if (m.size === 0) this.docs.delete(doc)
    }
    this.count()
  }

  private count(): void {
    let n = 0
    for (const m of this.docs.values()) n += m.size
    this.o.onCount?.(n)
  }

  destroy(): void {
    clearInterval(this.timer)
  }
}

/**
 * What peers see of a user: the id the server authenticated and display fields. Anything else the
 * app's authenticate() returned (emails, roles, tokens) stays on the server.
 */
export function publicUser(user: { id: string; [k: string]: unknown }): PresencePeer['user'] {
  const out: PresencePeer['user'] = { id: user.id }
  for (const k of ['name', 'color', 'avatarUrl'] as const) {
    const v = user[k]
    if (typeof v === 'string' && v.length <= 512) out[k] = v
  }
  return out
}
