// A child process of pool.ts: runs the seeds it is sent, one at a time, and answers each with its result.
import { runSim } from './sim'

process.on('message', (m: { seed: number; clients: number; ops: number; entities: number } | 'exit') => {
  if (m === 'exit') {
    process.disconnect()
    return
  }
  void runSim(m).then((r) => process.send!(r))
})
process.send!('ready')
