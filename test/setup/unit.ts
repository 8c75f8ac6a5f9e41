// Node has no IndexedDB: Dexie runs on fake-indexeddb in unit tests (real IndexedDB in the e2e tests).
import 'fake-indexeddb/auto'
