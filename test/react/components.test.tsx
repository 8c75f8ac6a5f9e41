// @vitest-environment jsdom
import '@testing-library/jest-dom/vitest'
import { act, cleanup, fireEvent, render, screen, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { Profiler, StrictMode, useState } from 'react'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  ConflictModal,
  ConflictToast,
  OfflineBanner,
  PresenceAvatars,
  PresenceIndicator,
  SyncStatusBadge,
} from 'zync/react'
import { ZyncError } from '../../src/index'
import { createFixtureStore, makePeers, sampleError, samples, storageError } from '../../stories/fixtures'

afterEach(cleanup)

describe('ConflictToast', () => {
  it('is a polite, non-blocking notice whose Resolve action calls onResolve', async () => {
    const store = createFixtureStore({ conflicts: samples.manyFields() })
    const onResolve = vi.fn()
    render(<ConflictToast store={store} onResolve={onResolve} className="t" />, { wrapper: StrictMode })
    // The live region holds the message only (its buttons are not read out with it).
    expect(screen.getByRole('status')).toHaveTextContent(/^4 conflicts need your decision$/)
    expect(screen.getByRole('group', { name: '4 conflicts need your decision' })).toHaveClass('zync-toast', 't')
    expect(screen.queryByRole('alertdialog')).toBeNull()
    await userEvent.click(screen.getByRole('button', { name: 'Resolve' }))
    expect(onResolve).toHaveBeenCalledOnce()
  })

  it('is inside a landmark of its own while it shows (portalled into body, it was outside the app\'s), and none once dismissed', async () => {
    // An axe audit: landmark navigation did not reach the notice.
    render(<ConflictToast store={createFixtureStore({ conflicts: samples.oneField() })} onResolve={() => {}} labels={{ region: 'Benachrichtigungen' }} />)
    const region = screen.getByRole('region', { name: 'Benachrichtigungen' })
    expect(region).toContainElement(screen.getByRole('button', { name: 'Resolve' }))
    await userEvent.click(screen.getByRole('button', { name: 'Dismiss' }))
    expect(screen.queryByRole('region')).toBeNull()
  })

  it('steps aside while a ConflictModal of the same store is shown, and comes back when it closes', async () => {
    const store = createFixtureStore({ conflicts: samples.manyFields() })
    const other = createFixtureStore({ conflicts: samples.oneField() })
    function App() {
      const [open, setOpen] = useState(false)
      return (
        <>
          <ConflictToast store={store} onResolve={() => setOpen(true)} />
          <ConflictToast store={other} onResolve={() => {}} />
          <ConflictModal store={store} open={open} onOpenChange={setOpen} />
        </>
      )
    }
    render(<App />, { wrapper: StrictMode })
    const toast = (name: string) => screen.getByText(name, { selector: '.zync-toast p' })
    const announced = () => screen.getAllByRole('status').map((s) => s.textContent)
    expect(announced()).toEqual(['4 conflicts need your decision', '1 conflict needs your decision'])
    await userEvent.click(screen.getAllByRole('button', { name: 'Resolve' })[0]!)
    expect(screen.getByRole('alertdialog')).toBeInTheDocument()
    // Hidden (not shown, not announced), and kept: focus returns to its button when the modal closes.
    expect(toast('4 conflicts need your decision')).not.toBeVisible()
    // Another store's toast is not this modal's business.
    expect(toast('1 conflict needs your decision')).toBeVisible()
    expect(announced()).toEqual(['', '1 conflict needs your decision'])
    await userEvent.keyboard('{Escape}')
    expect(screen.queryByRole('alertdialog')).toBeNull()
    expect(toast('4 conflicts need your decision')).toBeVisible()
    expect(announced()).toEqual(['4 conflicts need your decision', '1 conflict needs your decision'])
    // Found by an accessibility trial: the toast's button was gone, and focus fell to <body>.
    await vi.waitFor(() => expect(screen.getAllByRole('button', { name: 'Resolve' })[0]).toHaveFocus())
  })

  it('gives focus back to where it came from when Keep all in the modal it opened empties the inbox', async () => {
    const store = createFixtureStore({ conflicts: samples.manyFields() })
    function App() {
      const [open, setOpen] = useState(false)
      return (
        <>
          <button>Board</button>
          <ConflictToast store={store} onResolve={() => setOpen(true)} />
          <ConflictModal store={store} open={open} onOpenChange={setOpen} />
        </>
      )
    }
    render(<App />)
    screen.getByRole('button', { name: 'Board' }).focus()
    await userEvent.tab()
    expect(screen.getByRole('button', { name: 'Resolve' })).toHaveFocus()
    await userEvent.keyboard('{Enter}')
    await userEvent.click(within(screen.getByRole('alertdialog')).getByRole('button', { name: 'Keep all mine' }))
    await userEvent.click(within(screen.getByRole('alertdialog')).getByRole('button', { name: 'Keep all mine' }))
    expect(screen.queryByRole('alertdialog')).toBeNull()
    expect(screen.queryByRole('button', { name: 'Resolve' })).toBeNull()
    // Found by an accessibility trial: the toast (the modal's opener) was gone too, and focus fell to <body>.
    await vi.waitFor(() => expect(screen.getByRole('button', { name: 'Board' })).toHaveFocus())
  })

  it('gives focus back when its own Dismiss hides it', async () => {
    const store = createFixtureStore({ conflicts: samples.oneField() })
    render(
      <>
        <button>Board</button>
        <ConflictToast store={store} onResolve={() => {}} />
      </>,
    )
    screen.getByRole('button', { name: 'Board' }).focus()
    await userEvent.tab()
    await userEvent.tab()
    expect(screen.getByRole('button', { name: 'Dismiss' })).toHaveFocus()
    await userEvent.keyboard('{Enter}')
    expect(screen.queryByRole('button', { name: 'Dismiss' })).toBeNull()
    await vi.waitFor(() => expect(screen.getByRole('button', { name: 'Board' })).toHaveFocus())
  })

  it('says "1 change", follows the inbox, and hides when it is empty', () => {
    const store = createFixtureStore({ conflicts: samples.oneField() })
    render(<ConflictToast store={store} onResolve={() => {}} />)
    expect(screen.getByRole('status')).toHaveTextContent('1 conflict needs your decision')
    act(() => store.setConflicts([]))
    expect(screen.getByRole('status')).toBeEmptyDOMElement()
  })

  it('Dismiss hides it until a new conflict arrives; the conflicts stay', async () => {
    const store = createFixtureStore({ conflicts: samples.oneField() })
    render(<ConflictToast store={store} onResolve={() => {}} labels={{ dismiss: 'Close' }} />)
    await userEvent.click(screen.getByRole('button', { name: 'Close' }))
    expect(screen.getByRole('status')).toBeEmptyDOMElement()
    expect(store.sync.conflicts()).toHaveLength(1)
    act(() => store.setConflicts([...store.sync.conflicts(), ...samples.array()]))
    expect(screen.getByRole('status')).toHaveTextContent('2 conflicts need your decision')
  })
})

describe('SyncStatusBadge', () => {
  /** The pill; its live region (role status) holds the state only. */
  const badge = () => screen.getByRole('status').closest<HTMLElement>('.zync-badge')!

  it('announces its state, not its counts: they change with every edit, and a banner beside it says them', async () => {
    // Found by an accessibility trial: with the badge and an OfflineBanner on screen, each offline edit
    // was announced twice ("Offline 3 pending", then "You're offline. 3 changes are waiting to sync.").
    const store = createFixtureStore({ status: { connection: 'offline' } })
    render(<SyncStatusBadge store={store} />)
    act(() => store.setPending(3))
    expect(screen.getByRole('status')).toHaveTextContent(/^Offline$/)
    expect(badge()).toHaveTextContent('Offline3 pending')
    act(() => store.setStatus({ connection: 'online' }))
    expect(screen.getByRole('status')).toHaveTextContent(/^Syncing$/)
  })

  it('online, syncing, offline and error, with the pending count', async () => {
    const store = createFixtureStore()
    render(<SyncStatusBadge store={store} className="b" />)
    expect(badge()).toHaveAttribute('data-state', 'online')
    expect(badge()).toHaveTextContent(/^Synced$/)
    expect(badge()).toHaveClass('zync-badge', 'b')

    act(() => {
      store.setPending(3)
      store.setStatus({ syncing: true })
    })
    // From Synced, Syncing shows only once it lasts (400 ms): a quick write does not flip the badge.
    expect(badge()).toHaveTextContent(/^Synced$/)
    await act(() => new Promise((r) => setTimeout(r, 450)))
    expect(badge()).toHaveAttribute('data-state', 'syncing')
    expect(badge()).toHaveTextContent('Syncing3 pending')

    // Connected, this tab sending nothing, but changes wait (another tab of the device sends them): not "Synced".
    act(() => store.setStatus({ syncing: false }))
    expect(badge()).toHaveAttribute('data-state', 'syncing')
    expect(badge()).toHaveTextContent('Syncing3 pending')

    act(() => store.setStatus({ syncing: false, connection: 'offline' }))
    expect(badge()).toHaveAttribute('data-state', 'offline')
    expect(badge()).toHaveTextContent('Offline3 pending')
    // A change not yet written to IndexedDB is waiting too (as in usePendingOperations): no flicker while typing.
    act(() => store.setStatus({ unpersisted: 2 }))
    expect(badge()).toHaveTextContent('Offline5 pending')
    act(() => store.setStatus({ unpersisted: 0 }))

    act(() => store.setStatus({ error: storageError }))
    expect(badge()).toHaveAttribute('data-state', 'error')
    // The reason, without the library's log prefix.
    expect(badge()).toHaveAttribute('title', 'local storage failed: the browser’s storage for this site is full')
  })

  it('a write acknowledged quickly never shows Syncing; one that takes a while does, and every other change shows at once', async () => {
    const store = createFixtureStore()
    const seen: string[] = []
    render(<SyncStatusBadge store={store} />)
    const observe = () => seen.push(`${badge().getAttribute('data-state')}:${badge().textContent}`)
    // Twenty keystrokes, each acknowledged within 20 ms.
    for (let i = 0; i < 20; i++) {
      act(() => {
        store.setPending(1)
        store.setStatus({ syncing: true })
      })
      observe()
      await act(() => new Promise((r) => setTimeout(r, 20)))
      act(() => {
        store.setPending(0)
        store.setStatus({ syncing: false })
      })
      observe()
    }
    expect(new Set(seen)).toEqual(new Set(['online:Synced']))
    // A long sync whose status changes every 100 ms (acks coming in) shows Syncing 400 ms after it began.
    act(() => {
      store.setPending(900)
      store.setStatus({ syncing: true })
    })
    for (let left = 800; left > 0; left -= 100) {
      await act(() => new Promise((r) => setTimeout(r, 100)))
      act(() => store.setPending(left))
    }
    expect(badge()).toHaveAttribute('data-state', 'syncing')
    expect(badge()).toHaveTextContent('Syncing100 pending')
    act(() => {
      store.setPending(0)
      store.setStatus({ syncing: false })
    })
    // Going offline shows at once, and so does Syncing when coming from offline.
    act(() => store.setStatus({ connection: 'offline' }))
    expect(badge()).toHaveAttribute('data-state', 'offline')
    act(() => {
      store.setPending(2)
      store.setStatus({ connection: 'online', syncing: true })
    })
    expect(badge()).toHaveAttribute('data-state', 'syncing')
    expect(badge()).toHaveTextContent('Syncing2 pending')
  })

  it('shows "connecting" as syncing and formats large counts', () => {
    render(<SyncStatusBadge store={createFixtureStore({ pending: 1250, status: { connection: 'connecting' } })} />)
    expect(badge()).toHaveAttribute('data-state', 'syncing')
    expect(badge()).toHaveTextContent(`${(1250).toLocaleString()} pending`)
  })

  it('connected and idle with conflicts in the inbox is "Needs review", not "Synced"', () => {
    const store = createFixtureStore()
    render(<SyncStatusBadge store={store} />)
    act(() => store.setConflicts(samples.manyFields()))
    expect(badge()).toHaveAttribute('data-state', 'conflict')
    expect(badge()).toHaveTextContent(/^Needs review4 conflicts$/)
    // Offline, the conflicts still show (they are not "Offline" business).
    act(() => store.setStatus({ connection: 'offline' }))
    expect(badge()).toHaveAttribute('data-state', 'offline')
    expect(badge()).toHaveTextContent(/^Offline4 conflicts$/)
  })

  it('says the server cannot be reached while a connection attempt failed, not "Sync error"', () => {
    const store = createFixtureStore({ pending: 2, status: { connection: 'connecting', error: sampleError } })
    render(<SyncStatusBadge store={store} />)
    expect(badge()).toHaveAttribute('data-state', 'unreachable')
    // The "Why?" button shows the reason on touch and keyboard.
    expect(badge()).toHaveTextContent(/^Can’t reach server: .*2 pendingWhy\?$/)
    expect(badge()).toHaveAttribute('title', 'cannot reach the sync server; retrying in 8 s')
    // The reason is read with the state (a tooltip is out of reach of screen readers, touch and keyboard).
    expect(within(badge()).getByRole('status')).toHaveTextContent(/^Can’t reach server: cannot reach the sync server; retrying in 8 s$/)
  })

  it('says access was refused (not "Sync error") while the server refuses the store for good', () => {
    const store = createFixtureStore({ pending: 1, status: { connection: 'offline', error: new ZyncError('UNAUTHENTICATED', '[zync] authentication failed: token expired') } })
    render(<SyncStatusBadge store={store} />)
    expect(badge()).toHaveAttribute('data-state', 'refused')
    expect(badge()).toHaveTextContent(/^Access refused: authentication failed: token expired1 pendingWhy\?$/)
    expect(badge()).toHaveAttribute('title', 'authentication failed: token expired')
  })

  it('takes its tooltip from labels.errorTitle, by error code (the English engine message could not be translated)', () => {
    const store = createFixtureStore({ status: { connection: 'offline', error: new ZyncError('UNAUTHENTICATED', '[zync] authentication failed: token expired') } })
    render(<SyncStatusBadge store={store} labels={{ refused: 'Zugriff verweigert', why: 'Warum?', errorTitle: (e) => (e.code === 'UNAUTHENTICATED' ? 'Anmeldung abgelaufen' : e.code) }} />)
    expect(within(badge()).getByRole('status')).toHaveTextContent(/^Zugriff verweigert: Anmeldung abgelaufen$/)
    expect(badge()).toHaveAttribute('title', 'Anmeldung abgelaufen')
    // Touch and keyboard have no tooltip: the button shows the same reason under the badge.
    const why = within(badge()).getByRole('button', { name: 'Warum?' })
    expect(badge().querySelector('.zync-badge-reason')).not.toBeVisible()
    fireEvent.click(why)
    expect(why).toHaveAttribute('aria-expanded', 'true')
    expect(badge().querySelector('.zync-badge-reason')).toBeVisible()
    expect(badge().querySelector('.zync-badge-reason')).toHaveTextContent(/^Anmeldung abgelaufen$/)
    fireEvent.keyDown(why, { key: 'Escape' })
    expect(badge().querySelector('.zync-badge-reason')).not.toBeVisible()
    fireEvent.click(why)
    act(() => store.setStatus({ connection: 'online', error: undefined }))
    expect(badge()).not.toHaveAttribute('title')
    expect(within(badge()).getByRole('status')).toHaveTextContent(/^Synced$/)
    // No reason, no button, nothing left open.
    expect(within(badge()).queryByRole('button')).toBeNull()
    expect(badge().querySelector('.zync-badge-reason')).not.toBeVisible()
  })

  it('stays an error while dead letters wait, after the error itself is gone (never "Synced" for changes that will not sync)', () => {
    const store = createFixtureStore({ status: { deadLetters: 2 } })
    render(<SyncStatusBadge store={store} />)
    expect(badge()).toHaveAttribute('data-state', 'error')
    expect(badge()).toHaveTextContent(/^Sync error2 not synced$/)
    act(() => store.setStatus({ deadLetters: 0 }))
    expect(badge()).toHaveAttribute('data-state', 'online')
  })

  it('takes labels', () => {
    const store = createFixtureStore({ pending: 2 })
    render(<SyncStatusBadge store={store} labels={{ online: 'En ligne', syncing: 'Synchronisation', pending: (n) => `${n} en attente` }} />)
    expect(badge()).toHaveTextContent('Synchronisation2 en attente')
    act(() => store.setPending(0))
    expect(badge()).toHaveTextContent(/^En ligne$/)
  })
})

describe('OfflineBanner', () => {
  it('is shown only while offline, with the number of changes waiting', () => {
    const store = createFixtureStore()
    render(<OfflineBanner store={store} />)
    expect(screen.getByRole('status')).toBeEmptyDOMElement()
    act(() => store.setStatus({ connection: 'offline' }))
    expect(screen.getByRole('status')).toHaveTextContent('You’re offline. Changes you make will sync when you reconnect.')
    act(() => store.setPending(1))
    expect(screen.getByRole('status')).toHaveTextContent('1 change is waiting to sync.')
    act(() => store.setPending(3))
    expect(screen.getByRole('status')).toHaveTextContent('3 changes are waiting to sync.')
    act(() => store.setPending(250))
    expect(screen.getByRole('status')).toHaveTextContent('250 changes are waiting to sync.')
    act(() => store.setStatus({ unpersisted: 1 }))
    expect(screen.getByRole('status')).toHaveTextContent('251 changes are waiting to sync.')
    act(() => store.setStatus({ unpersisted: 0 }))
    act(() => store.setStatus({ connection: 'online' }))
    expect(screen.getByRole('status')).toBeEmptyDOMElement()
  })

  it('is shown while the sync server cannot be reached, and not during an ordinary (re)connect', () => {
    const store = createFixtureStore({ pending: 2 })
    render(<OfflineBanner store={store} />)
    act(() => store.setStatus({ connection: 'connecting' }))
    expect(screen.getByRole('status')).toBeEmptyDOMElement()
    act(() => store.setStatus({ connection: 'connecting', error: sampleError }))
    expect(screen.getByRole('status')).toHaveTextContent('Can’t reach the sync server. 2 changes are waiting to sync.')
    act(() => store.setStatus({ connection: 'online', error: undefined }))
    expect(screen.getByRole('status')).toBeEmptyDOMElement()
  })

  it('shows the app\'s action for its state (a sign-in button after a refusal)', () => {
    const store = createFixtureStore({ status: { connection: 'offline' } })
    render(<OfflineBanner store={store} action={(state) => (state === 'refused' ? <button>Sign in again</button> : undefined)} />)
    expect(screen.queryByRole('button')).toBeNull()
    act(() => store.setStatus({ connection: 'offline', error: new ZyncError('UNAUTHENTICATED', '[zync] authentication failed') }))
    expect(screen.getByRole('button', { name: 'Sign in again' })).toBeInTheDocument()
    // The live region says the state; the action's own text is not announced with it.
    expect(screen.getByRole('status')).toHaveTextContent('The sync server refused this connection.')
    expect(screen.getByRole('status')).not.toHaveTextContent('Sign in again')
  })

  it('gives focus back to where it came from when its action makes it go', async () => {
    const store = createFixtureStore({ status: { connection: 'offline' } })
    render(
      <>
        <button>Board</button>
        <OfflineBanner store={store} action={() => <button onClick={() => store.sync.connect()}>Reconnect</button>} />
      </>,
    )
    screen.getByRole('button', { name: 'Board' }).focus()
    await userEvent.tab()
    expect(screen.getByRole('button', { name: 'Reconnect' })).toHaveFocus()
    await userEvent.keyboard('{Enter}')
    expect(screen.queryByRole('button', { name: 'Reconnect' })).toBeNull()
    // Found by an accessibility trial: focus fell to <body> with the banner.
    await vi.waitFor(() => expect(screen.getByRole('button', { name: 'Board' })).toHaveFocus())
  })

  it('leaves focus alone when the user moved it elsewhere before the banner went', async () => {
    const store = createFixtureStore({ status: { connection: 'offline' } })
    render(
      <>
        <button>Board</button>
        <OfflineBanner store={store} action={() => <button>Reconnect</button>} />
        <input aria-label="Title" />
      </>,
    )
    screen.getByRole('button', { name: 'Board' }).focus()
    await userEvent.tab()
    await userEvent.tab()
    expect(screen.getByRole('textbox', { name: 'Title' })).toHaveFocus()
    act(() => store.setStatus({ connection: 'online' }))
    await new Promise((r) => setTimeout(r, 10))
    expect(screen.getByRole('textbox', { name: 'Title' })).toHaveFocus()
  })

  it('says the server refused the connection (not "offline") after a refusal for good', () => {
    const store = createFixtureStore({ pending: 1 })
    render(<OfflineBanner store={store} />)
    const refusal = new ZyncError('UNAUTHENTICATED', '[zync] authentication failed: token expired')
    act(() => store.setStatus({ connection: 'offline', error: refusal }))
    expect(screen.getByRole('status')).toHaveTextContent('The sync server refused this connection. 1 change is kept on this device until access is restored.')
    expect(screen.getByRole('status').closest('.zync-banner')).toHaveAttribute('data-state', 'refused')
    // Offline with an error of another kind (a refused op) is still plain offline.
    act(() => store.setStatus({ connection: 'offline', error: new ZyncError('BAD_REQUEST', '[zync] bad op') }))
    expect(screen.getByRole('status')).toHaveTextContent('You’re offline.')
  })
})

describe('PresenceAvatars', () => {
  it('takes a negative or fractional `max` as the whole number at least 0 it can mean', () => {
    const { unmount } = render(<PresenceAvatars store={createFixtureStore({ presence: makePeers(12) })} max={-1} />)
    expect(screen.getAllByRole('listitem')).toHaveLength(1)
    expect(screen.getByRole('button', { name: '12 more' })).toBeInTheDocument()
    unmount()
    render(<PresenceAvatars store={createFixtureStore({ presence: makePeers(12) })} max={2.7} />)
    expect(screen.getByRole('button', { name: '10 more' })).toBeInTheDocument()
  })

  it('shows up to `max` avatars and a "+N" overflow', () => {
    render(<PresenceAvatars store={createFixtureStore({ presence: makePeers(12) })} max={5} />)
    const list = screen.getByRole('list', { name: '12 people here' })
    expect(within(list).getAllByRole('listitem')).toHaveLength(6)
    expect(screen.getByRole('button', { name: '7 more' })).toHaveTextContent('+7')
    const first = screen.getByRole('img', { name: 'Ana Souza' })
    expect(first).toHaveTextContent('AS')
    expect(first).toHaveStyle({ background: '#4f46e5', color: '#fff' })
    // A light colour gets dark text.
    render(<PresenceAvatars store={createFixtureStore({ presence: makePeers(10).slice(9) })} />)
    expect(screen.getByRole('img', { name: 'Jade Wilson' })).toHaveStyle({ color: '#111' })
  })

  it('names are reachable without a mouse: avatars take focus, and "+N" lists the rest until Escape or a click elsewhere', async () => {
    const peers = makePeers(8)
    render(
      <>
        <PresenceAvatars store={createFixtureStore({ presence: peers })} max={5} />
        <button type="button">elsewhere</button>
      </>,
      { wrapper: StrictMode },
    )
    const shown = screen.getAllByRole('img')
    expect(shown).toHaveLength(5)
    // Each shown avatar is in the tab order, with its name beside it (shown on focus or hover by CSS).
    for (const [i, a] of shown.entries()) {
      expect(a).toHaveAttribute('tabindex', '0')
      expect(a.parentElement!.querySelector('.zync-tip')).toHaveTextContent(peers[i]!.user.name!)
    }
    await userEvent.tab()
    expect(shown[0]).toHaveFocus()
    const more = screen.getByRole('button', { name: '3 more' })
    expect(more).toHaveAttribute('aria-expanded', 'false')
    expect(screen.queryByText(peers[7]!.user.name!)).toBeNull()
    await userEvent.click(more)
    expect(more).toHaveAttribute('aria-expanded', 'true')
    const rest = screen.getByRole('list', { name: '3 more' })
    expect(within(rest).getAllByRole('listitem').map((li) => li.textContent)).toEqual(peers.slice(5).map((p) => p.user.name!.split(' ').map((w) => w[0]).join('').slice(0, 2) + p.user.name))
    // The rest's avatars are decoration beside the names: not announced twice.
    expect(within(rest).queryAllByRole('img')).toHaveLength(0)
    await userEvent.keyboard('{Escape}')
    expect(screen.queryByRole('list', { name: '3 more' })).toBeNull()
    expect(more).toHaveAttribute('aria-expanded', 'false')
    await userEvent.click(more)
    expect(screen.getByRole('list', { name: '3 more' })).toBeInTheDocument()
    await userEvent.click(screen.getByRole('button', { name: 'elsewhere' }))
    expect(screen.queryByRole('list', { name: '3 more' })).toBeNull()
    await userEvent.click(more)
    await userEvent.click(more)
    expect(screen.queryByRole('list', { name: '3 more' })).toBeNull()
  })

  it('one avatar per person: several tabs of one user count once, and without includeSelf my other tabs are left out too', () => {
    const [me, ana, ben] = makePeers(3, { withSelf: true })
    const tab = (p: typeof me, clientId: string) => ({ ...p!, clientId, self: false })
    const store = createFixtureStore({ presence: [me!, tab(me!, 'my-other-tab'), ana!, tab(ana!, 'ana-phone'), ben!] })
    const { rerender } = render(<PresenceAvatars store={store} />)
    expect(screen.getByRole('list', { name: '2 people here' })).toBeInTheDocument()
    expect(screen.getAllByRole('img').map((i) => i.getAttribute('aria-label'))).toEqual([ana!.user.name, ben!.user.name])
    rerender(<PresenceAvatars store={store} includeSelf />)
    expect(screen.getByRole('list', { name: '3 people here' })).toBeInTheDocument()
  })

  it('no overflow chip when everyone fits; self excluded unless includeSelf', () => {
    const store = createFixtureStore({ presence: makePeers(4, { withSelf: true }) })
    const { rerender } = render(<PresenceAvatars store={store} />)
    expect(screen.getAllByRole('img')).toHaveLength(3)
    expect(screen.queryByRole('button', { name: /more/ })).toBeNull()
    rerender(<PresenceAvatars store={store} includeSelf max={2} label={(n) => `${n} here`} />)
    expect(screen.getByRole('list', { name: '4 here' })).toBeInTheDocument()
    // Self first, marked as you (name and ring), then the others.
    expect(screen.getAllByRole('img').map((i) => i.getAttribute('aria-label'))).toEqual(['Ana Souza (you)', 'Ben Carter'])
    expect(screen.getByRole('button', { name: '2 more' })).toHaveTextContent('+2')
    expect(screen.getAllByRole('img')[0]).toHaveClass('zync-avatar-self')
    expect(screen.getAllByRole('img')[1]).not.toHaveClass('zync-avatar-self')
  })

  it('renders again only when who is here changes, not when their presence state does; "1 person here"; texts can be translated', () => {
    const peers = makePeers(8)
    const store = createFixtureStore({ presence: peers.slice(0, 1) })
    let renders = 0
    const onRender = () => void renders++
    render(
      <Profiler id="avatars" onRender={onRender}>
        <PresenceAvatars store={store} max={5} labels={{ more: (n) => `${n} weitere`, you: (name) => `${name} (du)` }} label={(n) => `${n} hier`} />
      </Profiler>,
    )
    expect(screen.getByRole('list', { name: '1 hier' })).toBeInTheDocument()
    act(() => store.setPresence(peers))
    expect(screen.getByRole('button', { name: '3 weitere' })).toBeInTheDocument()
    const before = renders
    for (let i = 0; i < 20; i++) act(() => store.setPresence(store.sync.presence().map((p) => ({ ...p, user: { ...p.user }, state: { cursor: i } }))))
    expect(renders).toBe(before)
    act(() => store.setPresence(store.sync.presence().slice(1)))
    expect(renders).toBe(before + 1)
    expect(screen.getByRole('button', { name: '2 weitere' })).toBeInTheDocument()
    cleanup()
    render(<PresenceAvatars store={createFixtureStore({ presence: makePeers(1) })} />)
    expect(screen.getByRole('list', { name: '1 person here' })).toBeInTheDocument()
  })

  it('uses the picture when there is one', () => {
    const [peer] = makePeers(1)
    const store = createFixtureStore({ presence: [{ ...peer!, user: { ...peer!.user, avatarUrl: 'data:image/png;base64,' } }] })
    render(<PresenceAvatars store={store} />)
    expect(screen.getByRole('img', { name: 'Ana Souza' }).querySelector('img')).toHaveAttribute('alt', '')
  })
})

describe('PresenceIndicator', () => {
  const focus = { entityId: 'tasks/42', field: 'title' }

  it('names who else is editing the field', () => {
    const store = createFixtureStore({ presence: makePeers(2, { withSelf: true, focus }) })
    render(<PresenceIndicator store={store} {...focus} className="i" />)
    const status = screen.getByRole('status')
    expect(status).toHaveClass('zync-indicator', 'i')
    expect(status).toHaveTextContent('Ben Carter is editing')
    act(() => store.setPresence(makePeers(3, { withSelf: true, focus })))
    expect(status).toHaveTextContent('Ben Carter and Chloé Martin are editing')
    act(() => store.setPresence(makePeers(5, { withSelf: true, focus })))
    expect(status).toHaveTextContent('Ben Carter and 3 others are editing')
  })

  it('ignores peers on other fields and myself', () => {
    const store = createFixtureStore({ presence: makePeers(3, { withSelf: true, focus: { entityId: 'tasks/42', field: 'notes' } }) })
    render(<PresenceIndicator store={store} {...focus} />)
    expect(screen.getByRole('status')).toBeEmptyDOMElement()
    act(() => store.sync.setPresence({ focus }))
    expect(screen.getByRole('status')).toBeEmptyDOMElement()
  })

  it("leaves out my own other tabs, names a person on two tabs once, and does not re-render while cursors move", () => {
    // Found by a presence trial: a user's second tab said "Ada is editing" about her first tab; and with
    // 30 peers moving cursors at 60 Hz every indicator (and the avatars) re-rendered on every message.
    const [me, ben] = makePeers(2, { withSelf: true, focus })
    const otherTab = { ...me!, clientId: 'my-other-tab', self: false, state: { focus } }
    const benPhone = { ...ben!, clientId: 'ben-phone' }
    const store = createFixtureStore({ presence: [me!, otherTab, ben!, benPhone] })
    let renders = 0
    render(
      <Profiler id="indicator" onRender={() => void renders++}>
        <PresenceIndicator store={store} {...focus} />
      </Profiler>,
    )
    const status = screen.getByRole('status')
    expect(status).toHaveTextContent('Ben Carter is editing')
    const before = renders
    const moved = (n: number) => store.sync.presence().map((p) => (p.self ? p : { ...p, user: { ...p.user }, state: { ...p.state, cursor: n } }))
    for (let i = 0; i < 20; i++) act(() => store.setPresence(moved(i)))
    expect(status).toHaveTextContent('Ben Carter is editing')
    expect(renders).toBe(before)
  })

  it('takes a label function', () => {
    const store = createFixtureStore({ presence: makePeers(3, { focus }) })
    render(<PresenceIndicator store={store} {...focus} label={(names) => `${names.length} ✎`} />)
    expect(screen.getByRole('status')).toHaveTextContent('3 ✎')
  })
})
