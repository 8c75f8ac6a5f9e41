import type { Counter, Gauge, Histogram } from 'prom-client'
import type { Logger } from './logger'
import { importPeer } from './peer'

export interface Metrics {
  contentType: string
  render(): Promise<string>
  connections: Gauge
  documents: Gauge
  applied: Counter<'status'>
  rejected: Counter<'code'>
  conflicts: Counter
  ackLatency: Histogram
  backlog: Gauge
  presence: Gauge
  disconnects: Counter<'reason'>
  appendRetries: Counter
  storageWritable: Gauge
  storageUp: Gauge
  redisUp: Gauge
  broadcastsLost: Counter
}

/** Prometheus metrics (prom-client) in a registry of this server's own. */
export async function createMetrics(required: boolean, log: Logger): Promise<Metrics | undefined> {
  let prom: typeof import('prom-client')
  try {
    prom = await importPeer(() => import('prom-client'), 'prom-client', 'Prometheus metrics (metrics: true)')
  } catch (err) {
    if (required) throw err
    // Metrics were not asked for by name: a server without prom-client runs without /metrics.
    log.warn('prom-client is not installed: /metrics is off (npm install prom-client, or metrics: false to silence this)')
    return undefined
  }
  const registry = new prom.Registry()
  prom.collectDefaultMetrics({ register: registry, prefix: 'zync_' })
  const r = [registry]
  return {
    contentType: registry.contentType,
    render: () => registry.metrics(),
    connections: new prom.Gauge({ name: 'zync_connections', help: 'Open client connections', registers: r }),
    documents: new prom.Gauge({ name: 'zync_documents', help: 'Documents loaded on this node', registers: r }),
    applied: new prom.Counter({ name: 'zync_ops_applied_total', help: 'Ops sequenced, by outcome', labelNames: ['status'], registers: r }),
    rejected: new prom.Counter({ name: 'zync_ops_rejected_total', help: 'Messages or ops refused, by error code', labelNames: ['code'], registers: r }),
    conflicts: new prom.Counter({ name: 'zync_conflicts_total', help: 'Conflicts sent to an inbox', registers: r }),
    ackLatency: new prom.Histogram({
      name: 'zync_ack_latency_seconds',
      help: 'Time from receiving an ops batch to acknowledging it (durable)',
      // Up to 10 s: during an incident (a slow or failing database) acks take seconds, which should not all land in +Inf.
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5, 5, 10],
      registers: r,
    }),
    backlog: new prom.Gauge({ name: 'zync_backlog_packets', help: 'Packets buffered for sockets', registers: r }),
    presence: new prom.Gauge({ name: 'zync_presence_entries', help: 'Presence entries on this node', registers: r }),
    appendRetries: new prom.Counter({ name: 'zync_append_retries_total', help: 'Batches applied again because another node appended first', registers: r }),
    storageWritable: new prom.Gauge({ name: 'zync_storage_writable', help: '1 while the storage takes writes; 0 from a failed append until a write succeeds', registers: r }),
    storageUp: new prom.Gauge({ name: 'zync_storage_up', help: '1 while storage calls succeed; 0 from a failed read or write until reads and writes work again (meanwhile clients get STORAGE_UNAVAILABLE)', registers: r }),
    redisUp: new prom.Gauge({ name: 'zync_redis_up', help: "1 while both Redis clients are connected; 0 while either is reconnecting (absent without Redis). This node's clients keep syncing; other nodes' clients get its changes when Redis is back", registers: r }),
    broadcastsLost: new prom.Counter({ name: 'zync_redis_broadcasts_lost_total', help: 'Broadcasts to other nodes that failed while Redis was down (their clients catch up when it is back)', registers: r }),
    disconnects: new prom.Counter({ name: 'zync_disconnects_total', help: 'Client disconnections, by reason', labelNames: ['reason'], registers: r }),
  }
}
