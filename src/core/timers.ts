/**
 * An interval that holds its target weakly (and does not keep the process alive): once nothing else
 * references the target, it stops. A store dropped without destroy() (one made per request by server
 * rendering, where no effect runs to destroy it) was kept alive forever by its heartbeats, ~11 KB each.
 * A connected store stays reachable through its socket, so its heartbeats go on.
 */
export function weakInterval<T extends object>(target: T, tick: (target: T) => void, ms: number): ReturnType<typeof setInterval> {
  const ref = new WeakRef(target)
  const timer = setInterval(() => {
    const t = ref.deref()
    if (t) tick(t)
    else clearInterval(timer)
  }, ms)
  ;(timer as { unref?: () => void }).unref?.()
  return timer
}
