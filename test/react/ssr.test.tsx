// @vitest-environment jsdom
import '@testing-library/jest-dom/vitest'
import { act } from '@testing-library/react'
import { hydrateRoot } from 'react-dom/client'
import { renderToString } from 'react-dom/server'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  ConflictModal,
  ConflictToast,
  OfflineBanner,
  PresenceAvatars,
  PresenceIndicator,
  type SyncedStore,
  SyncStatusBadge,
  useConflicts,
  useIsDirty,
  usePendingOperations,
  usePresence,
  useSyncStatus,
} from 'zync/react'
import { createFixtureStore, makePeers, samples } from '../../stories/fixtures'

const focus = { entityId: 'tasks/42', field: 'title' }

function Hooks({ store }: { store: SyncedStore }) {
  const s = useSyncStatus(store)
  const { conflicts } = useConflicts(store)
  const { others } = usePresence(store)
  const ops = usePendingOperations(store)
  const dirty = useIsDirty(store)
  const online = useSyncStatus(store, (st) => st.connection === 'online')
  return <output>{`${s.connection} ${conflicts.length} ${others.length} ${ops.length} ${dirty} ${online}`}</output>
}

function App({ store }: { store: SyncedStore }) {
  return (
    <main>
      <Hooks store={store} />
      <SyncStatusBadge store={store} />
      <OfflineBanner store={store} />
      <PresenceAvatars store={store} />
      <PresenceIndicator store={store} {...focus} />
      <ConflictToast store={store} onResolve={() => {}} />
      <ConflictModal store={store} />
    </main>
  )
}

const fixture = () =>
  createFixtureStore({
    pending: 3,
    status: { connection: 'offline' },
    conflicts: samples.manyFields(),
    presence: makePeers(4, { withSelf: true, focus }),
  })

/** Renders `App` on the "server" with one store and hydrates it with another; fails on any mismatch or console error. */
async function serverRenderThenHydrate(onServer: SyncedStore, inBrowser: SyncedStore) {
  const container = document.createElement('div')
  container.innerHTML = renderToString(<App store={onServer} />)
  document.body.appendChild(container)
  const errors = vi.spyOn(console, 'error')
  const recoverable = vi.fn()
  let root!: ReturnType<typeof hydrateRoot>
  await act(async () => {
    root = hydrateRoot(container, <App store={inBrowser} />, { onRecoverableError: recoverable })
  })
  expect(recoverable).not.toHaveBeenCalled()
  expect(errors).not.toHaveBeenCalled()
  return { container, root }
}

afterEach(() => {
  vi.unstubAllGlobals()
  vi.restoreAllMocks()
  document.body.innerHTML = ''
})

describe('server rendering', () => {
  it('renders every hook and component without window or document, and no portals', () => {
    const store = fixture()
    vi.stubGlobal('window', undefined)
    vi.stubGlobal('document', undefined)
    vi.stubGlobal('indexedDB', undefined)
    const html = renderToString(<App store={store} />)
    vi.unstubAllGlobals()
    // The server renders "not known yet" whatever its store holds (a server-side store is not the
    // user's): connecting, nothing pending, no one present; no "You're offline" banner.
    expect(html).toContain('connecting 0 0 0 false false')
    expect(html).not.toContain('You’re offline.')
    expect(html).toContain('data-state="syncing"')
    expect(html).not.toContain('are editing')
    // Dialog and toast are portalled into document.body on the client only.
    expect(html).not.toContain('alertdialog')
    expect(html).not.toContain('need your decision')
  })

  it('hydrates without a mismatch when the server-side store and the browser store differ, then shows the live state', async () => {
    // As in Next.js: the server's store (here: online, nothing pending) is not the browser's.
    const { container, root } = await serverRenderThenHydrate(createFixtureStore({ status: { connection: 'online', ready: true } }), fixture())
    expect(container.querySelector('output')).toHaveTextContent('offline 4 3 3 true')
    expect(container).toHaveTextContent('You’re offline.')
    expect(container).toHaveTextContent('Ben Carter and 2 others are editing')
    act(() => root.unmount())
  })

  it('hydrates without mismatches, then opens the dialog on the client (the toast steps aside for it)', async () => {
    const store = fixture()
    const { root } = await serverRenderThenHydrate(store, store)
    expect(document.body.querySelector('[role="alertdialog"]')).toBeInTheDocument()
    // The toast's live region is mounted; its notice waits while the modal asks the same question.
    expect(document.body.querySelector('.zync-toast-region')).toBeInTheDocument()
    expect(document.body.querySelector('.zync-toast:not([hidden])')).toBeNull()
    act(() => root.unmount())
  })

  it('the react entry point touches no browser global at import', async () => {
    vi.resetModules()
    vi.stubGlobal('window', undefined)
    vi.stubGlobal('document', undefined)
    const mod = await import('../../src/react/index')
    expect(Object.keys(mod).sort()).toEqual([
      'ConflictModal',
      'ConflictToast',
      'OfflineBanner',
      'PresenceAvatars',
      'PresenceIndicator',
      'SyncStatusBadge',
      'useConflicts',
      'useIsDirty',
      'usePendingOperations',
      'usePresence',
      'useSyncStatus',
    ])
  })
})
