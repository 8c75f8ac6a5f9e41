/**
 * Token bucket state: holds at most `burst` tokens, refilled at `rate` per second. Only the state lives
 * here (two numbers per socket and limit); rate and burst come from the server's limits at each take.
 */
export class TokenBucket {
  private tokens: number
  private last: number
  constructor(burst: number, now: number = performance.now()) {
    this.tokens = burst
    this.last = now
  }

  take(n: number, rate: number, burst: number, now: number = performance.now()): boolean {
    this.tokens = Math.min(burst, this.tokens + ((now - this.last) / 1000) * rate)
    this.last = now
    if (n > this.tokens) return false
    this.tokens -= n
    return true
  }
}
