import type { OutboxRow, StoredConflict } from './storage'

export type TabMessage =
  | { type: 'rows'; rows: OutboxRow[] }
  | { type: 'settled'; ids: string[]; /** These rows' changes are in the log at or below this seq: a tab that has not applied that far keeps showing them. */ seq?: number }
  /** A tab that just loaded the outbox: the others answer with the ids they settled lately ('settled'). */
  | { type: 'hello' }
  /** A store destroyed (its heartbeat and lock released): the others adopt its rows now, not at their next heartbeat. */
  | { type: 'gone' }
  | { type: 'resolved'; ids: string[] }
  /** Conflicts a tab raised: they belong to the whole device's inbox. */
  | { type: 'conflicts'; conflicts: StoredConflict[] }

/**
 * Tabs of one origin and document share edits immediately (also offline) through BroadcastChannel.
 * Each tab sends only the rows it owns, so no op is sent twice; rows of a closed tab are adopted
 * through storage (see OutboxStorage.adopt).
 */
export class TabChannel {
  private readonly ch: BroadcastChannel
  constructor(
    name: string,
    private readonly self: string,
    onMessage: (m: TabMessage) => void,
  ) {
    this.ch = new BroadcastChannel(name)
    this.ch.onmessage = (ev: MessageEvent) => {
      const data = ev.data as { from?: string; msg?: TabMessage }
      if (!data || data.from === this.self || !data.msg) return
      onMessage(data.msg)
    }
    ;(this.ch as { unref?: () => void }).unref?.()
  }

  post(msg: TabMessage): void {
    try {
      this.ch.postMessage({ from: this.self, msg })
    } catch {
      // A closed channel or an uncloneable value: other tabs catch up from storage and the server.
    }
  }

  close(): void {
    this.ch.close()
  }
}
