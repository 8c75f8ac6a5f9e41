/**
 * Token bucket state: holds at most `burst` tokens, refilled at `rate` per second. Only the state lives
 * here (two numbers); rate and burst are given at each call. The server keeps one per socket and limit;
 * the client keeps two mirroring the server's ops and messages limits, so a long offline queue is sent at
 * the pace the server admits instead of being refused and backed off.
 */
export class TokenBucket {
  private tokens: number
  private last: number
  constructor(burst: number, now: number = performance.now()) {
    this.tokens = burst
    this.last = now
  }

  /** Tokens available at `now` (refilled, not taken). */
  available(rate: number, burst: number, now: number = performance.now()): number {
    this.tokens = Math.min(burst, this.tokens + (Math.max(0, now - this.last) / 1000) * rate)
    this.last = now
    return this.tokens
  }

  take(n: number, rate: number, burst: number, now: number = performance.now()): boolean {
    if (n > this.available(rate, burst, now)) return false
    this.tokens -= n
    return true
  }

  /** Milliseconds from `now` until `n` tokens are there (Infinity when `n` is over the burst). */
  wait(n: number, rate: number, burst: number, now: number = performance.now()): number {
    if (n > burst) return Infinity
    return Math.max(0, Math.ceil(((n - this.available(rate, burst, now)) / rate) * 1000))
  }
}
