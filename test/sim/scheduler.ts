/**
 * Virtual time for the simulation. While installed, the global setTimeout/setInterval family is
 * replaced by a timer heap that only advances when `run` pops the next timer, so hours of network
 * weather take milliseconds and every run of a seed takes the same path. Between two timers all
 * microtasks (promise chains of the engine, the in-memory storages and DocHost) are drained with a
 * real setImmediate, which runs only once the microtask queue is empty, as in Node's own event loop.
 */

interface Timer {
  id: number
  at: number
  /** Insertion order: timers due at the same time run in the order they were set. */
  seq: number
  fn: () => void
  every?: number
  cancelled: boolean
}

const real = {
  setTimeout: globalThis.setTimeout,
  clearTimeout: globalThis.clearTimeout,
  setInterval: globalThis.setInterval,
  clearInterval: globalThis.clearInterval,
  setImmediate: globalThis.setImmediate,
}

/** Resolves once the microtask queue is empty. */
export function drainMicrotasks(): Promise<void> {
  return new Promise((resolve) => real.setImmediate(resolve))
}

/** A handle with the shape Node timers have (the engine calls `unref`). */
class Handle {
  constructor(readonly timer: Timer) {}
  unref(): this {
    return this
  }
  ref(): this {
    return this
  }
  hasRef(): boolean {
    return false
  }
  [Symbol.toPrimitive](): number {
    return this.timer.id
  }
}

export class VirtualScheduler {
  private heap: Timer[] = []
  private nextId = 1
  private nextSeq = 0
  private installed = false
  /** Virtual epoch ms. */
  now: number
  /** Timers run so far (a cost measure). */
  steps = 0

  constructor(start = 1_700_000_000_000) {
    this.now = start
  }

  setTimeout = (fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]): Handle => {
    return new Handle(this.push(() => fn(...args), Math.max(0, Number(ms) || 0)))
  }

  setInterval = (fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]): Handle => {
    const every = Math.max(1, Number(ms) || 0)
    const t = this.push(() => fn(...args), every)
    t.every = every
    return new Handle(t)
  }

  clearTimeout = (h: unknown): void => {
    if (h instanceof Handle) h.timer.cancelled = true
  }

  /** Calls `fn` after `ms` of virtual time (for the simulation's own events). */
  after(ms: number, fn: () => void): void {
    this.push(fn, Math.max(0, ms))
  }

  install(): void {
    if (this.installed) return
    this.installed = true
    const g = globalThis as unknown as Record<string, unknown>
    g.setTimeout = this.setTimeout
    g.setInterval = this.setInterval
    g.clearTimeout = this.clearTimeout
    g.clearInterval = this.clearTimeout
  }

  uninstall(): void {
    if (!this.installed) return
    this.installed = false
    const g = globalThis as unknown as Record<string, unknown>
    g.setTimeout = real.setTimeout
    g.setInterval = real.setInterval
    g.clearTimeout = real.clearTimeout
    g.clearInterval = real.clearInterval
  }

  /**
   * Runs timers in time order until `done()` holds (checked after each timer, once its microtasks have
   * settled) or virtual time would pass `until`. Returns whether `done()` held.
   */
  async run(until: number, done: () => boolean = () => false): Promise<boolean> {
    await drainMicrotasks()
    for (;;) {
      if (done()) return true
      const t = this.pop()
      if (!t) return done()
      if (t.at > until) {
        this.insert(t)
        this.now = until
        return done()
      }
      if (t.at > this.now) this.now = t.at
      if (t.every !== undefined) {
        t.at = this.now + t.every
        t.seq = this.nextSeq++
        this.insert(t)
      }
      this.steps++
      t.fn()
      await drainMicrotasks()
    }
  }

  private push(fn: () => void, ms: number): Timer {
    const t: Timer = { id: this.nextId++, at: this.now + ms, seq: this.nextSeq++, fn, cancelled: false }
    this.insert(t)
    return t
  }

  private less(a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq)
  }

  private insert(t: Timer): void {
    const h = this.heap
    h.push(t)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!this.less(h[i]!, h[p]!)) break
      ;[h[i], h[p]] = [h[p]!, h[i]!]
      i = p
    }
  }

  /** The earliest live timer, cancelled ones dropped on the way. */
  private pop(): Timer | undefined {
    const h = this.heap
    while (h.length > 0) {
      const top = h[0]!
      const last = h.pop()!
      if (h.length > 0) {
        h[0] = last
        let i = 0
        for (;;) {
          const l = 2 * i + 1
          const r = l + 1
          let m = i
          if (l < h.length && this.less(h[l]!, h[m]!)) m = l
          if (r < h.length && this.less(h[r]!, h[m]!)) m = r
          if (m === i) break
          ;[h[i], h[m]] = [h[m]!, h[i]!]
          i = m
        }
      }
      if (!top.cancelled) return top
    }
    return undefined
  }
}

/** Seeded PRNG (sfc32): fast, good enough statistically, and the same on every platform. */
export class Rng {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor(seed: number) {
    this.a = 0x9e3779b9
    this.b = 0x243f6a88
    this.c = 0xb7e15162
    this.d = seed >>> 0
    for (let i = 0; i < 15; i++) this.next()
  }

  /** Uniform in [0, 1). */
  next = (): number => {
    this.a >>>= 0
    this.b >>>= 0
    this.c >>>= 0
    this.d >>>= 0
    let t = (this.a + this.b) | 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) | 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.d = (this.d + 1) | 0
    t = (t + this.d) | 0
    this.c = (this.c + t) | 0
    return (t >>> 0) / 4294967296
  }

  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1))
  }

  chance(p: number): boolean {
    return this.next() < p
  }

  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!
  }

  /** A derived, independent stream. */
  fork(salt: number): Rng {
    return new Rng(Math.imul(Math.floor(this.next() * 4294967296) ^ salt, 0x85ebca6b) ^ (salt * 0x9e3779b1))
  }
}
