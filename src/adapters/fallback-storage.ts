import type { LoadedDoc, OutboxRow, OutboxStorage, SpilledTail, StorageBatch, StoredConflict } from '../core/storage'
import { MemoryOutboxStorage } from './memory-storage'

/**
 * Uses `primary` (IndexedDB) and falls back to memory with a warning when it cannot be opened
 * (private browsing, disabled storage). The store keeps working; nothing survives a reload then.
 */
export class FallbackOutboxStorage implements OutboxStorage {
  private active: OutboxStorage
  constructor(
    primary: OutboxStorage,
    private readonly warn: (message: string) => void,
  ) {
    this.active = primary
  }

  get kind(): string {
    return this.active.kind
  }

  async open(): Promise<void> {
    try {
      await this.active.open()
    } catch (err) {
      this.warn(`[zync] ${(err as Error).message.replace(/^\[zync\] /, '')}; the outbox lives in memory and does not survive a reload`)
      this.active = new MemoryOutboxStorage()
      await this.active.open()
    }
  }

  load(doc: string, adopt?: { owner: string; staleBefore: number }, readOnly?: boolean): Promise<LoadedDoc> {
    return this.active.load(doc, adopt, readOnly)
  }
  write(batch: StorageBatch): Promise<void> {
    return this.active.write(batch)
  }
  heartbeat(doc: string, owner: string, now: number): Promise<void> {
    return this.active.heartbeat(doc, owner, now)
  }
  adopt(doc: string, owner: string, staleBefore: number): Promise<OutboxRow[]> {
    return this.active.adopt(doc, owner, staleBefore)
  }
  spill(doc: string, owner: string, rows: OutboxRow[], conflicts?: StoredConflict[]): void {
    this.active.spill?.(doc, owner, rows, conflicts)
  }
  spillTail(doc: string, owner: string, tail?: SpilledTail): void {
    this.active.spillTail?.(doc, owner, tail)
  }
  unspill(doc: string, owner: string): void {
    this.active.unspill?.(doc, owner)
  }
  onReset(listener: () => void): () => void {
    return this.active.onReset?.(listener) ?? (() => {})
  }
  release(doc: string, owner: string): Promise<void> {
    return this.active.release(doc, owner)
  }
  async orphanedDocs(except: string, staleBefore: number, endpoint?: string): Promise<string[]> {
    return (await this.active.orphanedDocs?.(except, staleBefore, endpoint)) ?? []
  }
  close(): void {
    this.active.close()
  }
}
