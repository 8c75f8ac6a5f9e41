import { diff } from '../../src/core/diff'
const items: Record<string, any> = {}
for (let i = 0; i < 1000; i++) items[`e${i}`] = { id: `e${i}`, title: `Item ${i}`, done: false, n: 0, tags: ['a', 'b'] }
const a = { items }
const b = { items: { ...items, e5: { ...items.e5, n: 1 } } }
const N = 3000
for (let r = 0; r < 3; r++) {
  let t0 = performance.now()
  for (let i = 0; i < N; i++) diff(a, b)
  console.log('diff', ((performance.now() - t0) / N * 1000).toFixed(1))
  t0 = performance.now()
  let c = 0
  for (let i = 0; i < N; i++) for (const k in b.items) { if (Object.hasOwn(b.items, k)) c++ }
  console.log('for-in+hasOwn', ((performance.now() - t0) / N * 1000).toFixed(1))
  t0 = performance.now()
  for (let i = 0; i < N; i++) { const ks = Object.keys(b.items); for (let j = 0; j < ks.length; j++) c += (a.items as any)[ks[j]!] === (b.items as any)[ks[j]!] ? 1 : 0 }
  console.log('Object.keys+compare', ((performance.now() - t0) / N * 1000).toFixed(1))
  t0 = performance.now()
  for (let i = 0; i < N; i++) { c += Object.keys(b.items).length }
  console.log('Object.keys', ((performance.now() - t0) / N * 1000).toFixed(1))
  t0 = performance.now()
  for (let i = 0; i < N; i++) { for (const k in b.items) { const nv = (b.items as any)[k]; if (Object.hasOwn(a.items, k) && (a.items as any)[k] === nv) c++ } }
  console.log('for-in lookup', ((performance.now() - t0) / N * 1000).toFixed(1))
}
