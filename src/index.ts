export { sync } from './middleware/sync'
export type { ConflictPaths, SyncOptions } from './middleware/sync'
export { SyncEngine } from './core/engine'
export type { EngineOptions, EngineHost } from './core/engine'
export { ZyncError } from './core/errors'
export type { ZyncErrorCode, WireError } from './core/errors'
export { PROTOCOL_VERSION } from './core/protocol'
export type { Op, Change, OpResult, Snapshot, WirePolicy, PresencePeer } from './core/protocol'
export type { ConflictPolicy, ConflictResolver, ConflictsConfig, ConflictMeta } from './core/policies'
export type {
  SyncApi,
  SyncStatus,
  SyncEvents,
  SyncEventName,
  ShownSource,
  ShownPatch,
  ConnectionState,
  Conflict,
  ConflictSide,
  Resolution,
  PendingOperation,
  DeadLetter,
  Priority,
  LaneCounts,
  Presence,
  PresenceUser,
  HistoryEntry,
} from './core/types'
export type { OutboxStorage, OutboxRow, DocMeta, StorageBatch, LoadedDoc, StoredConflict } from './core/storage'
export type { Transport, TransportHandlers } from './core/transport'
export type { BackoffOptions } from './core/outbox'
export type { Path } from './core/path'
export { MemoryOutboxStorage } from './adapters/memory-storage'
export { DexieOutboxStorage, deleteLocalData } from './adapters/dexie-storage'
export { SocketIoTransport } from './adapters/socket-io'
export type { SocketTransportOptions } from './adapters/socket-io'
