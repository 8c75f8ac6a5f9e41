/**
 * Hybrid logical clock. A timestamp is `wall` (ms) plus a `counter` that orders events within one ms,
 * plus the node id that breaks ties. Encoded as a fixed-width string, so string order is causal order.
 */
export interface HlcTimestamp {
  wall: number
  counter: number
  node: string
}

const WALL_WIDTH = 15
const COUNTER_WIDTH = 6
const MAX_COUNTER = 36 ** COUNTER_WIDTH - 1
/** How far ahead of physical time a clock may run before it starts again from it. */
const MAX_AHEAD_MS = 60_000

export function encodeHlc(ts: HlcTimestamp): string {
  return `${ts.wall.toString().padStart(WALL_WIDTH, '0')}:${ts.counter.toString(36).padStart(COUNTER_WIDTH, '0')}:${ts.node}`
}

/** The last string decoded and its result: one op's stamp is decoded by several steps in a row. */
let lastIn: string | undefined
let lastOut: Readonly<HlcTimestamp> | undefined

/** Decodes a timestamp, or undefined when malformed. The result is frozen (it may be shared). */
export function decodeHlc(s: string): Readonly<HlcTimestamp> | undefined {
  if (s === lastIn) return lastOut
  const out = decodeUncached(s)
  if (typeof s === 'string') {
    lastIn = s
    lastOut = out
  }
  return out
}

/**
 * The exact grammar: 15 decimal digits, 6 lower-case base-36 digits, a node id. Number() and parseInt()
 * alone accept '0x…', spaces and partial counters ('0~~~~~'): such a stamp decoded to a wall of 1 ms
 * (never clamped as running ahead) yet sorted above every real stamp, winning every race for good.
 */
const HLC_FORMAT = /^\d{15}:[0-9a-z]{6}:./s

function decodeUncached(s: string): Readonly<HlcTimestamp> | undefined {
  if (typeof s !== 'string' || s.length > 200 || !HLC_FORMAT.test(s)) return undefined
  const a = WALL_WIDTH
  const b = WALL_WIDTH + 1 + COUNTER_WIDTH
  const wall = Number(s.slice(0, a))
  const counter = parseInt(s.slice(a + 1, b), 36)
  const node = s.slice(b + 1)
  if (!Number.isSafeInteger(wall) || wall < 0 || !Number.isSafeInteger(counter) || counter < 0 || node.length === 0) return undefined
  return Object.freeze({ wall, counter, node })
}

/** Compares two encoded timestamps: negative, zero or positive. */
export function compareHlc(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

export class HybridClock {
  private wall = 0
  private counter = 0
  constructor(
    readonly node: string,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * A timestamp for a local event, greater than every timestamp this clock issued or received, unless
   * the clock ran more than `MAX_AHEAD_MS` ahead of physical time (the device clock jumped forward and
   * back, or stamps from such a jump were restored): then it starts again from physical time. Otherwise
   * one brief jump would stamp every later edit in the future until real time caught up, and a server
   * refuses stamps a day ahead. Safe for ordering: this client's own later ops are ordered after its
   * earlier ones by version vectors, and the server raises a stamp that sorts below what the client saw.
   */
  tick(): string {
    // Whole ms: a fractional wall (a `now` option built on performance.now(), half a round trip) is malformed.
    const pt = Math.floor(this.now())
    if (this.wall > pt + MAX_AHEAD_MS) {
      this.wall = pt
      this.counter = 0
    }
    if (pt > this.wall) {
      this.wall = pt
      this.counter = 0
    } else {
      this.bumpCounter()
    }
    return encodeHlc({ wall: this.wall, counter: this.counter, node: this.node })
  }

  /**
   * A timestamp for a local event that has seen `floor` (a write of this device made under another
   * client id: an earlier page load, another tab): after it, whatever the physical clock says now.
   */
  tickAfter(floor: string | undefined): string {
    const t = this.tick()
    const f = floor !== undefined && t <= floor ? decodeHlc(floor) : undefined
    if (!f) return t
    this.wall = f.wall
    this.counter = f.counter
    this.bumpCounter()
    return encodeHlc({ wall: this.wall, counter: this.counter, node: this.node })
  }

  /** Merges a remote timestamp, so later local events sort after it. */
  receive(remote: string): void {
    const r = decodeHlc(remote)
    if (!r) return
    // Whole ms: a fractional wall (a `now` option built on performance.now(), half a round trip) is malformed.
    const pt = Math.floor(this.now())
    if (pt > this.wall && pt > r.wall) {
      this.wall = pt
      this.counter = 0
    } else if (r.wall > this.wall) {
      this.wall = r.wall
      this.counter = r.counter
      this.bumpCounter()
    } else if (r.wall === this.wall) {
      this.counter = Math.max(this.counter, r.counter)
      this.bumpCounter()
    } else {
      this.bumpCounter()
    }
  }

  private bumpCounter(): void {
    if (this.counter >= MAX_COUNTER) {
      this.wall += 1
      this.counter = 0
    } else {
      this.counter += 1
    }
  }
}

/**
 * The server's guard against skewed clocks: a timestamp more than `maxDriftMs` ahead of the server's
 * own time is clamped to it, so a client whose clock runs fast cannot win every last-writer-wins race.
 */
export function clampHlc(ts: string, serverNow: number, maxDriftMs: number): string {
  const d = decodeHlc(ts)
  if (!d) return ts
  if (d.wall <= serverNow + maxDriftMs) return ts
  return encodeHlc({ wall: serverNow + maxDriftMs, counter: d.counter, node: d.node })
}
