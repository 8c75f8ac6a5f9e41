import { Simulation } from './sim'
import { DOC } from './device'
const sim = new Simulation({ seed: 1069, clients: 8, ops: 3000, entities: 4, trace: false })
const r = await sim.run()
console.log(r.problems ?? r)
const log = await (sim as any).storage.readLog(DOC, 0)
for (const e of log) if (e.entity === 'cards/volatile' && (e.path.length === 2 || e.path[2] === 'meta')) console.log(e.seq, e.client, e.op.op, e.path.join('.'), e.status, 'v=', JSON.stringify(e.op.value)?.slice(0, 200), 'prev=', JSON.stringify(e.op.prev)?.slice(0,120), 'cur=', JSON.stringify(e.value)?.slice(0, 200), 'base=', JSON.stringify(e.op.base))
