import type { Socket } from 'socket.io-client'
import { EVENTS, PROTOCOL_VERSION } from '../../src/core/protocol'
import type { WireChangesMessage } from '../../src/core/wire'

/**
 * A stand-in for a socket.io-client Socket, passed through the public `socket` option, so in-process
 * benches drive the real middleware and engine without a network: joining answers at once, sent
 * batches are never acknowledged (they stay in flight), and `deliver` plays a server broadcast.
 */
export class FakeSocket {
  connected = true
  /** What joining returns as the server's state (a snapshot at seq 0), like a client joining a stored doc. */
  constructor(private readonly joinState?: Record<string, unknown>) {}
  private readonly handlers = new Map<string, Set<(...a: unknown[]) => void>>()

  on(ev: string, fn: (...a: unknown[]) => void): this {
    let s = this.handlers.get(ev)
    if (!s) this.handlers.set(ev, (s = new Set()))
    s.add(fn)
    return this
  }

  off(ev: string, fn: (...a: unknown[]) => void): this {
    this.handlers.get(ev)?.delete(fn)
    return this
  }

  emit(): this {
    return this
  }

  connect(): this {
    return this
  }

  disconnect(): this {
    return this
  }

  timeout(): { emitWithAck: (event: string, payload: unknown) => Promise<unknown> } {
    return {
      emitWithAck: (event) => {
        if (event === EVENTS.join) {
          const snapshot = this.joinState ? { snapshot: { seq: 0, state: this.joinState, vv: {}, fields: {} } } : {}
          return Promise.resolve({ ok: true, v: PROTOCOL_VERSION, seq: 0, c: [], serverTime: Date.now(), ...snapshot })
        }
        return new Promise(() => {})
      },
    }
  }

  /** Plays a server broadcast of changes to the store, as it arrives (the wire form). */
  deliver(msg: WireChangesMessage): void {
    for (const fn of this.handlers.get(EVENTS.changes) ?? []) fn(msg)
  }

  asSocket(): Socket {
    return this as unknown as Socket
  }
}
