import { useState } from 'react'
import type { BoardStore } from './board'
import type { DemoConfig } from './config'
import { Pane } from './Pane'
import { Logo } from './ui'

const HELP_KEY = 'zync-demo:help-hidden'

export function App({ config, boards }: { config: DemoConfig; boards: Record<string, BoardStore> }) {
  const [help, setHelp] = useState(() => localStorage.getItem(HELP_KEY) !== '1')
  const toggleHelp = (open: boolean) => {
    setHelp(open)
    localStorage.setItem(HELP_KEY, open ? '0' : '1')
  }
  const split = config.mode === 'split'
  return (
    <div className="app">
      <header className="topbar">
        <div className="brand">
          <Logo />
          <span className="brand-name">zync</span>
          <span className="brand-sep" aria-hidden="true">
            /
          </span>
          <h1 className="brand-board">Launch board</h1>
        </div>
        <div className="topbar-actions">
          {split && (
            <a className="btn btn-quiet hide-sm" href={location.href} target="_blank" rel="noopener">
              Open another window
            </a>
          )}
          <button className="btn btn-quiet" aria-expanded={help} aria-controls="help" onClick={() => toggleHelp(!help)}>
            {help ? 'Hide tips' : 'How to try it'}
          </button>
        </div>
      </header>

      {help && <Help split={split} seat={config.seat} onClose={() => toggleHelp(false)} />}

      <main className={split ? 'panes panes-split' : 'panes panes-single'}>
        {config.panes.map((p) => (
          <Pane key={p.key} pane={p} store={boards[p.key]!} />
        ))}
      </main>

      <footer className="footnote">
        {split ? 'Each pane is its own client: its own client id, IndexedDB database and connection' : 'One client'} to document{' '}
        <code>{config.doc}</code> on <code>{config.serverUrl}</code>. Policies: <code>cards.*.title</code> manual,{' '}
        <code>cards.*.votes</code> counter, everything else merges per field; <code>cards.*.checklist</code> is an id-keyed array and merges
        item by item.
      </footer>
    </div>
  )
}

function Help({ split, seat, onClose }: { split: boolean; seat: number; onClose: () => void }) {
  return (
    <section id="help" className="help" aria-labelledby="help-title">
      <div className="help-head">
        <h2 id="help-title">Try it: edit both sides while one is offline</h2>
        <button className="icon-btn" aria-label="Close tips" onClick={onClose}>
          ×
        </button>
      </div>
      <ol className="help-steps">
        <li>
          <strong>Go offline.</strong> Flip the <em>Online</em> switch of {split ? 'one of the two panes' : 'this window'} off.
        </li>
        <li>
          <strong>Edit both sides.</strong> Rename the same card in both panes; on another card change the notes on one side and the
          priority on the other; vote on a card in both; move a different checklist item on each side.
        </li>
        <li>
          <strong>Come back.</strong> Switch it on again: the two titles ask you to choose, everything else merges by itself and every vote
          counts.
        </li>
        <li>
          <strong>Break things.</strong> Reload while offline and watch the outbox survive.{' '}
          {split ? (seat === 1 ? 'Open this page in another window to join as two more people.' : `This is window ${seat}: two more people.`) : ''}
        </li>
      </ol>
    </section>
  )
}
