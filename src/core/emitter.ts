type Fn = (payload: never) => void

/** A tiny typed event emitter. A throwing listener is reported and cannot break the others. */
export class Emitter<Events extends Record<string, unknown>> {
  private readonly map = new Map<string, Set<Fn>>()

  on<K extends keyof Events & string>(event: K | '*', fn: (payload: K extends '*' ? AnyEvent<Events> : Events[K]) => void): () => void {
    let set = this.map.get(event)
    if (!set) this.map.set(event, (set = new Set()))
    set.add(fn as Fn)
    return () => {
      set.delete(fn as Fn)
    }
  }

  emit<K extends keyof Events & string>(event: K, payload: Events[K]): void {
    const direct = this.map.get(event)
    const star = this.map.get('*')
    if (direct) for (const fn of [...direct]) safeCall(fn, payload)
    if (star) for (const fn of [...star]) safeCall(fn, { type: event, ...(payload as object) })
  }

  has(event: string): boolean {
    return (this.map.get(event)?.size ?? 0) > 0 || (this.map.get('*')?.size ?? 0) > 0
  }

  clear(): void {
    this.map.clear()
  }
}

export type AnyEvent<Events> = { [K in keyof Events]: { type: K } & Events[K] }[keyof Events]

function safeCall(fn: Fn, payload: unknown): void {
  try {
    ;(fn as (p: unknown) => void)(payload)
  } catch (err) {
    queueMicrotask(() => {
      throw err
    })
  }
}
