import { diff } from '../../src/core/diff'
import { diff as diffOld } from './diff-old'
let seed = 1
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
const vals = [undefined, null, 0, 1, 'a', [1], { x: 1 }, () => 1]
function obj(depth: number): any {
  const o: any = {}
  const n = Math.floor(rnd() * 5)
  for (let i = 0; i < n; i++) o['k' + Math.floor(rnd() * 6)] = depth > 0 && rnd() < 0.4 ? obj(depth - 1) : vals[Math.floor(rnd() * vals.length)]
  return o
}
function mutate(o: any, depth: number): any {
  const c = { ...o }
  const k = 'k' + Math.floor(rnd() * 6)
  const r = rnd()
  if (r < 0.2) delete c[k]
  else if (r < 0.5 && c[k] && typeof c[k] === 'object' && !Array.isArray(c[k]) && depth > 0) c[k] = mutate(c[k], depth - 1)
  else c[k] = vals[Math.floor(rnd() * vals.length)]
  if (rnd() < 0.3) return mutate(c, depth)
  return c
}
for (let i = 0; i < 200000; i++) {
  const a = obj(3), b = mutate(a, 3)
  const x = JSON.stringify(diff(a, b).map(p => [p.op, p.path, p.value === undefined ? 'u' : p.value, p.prev === undefined ? 'u' : p.prev]))
  const y = JSON.stringify(diffOld(a, b).map(p => [p.op, p.path, p.value === undefined ? 'u' : p.value, p.prev === undefined ? 'u' : p.prev]))
  if (x !== y) { console.log('MISMATCH', JSON.stringify(a), JSON.stringify(b), x, y); process.exit(1) }
}
console.log('ok')
