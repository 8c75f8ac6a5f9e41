import { runLocal } from '../local'
import { printTable } from '../lib/report'
const r = await runLocal(process.argv.includes('--smoke'))
printTable(r)
