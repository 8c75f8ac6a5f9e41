import { runOutbox } from '../outbox'
import { printTable } from '../lib/report'
printTable(await runOutbox(process.argv.includes('--smoke')))
