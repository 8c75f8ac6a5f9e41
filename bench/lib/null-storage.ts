import type { LoadedDoc, OutboxRow, OutboxStorage, StorageBatch } from '../../src/core/storage'

/** Outbox storage that keeps nothing: benches that exclude IndexedDB measure the engine alone. */
export class NullStorage implements OutboxStorage {
  readonly kind = 'null'
  writes = 0
  rows = 0
  async open(): Promise<void> {}
  async load(): Promise<LoadedDoc> {
    return { rows: [], conflicts: [], nextOrder: 0 }
  }
  async write(batch: StorageBatch): Promise<void> {
    this.writes++
    this.rows += batch.put?.length ?? 0
  }
  async heartbeat(): Promise<void> {}
  async adopt(): Promise<OutboxRow[]> {
    return []
  }
  async release(): Promise<void> {}
  close(): void {}
}
