const items: Record<string, any> = {}
for (let i = 0; i < 1000; i++) items[`e${i}`] = { id: `e${i}`, title: `Item ${i}`, done: false, n: 0, tags: ['a', 'b'] }
let s = { items }
for (let round = 0; round < 5; round++) {
  const t0 = performance.now()
  for (let i = 0; i < 10000; i++) { const k = `e${i % 1000}`; s = { items: { ...s.items, [k]: { ...s.items[k], n: i } } } }
  console.log('spread', ((performance.now() - t0) / 10000 * 1000).toFixed(2), 'µs')
  const t1 = performance.now()
  for (let i = 0; i < 10000; i++) { const k = `e${i % 1000}`; s = { items: Object.assign({}, s.items, { [k]: { ...s.items[k], n: i } }) } }
  console.log('assign', ((performance.now() - t1) / 10000 * 1000).toFixed(2), 'µs')
}
