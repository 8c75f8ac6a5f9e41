import type { DocMeta, LoadedDoc, OutboxRow, OutboxStorage, StorageBatch, StoredConflict } from '../core/storage'

/** Outbox storage in memory: nothing survives a reload. The fallback where IndexedDB is missing. */
export class MemoryOutboxStorage implements OutboxStorage {
  readonly kind = 'memory'
  private readonly rows = new Map<string, OutboxRow>()
  private readonly meta = new Map<string, DocMeta>()
  private readonly conflicts = new Map<string, StoredConflict>()
  private readonly beats = new Map<string, number>()

  async open(): Promise<void> {}

  async load(doc: string): Promise<LoadedDoc> {
    const rows = [...this.rows.values()].filter((r) => r.doc === doc).sort((a, b) => a.order - b.order)
    const maxOrder = [...this.rows.values()].reduce((m, r) => Math.max(m, r.order), 0)
    const m = this.meta.get(doc)
    return {
      rows: rows.map((r) => structuredClone(r)),
      ...(m ? { meta: structuredClone(m) } : {}),
      conflicts: [...this.conflicts.values()].filter((c) => c.doc === doc).map((c) => structuredClone(c)),
      nextOrder: maxOrder,
    }
  }

  async write(batch: StorageBatch): Promise<void> {
    // Rows are kept as handed over (see OutboxStorage): a deep copy per row was most of this write's
    // cost. `adopt` and `load` still hand out copies, which the engine does change.
    for (const r of batch.put ?? []) this.rows.set(r.id, r)
    for (const id of batch.delete ?? []) this.rows.delete(id)
    if (batch.meta) this.meta.set(batch.meta.doc, structuredClone(batch.meta))
    for (const c of batch.putConflicts ?? []) this.conflicts.set(c.id, structuredClone(c))
    for (const id of batch.deleteConflicts ?? []) this.conflicts.delete(id)
  }

  async heartbeat(doc: string, owner: string, now: number): Promise<void> {
    this.beats.set(doc + '\u0000' + owner, now)
  }

  async adopt(doc: string, owner: string, staleBefore: number): Promise<OutboxRow[]> {
    const out: OutboxRow[] = []
    for (const r of this.rows.values()) {
      if (r.doc !== doc || r.owner === owner) continue
      const beat = this.beats.get(doc + '\u0000' + r.owner)
      if (beat !== undefined && beat >= staleBefore) continue
      r.owner = owner
      out.push(structuredClone(r))
    }
    return out
  }

  async release(doc: string, owner: string): Promise<void> {
    this.beats.delete(doc + '\u0000' + owner)
  }

  close(): void {}
}
