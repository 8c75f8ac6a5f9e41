// @vitest-environment jsdom
import '@testing-library/jest-dom/vitest'
import { act, cleanup, render, screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { StrictMode, useState } from 'react'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { ConflictModal, type ConflictModalProps } from 'zync/react'
import { createFixtureStore, makeConflict, makePeers, samples } from '../../stories/fixtures'

afterEach(cleanup)

function setup(props: Partial<ConflictModalProps> = {}, conflicts = samples.manyFields()) {
  const store = createFixtureStore({ conflicts })
  const user = userEvent.setup()
  const utils = render(
    <StrictMode>
      <button>outside</button>
      <ConflictModal store={store} {...props} />
    </StrictMode>,
  )
  return { store, user, ...utils }
}

const dialog = () => screen.getByRole('alertdialog')
const buttons = () => within(dialog()).getAllByRole('button')

describe('ConflictModal', () => {
  it('opens while the inbox holds conflicts, as a labelled, described alertdialog in document.body', () => {
    const { container } = setup()
    const d = dialog()
    expect(d).toHaveAttribute('aria-modal', 'true')
    expect(d).toHaveAccessibleName(/resolve sync conflicts/i)
    expect(d).toHaveAccessibleDescription(/choose what to keep/i)
    expect(container).not.toContainElement(d)
    expect(within(d).getAllByRole('region')).toHaveLength(4)
  })

  it('names the other writer by name while they are present, else by user id', () => {
    // makePeers: u2 is Ben Carter. Here the conflict's other side is user 'ben', not present.
    const absent = samples.oneField().map((c) => ({ ...c, remoteMeta: { ...c.remoteMeta, userId: 'ben' } }))
    render(<ConflictModal store={createFixtureStore({ conflicts: absent, presence: makePeers(3) })} />)
    expect(within(dialog()).getByText(/· ben$/)).toBeInTheDocument()
    cleanup()
    const withBen = samples.oneField().map((c) => ({ ...c, remoteMeta: { ...c.remoteMeta, userId: 'u2' } }))
    render(<ConflictModal store={createFixtureStore({ conflicts: withBen, presence: makePeers(3) })} />)
    expect(within(dialog()).getByText(/· Ben Carter$/)).toBeInTheDocument()
  })

  it('names the other writer once they appear, without making this client present', () => {
    // A tab opened while a conflict was open showed the user id until something else re-rendered it.
    const fixture = createFixtureStore({ conflicts: samples.oneField().map((c) => ({ ...c, remoteMeta: { ...c.remoteMeta, userId: 'u2' } })), presence: [] })
    const present = vi.spyOn(fixture.sync, 'subscribePresence')
    render(<ConflictModal store={fixture} />)
    expect(within(dialog()).getByText(/· u2$/)).toBeInTheDocument()
    act(() => fixture.setPresence(makePeers(3)))
    expect(within(dialog()).getByText(/· Ben Carter$/)).toBeInTheDocument()
    expect(present).not.toHaveBeenCalled()
  })

  it('uncontrolled, waits while the user types in a text field, then opens once they pause', async () => {
    // Found by an app trial: opening mid-word took focus, and the next keys went to its buttons.
    const store = createFixtureStore({ conflicts: [] })
    const user = userEvent.setup()
    render(
      <>
        <input aria-label="notes" />
        <ConflictModal store={store} />
      </>,
    )
    const input = screen.getByRole('textbox', { name: 'notes' })
    await user.click(input)
    await user.type(input, 'typing')
    act(() => store.setConflicts(samples.oneField()))
    await user.type(input, ' on ')
    expect(screen.queryByRole('alertdialog')).toBeNull()
    expect(input).toHaveFocus()
    expect(input).toHaveValue('typing on ')
    await waitFor(() => expect(screen.getByRole('alertdialog')).toBeInTheDocument(), { timeout: 3000 })
    // Focus moves in the effect after the render that shows it (opened by a timer, outside act: a busy
    // machine can check in between).
    await waitFor(() => expect(screen.getByRole('button', { name: 'Decide later' })).toHaveFocus(), { timeout: 1000 })
  })

  it('opens at once when focus is not in a text field', async () => {
    const store = createFixtureStore({ conflicts: [] })
    const user = userEvent.setup()
    render(
      <>
        <input aria-label="notes" />
        <button>elsewhere</button>
        <ConflictModal store={store} />
      </>,
    )
    await user.type(screen.getByRole('textbox', { name: 'notes' }), 'typing')
    await user.click(screen.getByRole('button', { name: 'elsewhere' }))
    act(() => store.setConflicts(samples.oneField()))
    expect(screen.getByRole('alertdialog')).toBeInTheDocument()
  })

  it('is not shown with an empty inbox', () => {
    setup({}, [])
    expect(screen.queryByRole('alertdialog')).toBeNull()
  })

  it('moves focus to "Decide later" and traps Tab and Shift+Tab', async () => {
    const { user } = setup()
    expect(screen.getByRole('button', { name: 'Decide later' })).toHaveFocus()
    const all = buttons()
    all.at(-1)!.focus()
    await user.tab()
    expect(all[0]).toHaveFocus()
    await user.tab({ shift: true })
    expect(all.at(-1)).toHaveFocus()
    // Ordinary Tab moves along inside.
    all[0]!.focus()
    await user.tab()
    expect(all[1]).toHaveFocus()
  })

  it('Esc closes to "decide later": conflicts stay, onOpenChange(false), focus returns', async () => {
    const store = createFixtureStore({ conflicts: samples.oneField() })
    const onOpenChange = vi.fn()
    const user = userEvent.setup()
    function App() {
      const [open, setOpen] = useState(false)
      return (
        <>
          <button onClick={() => setOpen(true)}>review</button>
          <ConflictModal
            store={store}
            open={open}
            onOpenChange={(o) => {
              onOpenChange(o)
              setOpen(o)
            }}
          />
        </>
      )
    }
    render(<App />)
    expect(screen.queryByRole('alertdialog')).toBeNull()
    await user.click(screen.getByRole('button', { name: 'review' }))
    expect(dialog()).toBeInTheDocument()
    await user.keyboard('{Escape}')
    expect(screen.queryByRole('alertdialog')).toBeNull()
    expect(onOpenChange).toHaveBeenCalledWith(false)
    expect(store.sync.conflicts()).toHaveLength(1)
    expect(store.resolutions).toEqual([])
    expect(screen.getByRole('button', { name: 'review' })).toHaveFocus()
  })

  it('uncontrolled: Esc puts the current conflicts off; a new conflict opens it again', async () => {
    const { store, user } = setup({}, samples.oneField())
    screen.getByRole('button', { name: 'outside' }).focus()
    dialog()
    await user.keyboard('{Escape}')
    expect(screen.queryByRole('alertdialog')).toBeNull()
    act(() => store.setConflicts([...store.sync.conflicts(), ...samples.array()]))
    expect(within(dialog()).getAllByRole('region')).toHaveLength(2)
  })

  it('clicking outside the panel does not close it', async () => {
    const { user } = setup()
    await user.click(dialog().parentElement!)
    expect(dialog()).toBeInTheDocument()
  })

  it('"Decide later" behaves like Esc', async () => {
    const onOpenChange = vi.fn()
    const { user, store } = setup({ onOpenChange })
    await user.click(screen.getByRole('button', { name: 'Decide later' }))
    expect(screen.queryByRole('alertdialog')).toBeNull()
    expect(onOpenChange).toHaveBeenCalledWith(false)
    expect(store.sync.conflicts()).toHaveLength(4)
  })

  it('"Decide later" holds for a store made again for the same document (a navigation back to a board), until a new conflict arrives', async () => {
    // A Next.js trial: each visit of a board makes its store again, and the dialog opened again at each.
    const user = userEvent.setup()
    const conflicts = samples.oneField()
    const first = createFixtureStore({ conflicts })
    const view = render(<ConflictModal store={first} />)
    await user.click(screen.getByRole('button', { name: 'Decide later' }))
    expect(screen.queryByRole('alertdialog')).toBeNull()
    view.unmount()
    const again = createFixtureStore({ conflicts })
    Object.assign(again.sync, { name: first.sync.name })
    render(<ConflictModal store={again} />)
    expect(screen.queryByRole('alertdialog')).toBeNull()
    // Another document's store with the same conflict ids still asks.
    cleanup()
    render(<ConflictModal store={createFixtureStore({ conflicts })} />)
    expect(dialog()).toBeInTheDocument()
    cleanup()
    render(<ConflictModal store={again} />)
    expect(screen.queryByRole('alertdialog')).toBeNull()
    act(() => again.setConflicts([...conflicts, makeConflict({ entity: 'docs/other', base: 'a', local: 'b', remote: 'c' })]))
    expect(dialog()).toBeInTheDocument()
  })

  it('keep mine / keep theirs resolve one field; focus stays inside the dialog', async () => {
    const { user, store } = setup()
    const title = screen.getByRole('region', { name: /title/ })
    await user.click(within(title).getByRole('button', { name: 'Keep mine' }))
    expect(store.resolutions).toEqual([{ id: 'mf-title', resolution: 'local' }])
    expect(screen.queryByRole('region', { name: /title/ })).toBeNull()
    expect(dialog()).toContainElement(document.activeElement as HTMLElement)
    const status = screen.getByRole('region', { name: /status/ })
    await user.click(within(status).getByRole('button', { name: 'Keep theirs' }))
    expect(store.resolutions.at(-1)).toEqual({ id: 'mf-status', resolution: 'remote' })
  })

  it('keep all mine resolves everything and closes; onOpenChange(false) when controlled', async () => {
    const onOpenChange = vi.fn()
    const { user, store } = setup({ open: true, onOpenChange })
    await user.click(screen.getByRole('button', { name: 'Keep all mine' }))
    // It asks once more, the chosen action focused.
    expect(store.resolutions).toEqual([])
    expect(dialog()).toHaveTextContent('This decides all 4 conflicts.')
    expect(screen.getByRole('button', { name: 'Keep all mine' })).toHaveFocus()
    await user.keyboard('{Enter}')
    expect(store.resolutions.map((r) => r.resolution)).toEqual(['local', 'local', 'local', 'local'])
    expect(screen.queryByRole('alertdialog')).toBeNull()
    expect(onOpenChange).toHaveBeenCalledWith(false)
  })

  it('keep all mine is one Tab from where focus starts, so it settles nothing until confirmed; Cancel goes back', async () => {
    const { user, store } = setup()
    expect(screen.getByRole('button', { name: 'Decide later' })).toHaveFocus()
    await user.tab()
    expect(screen.getByRole('button', { name: 'Keep all mine' })).toHaveFocus()
    await user.keyboard('{Enter}')
    expect(store.resolutions).toEqual([])
    expect(screen.queryByRole('button', { name: 'Keep all theirs' })).toBeNull()
    expect(screen.getByRole('button', { name: 'Keep all mine' })).toHaveFocus()
    await user.click(within(dialog()).getAllByRole('button', { name: 'Cancel' }).at(-1)!)
    expect(store.resolutions).toEqual([])
    expect(screen.getByRole('button', { name: 'Decide later' })).toHaveFocus()
    expect(screen.getByRole('button', { name: 'Keep all mine' })).toBeInTheDocument()
    // Esc while it asks answers the question (no), as Cancel does: the dialog stays (a designer's trial:
    // it closed the whole dialog); a second Esc closes it, and the pending choice is forgotten.
    await user.click(screen.getByRole('button', { name: 'Keep all theirs' }))
    await user.keyboard('{Escape}')
    expect(screen.getByRole('alertdialog')).toBeInTheDocument()
    expect(screen.getByRole('button', { name: 'Decide later' })).toHaveFocus()
    expect(screen.getByRole('button', { name: 'Keep all theirs' })).toBeInTheDocument()
    await user.keyboard('{Escape}')
    expect(screen.queryByRole('alertdialog')).toBeNull()
    expect(store.resolutions).toEqual([])
  })

  it('a failed resolve keeps the conflict (and the draft) and is not an unhandled rejection', async () => {
    const { user, store } = setup({}, samples.oneField())
    const resolve = vi.spyOn(store.sync, 'resolve').mockRejectedValueOnce(new Error('[zync] offline'))
    await user.click(screen.getByRole('button', { name: 'Edit merged' }))
    await user.click(screen.getByRole('button', { name: 'Apply' }))
    expect(resolve).toHaveBeenCalledWith('title', { value: 'Q3 planning notes (draft)' })
    expect(screen.getByRole('textbox')).toHaveValue('Q3 planning notes (draft)')
    await user.click(screen.getByRole('button', { name: 'Apply' }))
    expect(screen.queryByRole('alertdialog')).toBeNull()
  })

  it('shows the first 25 conflicts and 25 more at each "Show N more"; Keep all settles every one', async () => {
    // A performance trial: 500 conflicts rendered at once were 11,000 nodes and a 585 ms task.
    const many = Array.from({ length: 60 }, (_, i) => makeConflict({ id: `m${i}`, entity: `docs/d${i}`, base: 'b', local: `mine ${i}`, remote: `theirs ${i}` }))
    const { user, store } = setup({}, many)
    expect(within(dialog()).getAllByRole('region')).toHaveLength(25)
    await user.click(screen.getByRole('button', { name: 'Show 35 more' }))
    expect(within(dialog()).getAllByRole('region')).toHaveLength(50)
    await user.click(screen.getByRole('button', { name: 'Show 10 more' }))
    expect(within(dialog()).getAllByRole('region')).toHaveLength(60)
    expect(screen.queryByRole('button', { name: /^Show \d+ more$/ })).toBeNull()
    await user.click(screen.getByRole('button', { name: 'Keep all mine' }))
    await user.click(screen.getByRole('button', { name: 'Keep all mine' }))
    expect(store.resolutions.map((r) => r.id).sort()).toEqual(many.map((c) => c.id).sort())
  })

  it('open={false} keeps it closed whatever the inbox holds', () => {
    setup({ open: false })
    expect(screen.queryByRole('alertdialog')).toBeNull()
  })

  it("every text of the JSON editor can be translated, the parser's message included; JSON reads left to right", async () => {
    // Found by an i18n trial: " (JSON)" was appended in English, and the browser's English parser message too.
    const { user } = setup({ labels: { merged: 'Zusammengeführt', mergedJson: 'Zusammengeführt (JSON)', invalidJson: () => 'Kein gültiges JSON' } }, samples.nestedObject())
    await user.click(screen.getByRole('button', { name: 'Edit merged' }))
    const editor = screen.getByRole('textbox', { name: 'Zusammengeführt (JSON)' })
    expect(editor).toHaveAttribute('data-json')
    await user.clear(editor)
    await user.type(editor, '{{"theme": ')
    expect(screen.getByRole('alert')).toHaveTextContent(/^Kein gültiges JSON$/)
  })

  it('merged JSON value: invalid JSON shows an error and cannot be applied', async () => {
    const { user, store } = setup({}, samples.nestedObject())
    await user.click(screen.getByRole('button', { name: 'Edit merged' }))
    const editor = screen.getByRole('textbox', { name: 'Merged value (JSON)' })
    expect(editor).toHaveFocus()
    // It starts from both sides merged key by key: my theme and push, their locale, email and timezone.
    expect(JSON.parse((editor as HTMLTextAreaElement).value)).toEqual({
      theme: 'dark',
      locale: 'pt-BR',
      notifications: { email: false, push: true },
      timezone: 'America/Sao_Paulo',
    })
    const scrolled: Element[] = []
    // jsdom has no scrollIntoView (the modal calls it when there is one).
    Object.defineProperty(Element.prototype, 'scrollIntoView', {
      configurable: true,
      value: function (this: Element) {
        scrolled.push(this)
      },
    })
    await user.clear(editor)
    await user.type(editor, '{{"theme": ')
    expect(screen.getByRole('alert')).toHaveTextContent(/^Invalid JSON: /)
    // The message pushed Apply and Cancel down: they are scrolled back into view (a designer trial
    // found them below the dialog's fold).
    expect(scrolled).toContain(screen.getByRole('button', { name: 'Apply' }).parentElement)
    delete (Element.prototype as { scrollIntoView?: unknown }).scrollIntoView
    expect(editor).toHaveAttribute('aria-invalid', 'true')
    expect(editor).toHaveAccessibleDescription(/invalid json/i)
    const apply = screen.getByRole('button', { name: 'Apply' })
    expect(apply).toBeDisabled()
    await user.click(apply)
    expect(store.resolutions).toEqual([])
    await user.type(editor, '"dark"}')
    expect(screen.queryByRole('alert')).toBeNull()
    await user.click(apply)
    expect(store.resolutions).toEqual([{ id: 'nested', resolution: { value: { theme: 'dark' } } }])
  })

  it("merged JSON value of neither side's type says so and cannot be applied (resolve() would refuse it)", async () => {
    // A conflict trial: "a string" for an object conflict left Apply enabled, and Apply did nothing, silently.
    const { user, store } = setup({}, samples.nestedObject())
    await user.click(screen.getByRole('button', { name: 'Edit merged' }))
    const editor = screen.getByRole('textbox', { name: 'Merged value (JSON)' })
    const apply = screen.getByRole('button', { name: 'Apply' })
    await user.clear(editor)
    await user.type(editor, '"a string"')
    expect(screen.getByRole('alert')).toHaveTextContent(/^Must be of the type of either side: object$/)
    expect(editor).toHaveAttribute('aria-invalid', 'true')
    expect(editor).toHaveAccessibleDescription(/type of either side/)
    expect(apply).toBeDisabled()
    await user.click(apply)
    expect(store.resolutions).toEqual([])
    await user.clear(editor)
    await user.type(editor, '{{}')
    expect(screen.queryByRole('alert')).toBeNull()
    await user.click(apply)
    expect(store.resolutions).toEqual([{ id: 'nested', resolution: { value: {} } }])
  })

  it('the wrong-type message can be translated', async () => {
    setup({ labels: { wrongType: (t) => `Erwartet: ${t === 'object' ? 'Objekt' : t}` } }, samples.nestedObject())
    const user = userEvent.setup()
    await user.click(screen.getByRole('button', { name: 'Edit merged' }))
    const editor = screen.getByRole('textbox', { name: 'Merged value (JSON)' })
    await user.clear(editor)
    await user.type(editor, '42')
    expect(screen.getByRole('alert')).toHaveTextContent(/^Erwartet: Objekt$/)
  })

  it('merged value: objects by key and arrays of objects with ids by element (mine where both changed); other arrays and scalars start as mine', async () => {
    const item = (id: string, t: string) => ({ id, t })
    const keyed = (key: string, t: string) => ({ key, t })
    const both = createFixtureStore({
      conflicts: [
        { ...samples.nestedObject()[0]!, id: 'clash', base: { a: 1, b: 1 }, local: { a: 2, b: 1 }, remote: { a: 3, b: 4 } },
        { ...samples.array()[0]!, id: 'arr' },
        {
          ...samples.array()[0]!,
          id: 'ids',
          idKey: 'id',
          base: [item('1', 'one'), item('2', 'two'), item('3', 'three')],
          local: [item('1', 'mine'), item('2', 'two'), item('a', 'mine only')],
          remote: [item('1', 'theirs'), item('2', 'TWO'), item('3', 'three'), item('b', 'theirs only')],
        },
        {
          ...samples.array()[0]!,
          id: 'keys',
          idKey: 'key',
          base: [keyed('1', 'one'), keyed('2', 'two')],
          local: [keyed('1', 'mine'), keyed('2', 'two'), keyed('a', 'mine only')],
          remote: [keyed('1', 'theirs'), keyed('2', 'TWO'), keyed('b', 'theirs only')],
        },
      ],
    })
    const user = userEvent.setup()
    render(<ConflictModal store={both} open />)
    for (const b of screen.getAllByRole('button', { name: 'Edit merged' })) await user.click(b)
    const [obj, arr, ids, keys] = screen.getAllByRole('textbox') as HTMLTextAreaElement[]
    expect(JSON.parse(obj!.value)).toEqual({ a: 2, b: 4 })
    expect(JSON.parse(arr!.value)).toEqual(['design', 'q3', 'urgent'])
    const merged = JSON.parse(ids!.value) as Array<{ id: string }>
    expect([...merged].sort((x, y) => x.id.localeCompare(y.id))).toEqual([item('1', 'mine'), item('2', 'TWO'), item('a', 'mine only'), item('b', 'theirs only')])
    // The store's conflicts.idKey (carried by the conflict) is the key, not `id`.
    const byKey = JSON.parse(keys!.value) as Array<{ key: string }>
    expect([...byKey].sort((x, y) => x.key.localeCompare(y.key))).toEqual([keyed('1', 'mine'), keyed('2', 'TWO'), keyed('a', 'mine only'), keyed('b', 'theirs only')])
  })

  it('a list of records shows every record key by key, kept, edited, added or removed (not compact JSON beside expanded keys)', () => {
    setup({}, samples.checklist())
    const side = (name: string) => document.querySelector<HTMLElement>(`[data-side="${name}"] .zync-value`)!
    const marked = (name: string, tag: string) => [...side(name).querySelectorAll(tag)].map((e) => e.textContent)
    for (const name of ['base', 'local', 'remote']) expect(side(name).textContent).not.toContain('{')
    // Kept as it was: plain lines.
    expect(side('base').querySelectorAll('.zync-item')).toHaveLength(2)
    expect(side('local')).toHaveTextContent('id "b"text "Update the docs"done false')
    // Edited by id: only the changed key is marked. Added: every key.
    expect(marked('local', 'ins')).toEqual(['true', 'id "c"', 'text "Tell support"', 'done false'])
    expect(marked('local', 'del')).toEqual(['false'])
    // Removed: every key struck through.
    expect(marked('remote', 'del')).toEqual(['"Write the announcement"', 'id "b"', 'text "Update the docs"', 'done false'])
  })

  it('merged text value: a plain text editor, applied as is', async () => {
    const { user, store } = setup({}, samples.oneField())
    await user.click(screen.getByRole('button', { name: 'Edit merged' }))
    const editor = screen.getByRole('textbox', { name: 'Merged value' })
    expect(editor).toHaveValue('Q3 planning notes (draft)')
    await user.clear(editor)
    await user.type(editor, 'Q3 planning notes, final')
    await user.click(screen.getByRole('button', { name: 'Apply' }))
    expect(store.resolutions).toEqual([{ id: 'title', resolution: { value: 'Q3 planning notes, final' } }])
  })

  it('a draft whose conflict is settled elsewhere stays on screen, not applied, until dismissed', async () => {
    // Found by a tabs trial: another tab resolved the conflict and the half-written merge vanished without a word.
    const { user, store } = setup({}, samples.manyFields())
    const [, ...rest] = store.sync.conflicts()
    const section = () => screen.getAllByRole('region')[0]!
    await user.click(within(section()).getByRole('button', { name: 'Edit merged' }))
    const editor = within(section()).getByRole('textbox')
    await user.clear(editor)
    await user.type(editor, 'my merge')
    act(() => store.setConflicts(rest))
    const notice = within(dialog()).getByRole('status')
    expect(notice).toHaveTextContent('Settled elsewhere while you were editing. Your draft was not applied:')
    expect(within(dialog()).getByRole('textbox')).toHaveValue('my merge')
    expect(within(dialog()).getByRole('textbox')).toHaveAttribute('readonly')
    expect(store.resolutions).toEqual([])
    // The last conflict going the same way does not close the dialog over the draft.
    act(() => store.setConflicts([]))
    expect(within(dialog()).getByRole('textbox')).toHaveValue('my merge')
    await user.click(within(dialog()).getByRole('button', { name: 'Dismiss' }))
    expect(screen.queryByRole('alertdialog')).toBeNull()
  })

  it('a draft applied here goes without a notice', async () => {
    const { user } = setup({}, samples.oneField())
    await user.click(screen.getByRole('button', { name: 'Edit merged' }))
    await user.type(screen.getByRole('textbox'), ' v2')
    await user.click(screen.getByRole('button', { name: 'Apply' }))
    expect(screen.queryByRole('alertdialog')).toBeNull()
    expect(screen.queryByRole('status')).toBeNull()
  })

  it('Cancel leaves the editor; a draft survives Esc and reopening', async () => {
    const store = createFixtureStore({ conflicts: samples.oneField() })
    const user = userEvent.setup()
    const { rerender } = render(<ConflictModal store={store} open />)
    await user.click(screen.getByRole('button', { name: 'Edit merged' }))
    await user.type(screen.getByRole('textbox'), ' v2')
    await user.keyboard('{Escape}')
    rerender(<ConflictModal store={store} open={false} />)
    rerender(<ConflictModal store={store} open />)
    expect(screen.getByRole('textbox')).toHaveValue('Q3 planning notes (draft) v2')
    await user.click(screen.getByRole('button', { name: 'Cancel' }))
    expect(screen.queryByRole('textbox')).toBeNull()
    // Focus goes back to where the editor was opened (found by an accessibility trial: it went to the first Keep mine).
    expect(screen.getByRole('button', { name: 'Edit merged' })).toHaveFocus()
    expect(store.resolutions).toEqual([])
  })

  it('focus returns to the opener when the modal reopens on a kept draft and closes again', async () => {
    // Found by an accessibility trial: the kept draft's editor took focus before the modal noted where
    // focus was, so the second close sent focus to <body>.
    const store = createFixtureStore({ conflicts: samples.oneField() })
    const user = userEvent.setup()
    function App() {
      const [open, setOpen] = useState(false)
      return (
        <>
          <button type="button" onClick={() => setOpen(true)}>
            Review
          </button>
          <ConflictModal store={store} open={open} onOpenChange={setOpen} />
        </>
      )
    }
    render(<App />, { wrapper: StrictMode })
    const opener = screen.getByRole('button', { name: 'Review' })
    await user.click(opener)
    await user.click(screen.getByRole('button', { name: 'Edit merged' }))
    await user.keyboard('{Escape}')
    expect(opener).toHaveFocus()
    await user.click(opener)
    expect(screen.getByRole('textbox')).toBeInTheDocument()
    await user.keyboard('{Escape}')
    expect(opener).toHaveFocus()
  })

  it('shows an edited element of an id-keyed array in place, key by key, not as one added and one removed line', () => {
    const item = (id: string, t: string) => ({ id, t })
    const store = createFixtureStore({
      conflicts: [{ ...samples.array()[0]!, id: 'ids', base: [item('1', 'one'), item('2', 'two')], local: [item('1', 'mine'), item('2', 'two'), item('3', 'new')], remote: [item('1', 'theirs')] }],
    })
    render(<ConflictModal store={store} open />)
    const mine = dialog().querySelector('[data-side="local"]')!
    const rows = [...mine.querySelectorAll('.zync-value > ul > li')]
    expect(rows).toHaveLength(3)
    expect(rows[0]!.querySelector('del')).toHaveTextContent('"one"')
    expect(rows[0]!.querySelector('ins')).toHaveTextContent('"mine"')
    // Added: every key of it marked, nothing struck.
    expect([...rows[2]!.querySelectorAll('ins')].map((e) => e.textContent)).toEqual(['id "3"', 't "new"'])
    expect(rows[2]!.querySelector('del')).toBeNull()
    // Theirs dropped element 2: shown struck out, key by key, once.
    const theirs = dialog().querySelector('[data-side="remote"]')!
    const theirRows = [...theirs.querySelectorAll('.zync-value > ul > li')]
    expect(theirRows).toHaveLength(2)
    expect([...theirRows[1]!.querySelectorAll('del')].map((d) => d.textContent)).toEqual(['id "2"', 't "two"'])
    expect(theirRows[1]!.querySelector('ins')).toBeNull()
  })

  it('shows base, mine and theirs with a word diff for strings', () => {
    setup({}, samples.oneField())
    const mine = dialog().querySelector('[data-side="local"]')!
    const theirs = dialog().querySelector('[data-side="remote"]')!
    expect(mine.querySelector('del')).toHaveTextContent('Quarterly')
    expect(mine.querySelector('ins')).toHaveTextContent('Q3')
    expect([...theirs.querySelectorAll('ins')].map((e) => e.textContent)).toEqual([', final version'])
    expect(dialog().querySelector('[data-side="base"] ins, [data-side="base"] del')).toBeNull()
  })

  it('keeps the spaces around a changed run outside its mark (an underlined space read as "_word")', () => {
    setup({}, [makeConflict({ base: 'planning notes', local: 'Quarterly planning notes', remote: 'planning notes for the team' })])
    const marks = [...dialog().querySelectorAll('ins, del')]
    expect(marks.map((m) => m.textContent)).toEqual(['Quarterly', 'for the team'])
    expect(dialog().querySelector('[data-side="local"] .zync-value')!.textContent).toBe('Quarterly planning notes')
  })

  it('marks changed and removed keys of objects, array items added and removed by value, nested keys and replaced scalars', () => {
    setup({}, [
      ...samples.array(),
      makeConflict({ id: 'o', field: 'meta', base: { a: 1, b: 2 }, local: { a: 1 }, remote: { a: 1, b: 3 } }),
      makeConflict({ id: 'n', field: 'prefs', base: { theme: 'light', notify: { email: true, push: false } }, local: { theme: 'light', notify: { email: true, push: true } }, remote: { theme: 'dark', notify: { email: true, push: false } } }),
      makeConflict({ id: 's', field: 'estimate', base: 3, local: 5, remote: 8 }),
    ])
    const [tags, meta, prefs, estimate] = screen.getAllByRole('region')
    const texts = (el: Element, sel: string) => [...el.querySelectorAll(sel)].map((k) => k.textContent)
    // ['design', 'q3'] -> ['design', 'roadmap']: 'roadmap' added, 'q3' removed (not "item 1 changed").
    const theirsTags = tags!.querySelector('[data-side="remote"]')!
    expect(texts(theirsTags, 'ins')).toEqual(['"roadmap"'])
    expect(texts(theirsTags, 'del')).toEqual(['"q3"'])
    const mineTags = tags!.querySelector('[data-side="local"]')!
    expect(texts(mineTags, 'ins')).toEqual(['"urgent"'])
    expect(texts(mineTags, 'del')).toEqual([])
    const mineMeta = meta!.querySelector('[data-side="local"]')!
    expect(mineMeta.querySelector('del')).toHaveTextContent('b 2')
    // A changed key: its old value struck through, the new one marked, on the key's line.
    const theirsMeta = meta!.querySelector('[data-side="remote"]')!
    expect(texts(theirsMeta, 'del')).toEqual(['2'])
    expect(texts(theirsMeta, 'ins')).toEqual(['3'])
    expect(theirsMeta.querySelector('del')!.closest('li')).toHaveTextContent('b 2 3')
    // Only the nested key that changed is marked, not the whole `notify` object.
    expect(texts(prefs!.querySelector('[data-side="local"]')!, 'ins')).toEqual(['true'])
    expect(prefs!.querySelector('[data-side="local"] ins')!.closest('li')).toHaveTextContent('push false true')
    expect(texts(prefs!.querySelector('[data-side="remote"]')!, 'ins')).toEqual(['"dark"'])
    // A number is replaced: the old value struck through, the new one marked.
    const mineEstimate = estimate!.querySelector('[data-side="local"]')!
    expect(texts(mineEstimate, 'del')).toEqual(['3'])
    expect(texts(mineEstimate, 'ins')).toEqual(['5'])
  })

  it('takes labels, className and renderValue', () => {
    setup(
      {
        className: 'mine',
        labels: { title: 'Konflikte', later: 'Später' },
        renderValue: (v, side) => (side === 'remote' ? <b>custom {String(v)}</b> : undefined),
      },
      samples.oneField(),
    )
    expect(dialog()).toHaveClass('zync-modal', 'mine')
    expect(dialog()).toHaveAccessibleName(/Konflikte/)
    expect(screen.getByRole('button', { name: 'Später' })).toBeInTheDocument()
    expect(dialog().querySelector('[data-side="remote"] b')).toHaveTextContent('custom Quarterly planning notes, final version')
    expect(dialog().querySelector('[data-side="local"] ins')).toBeInTheDocument()
  })

  it('names each conflict with renderTitle, and keeps the built-in heading where it returns undefined', () => {
    const conflicts = samples.manyFields()
    setup({ renderTitle: (c) => (c === conflicts[0] ? `The card “${c.entity}”, ${c.field}` : undefined) }, conflicts)
    const headings = within(dialog()).getAllByRole('heading', { level: 3 })
    expect(headings[0]).toHaveTextContent(`The card “${conflicts[0]!.entity}”, ${conflicts[0]!.field}`)
    expect(headings[1]).toHaveTextContent(`${conflicts[1]!.field || conflicts[1]!.entity}`)
    expect(headings[1]!.querySelector('.zync-muted')).toBeTruthy()
  })

  it('shows a text value with nothing before it (a record both sides created) as text, not quoted JSON', () => {
    const conflicts = [makeConflict({ id: 'dup', entity: 'tasks/7', field: 'title', base: undefined, local: 'bob-dup', remote: 'alice-dup' })]
    setup({}, conflicts)
    expect(dialog().querySelector('[data-side="base"] .zync-value')).toHaveTextContent('—')
    // It read "bob-dup" with the quotes (a browser trial's screenshot).
    expect(dialog().querySelector('[data-side="local"] .zync-value')!.textContent).toBe('bob-dup')
    expect(dialog().querySelector('[data-side="remote"] .zync-value')!.textContent).toBe('alice-dup')
  })

  it("names a record by its title (or name, or label) as the store holds it, not by its id alone", () => {
    // Three cards keyed by UUIDs looked the same in the heading (a new-user trial).
    const conflicts = samples.manyFields()
    const store = Object.assign(createFixtureStore({ conflicts }), { getState: () => ({ tasks: { 42: { title: 'Ship the beta', status: 'todo' } } }) })
    render(<ConflictModal store={store} />)
    const headings = within(dialog()).getAllByRole('heading', { level: 3 })
    // The title itself is in conflict in the first: its heading keeps the id; the others name the task.
    expect(headings[0]).toHaveTextContent('title tasks/42')
    expect(headings[1]).toHaveTextContent('status Ship the beta')
    expect(headings[1]).not.toHaveTextContent('tasks/42')
    // A name is set in the text's font, an id in the code font (a trial: a card's title looked like code).
    expect(within(headings[1]!).getByText('Ship the beta')).toHaveAttribute('data-name')
    expect(within(headings[0]!).getByText('tasks/42')).not.toHaveAttribute('data-name')
  })

  it('locks page scroll while open and restores it', async () => {
    const { user } = setup()
    expect(document.body.style.overflow).toBe('hidden')
    await user.keyboard('{Escape}')
    expect(document.body.style.overflow).toBe('')
  })

  it('makes the page behind inert while open, and only what it made inert comes back', async () => {
    const user = userEvent.setup()
    const own = document.createElement('div')
    own.setAttribute('inert', '')
    document.body.append(own)
    const { container } = render(<ConflictModal store={createFixtureStore({ conflicts: samples.manyFields() })} />)
    expect(container).toHaveAttribute('inert')
    expect(dialog().closest('[inert]')).toBeNull()
    await user.keyboard('{Escape}')
    expect(container).not.toHaveAttribute('inert')
    // The app's own inert element stays as the app made it.
    expect(own).toHaveAttribute('inert')
    own.remove()
  })

  it("two stores' dialogs open at once (split panes): keys and focus are the top one's, the page stays inert until both close, in either order", async () => {
    const user = userEvent.setup()
    for (const closeFirstOpened of [false, true]) {
      const a = createFixtureStore({ conflicts: samples.manyFields() })
      const b = createFixtureStore({ conflicts: samples.oneField() })
      const page = render(<button>page</button>)
      const first = render(<ConflictModal store={a} labels={{ title: 'Pane A' }} />)
      const second = render(<ConflictModal store={b} labels={{ title: 'Pane B' }} />)
      const [da, db] = screen.getAllByRole('alertdialog', { hidden: true })
      expect(da).toHaveAccessibleName(/Pane A/)
      expect(db).toHaveAccessibleName(/Pane B/)
      // The later dialog is on top: the earlier one and the page are inert, Tab stays in the top one.
      expect(da!.closest('[inert]')).not.toBeNull()
      expect(db!.closest('[inert]')).toBeNull()
      expect(page.container).toHaveAttribute('inert')
      const inB = within(db!).getAllByRole('button')
      inB.at(-1)!.focus()
      await user.tab()
      expect(inB[0]).toHaveFocus()
      if (closeFirstOpened) {
        // Pane A's conflicts are settled elsewhere while B is on top: the page stays inert, scroll locked.
        first.unmount()
        expect(page.container).toHaveAttribute('inert')
        expect(document.body.style.overflow).toBe('hidden')
        await user.keyboard('{Escape}')
      } else {
        // Esc closes the top one only; then the earlier one is live again, and a second Esc closes it.
        await user.keyboard('{Escape}')
        expect(screen.getAllByRole('alertdialog')).toEqual([da])
        expect(da!.closest('[inert]')).toBeNull()
        expect(page.container).toHaveAttribute('inert')
        expect(document.body.style.overflow).toBe('hidden')
        await user.keyboard('{Escape}')
      }
      expect(screen.queryAllByRole('alertdialog')).toEqual([])
      expect(page.container).not.toHaveAttribute('inert')
      expect(document.body.style.overflow).toBe('')
      expect(document.querySelector('[inert]')).toBeNull()
      page.unmount()
      first.unmount()
      second.unmount()
    }
  })
})
