import { StrictMode } from 'react'
import { deleteLocalData } from 'zync'
import { createRoot } from 'react-dom/client'
import 'zync/styles.css'
import './styles.css'
import { App } from './App'
import { createBoard, type BoardStore } from './board'
import { loadConfig, offlineFlag, type DemoConfig } from './config'

declare global {
  interface Window {
    /**
     * The demo's stores, for poking at in the console: `zyncDemo.boards.left.sync.status()`; `createBoard`
     * makes another store (another board); `deleteLocalData` is zync's, as an app would call it when
     * a user signs out.
     */
    zyncDemo?: { config: DemoConfig; boards: Record<string, BoardStore>; createBoard: typeof createBoard; deleteLocalData: typeof deleteLocalData }
  }
}

void loadConfig().then((config) => {
  // Stores live outside React: one engine (socket, IndexedDB) per pane for the page's lifetime.
  const boards: Record<string, BoardStore> = {}
  for (const p of config.panes) {
    const board = createBoard({ doc: config.doc, url: config.serverUrl, dbName: p.dbName, clientId: p.clientId, user: p.user, offline: offlineFlag(p.dbName) })
    board.sync.setPresence({ pane: p.key, focus: null })
    boards[p.key] = board
  }
  window.zyncDemo = { config, boards, createBoard, deleteLocalData }
  document.title = config.mode === 'single' ? `${config.panes[0]!.user.name} · zync task board` : 'zync task board'
  createRoot(document.getElementById('root')!).render(
    <StrictMode>
      <App config={config} boards={boards} />
    </StrictMode>,
  )
})
