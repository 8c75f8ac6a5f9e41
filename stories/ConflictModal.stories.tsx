import type { Meta, StoryObj } from '@storybook/react-vite'
import { useState } from 'react'
import { expect, fn, screen, userEvent, waitFor } from 'storybook/test'
import { ConflictModal } from 'zync/react'
import { createFixtureStore, type FixtureStore, makeConflict, resetStore, samples } from './fixtures'

const meta = {
  title: 'Conflicts/ConflictModal',
  component: ConflictModal,
  args: { store: createFixtureStore({ conflicts: samples.oneField() }), onOpenChange: fn() },
  argTypes: {
    // The component renders through a portal, which hides its props from Storybook's extractor: listed here.
    store: { control: false, description: 'The synced store (anything with a `sync` property).', type: { name: 'other', value: 'SyncedStore', required: true } },
    open: { control: 'boolean', description: 'Controlled open state. Default: uncontrolled (opens while a conflict the user has not put off waits; while they type in a text field of the page, once they pause).', table: { defaultValue: { summary: 'uncontrolled' } } },
    onOpenChange: { description: 'Called with false on "Decide later" / Esc and when the last conflict is resolved.', table: { defaultValue: { summary: 'none' } } },
    labels: { control: 'object', description: 'Replaces any of the English texts (title, keepMine, keepTheirs, edit, later, keepAllMine, keepAllTheirs, invalidJson, wrongType, showMore, ...).', table: { defaultValue: { summary: 'the English texts' } } },
    className: { control: 'text', description: 'Extra class on the dialog.', table: { defaultValue: { summary: 'none' } } },
    renderTitle: { control: false, description: 'A conflict\'s heading in your words: (conflict) => ReactNode.', table: { defaultValue: { summary: "the field, then the record's title, name or label, else the entity id" } } },
    renderValue: { control: false, description: '(value, side, conflict) => ReactNode; undefined keeps the built-in diff.', table: { defaultValue: { summary: 'the built-in diff' } } },
  },
  beforeEach: resetStore,
  parameters: {
    layout: 'fullscreen',
    docs: {
      // Tall enough for the desktop layout: at 480 px or less the short-screen layout shows instead
      // (the whole dialog scrolls, its footer pinned), which is all a 420 px frame ever showed.
      story: { inline: false, iframeHeight: 640 },
      description: {
        component: 'The conflict inbox as a blocking dialog: for each conflict, Before, Mine and Theirs with a word diff, and Keep mine, Keep theirs or Edit merged; Keep all mine / theirs with several (each asks once more). "Decide later" and Esc only close it. Mount one per document.',
      },
    },
  },
} satisfies Meta<typeof ConflictModal>

export default meta
type Story = StoryObj<typeof meta>

const dialog = () => screen.findByRole('alertdialog')

export const OneField: Story = {
  play: async ({ step }) => {
    await step('opens on its own while the inbox holds a conflict', async () => {
      const d = await dialog()
      await expect(d).toHaveAttribute('aria-modal', 'true')
      await expect(d).toHaveAccessibleName(/resolve sync conflicts/i)
      await expect(d).toHaveAccessibleDescription(/choose what to keep/i)
    })
    await step('focus starts on the safe action', async () => {
      // Focus moves in an effect after the dialog mounts: wait for it (a cold first run can be slow).
      await waitFor(() => expect(screen.getByRole('button', { name: 'Decide later' })).toHaveFocus())
    })
    await step('shows a word diff of both sides', async () => {
      const d = await dialog()
      await expect(d.querySelector('[data-side="local"] ins')).toHaveTextContent('Q3')
      await expect(d.querySelector('[data-side="remote"] ins')).toHaveTextContent('final version')
    })
  },
}

/** Four fields of one task in conflict, as the dialog opens. */
export const ManyFields: Story = {
  args: { store: createFixtureStore({ conflicts: samples.manyFields() }) },
  play: async () => {
    await expect(await screen.findAllByRole('region')).toHaveLength(4)
  },
}

/** A long offline session: 60 conflicts. The first 25 are shown; "Show N more" adds 25 at a time. */
export const SixtyConflicts: Story = {
  args: { store: createFixtureStore({ conflicts: Array.from({ length: 60 }, (_, i) => makeConflict({ id: `m${i}`, entity: `tasks/t${i}`, base: `Task ${i}`, local: `Task ${i}, reworded here`, remote: `Task ${i}, reworded there` })) }) },
  play: async ({ step }) => {
    await step('shows 25, then 25 more', async () => {
      await expect(await screen.findAllByRole('region')).toHaveLength(25)
      await userEvent.click(screen.getByRole('button', { name: 'Show 35 more' }))
      await expect(screen.getAllByRole('region')).toHaveLength(50)
      // Once the dialog's opening animation (from opacity 0) is over: checked at once, it failed under load.
      await waitFor(() => expect(screen.getByRole('button', { name: 'Show 10 more' })).toBeVisible())
    })
  },
}

/** Interaction: "Keep theirs" on one of four fields (the canvas shows the three left). */
export const ManyFieldsKeepTheirsOnOne: Story = {
  args: { store: createFixtureStore({ conflicts: samples.manyFields() }) },
  play: async ({ args, step }) => {
    const store = args.store as FixtureStore
    await step('settles one field with "Keep theirs"', async () => {
      const section = (await screen.findByRole('heading', { name: /status/ })).closest('section')!
      const keep = [...section.querySelectorAll('button')].find((b) => b.textContent === 'Keep theirs')!
      await userEvent.click(keep)
      await expect(store.resolutions).toEqual([{ id: 'mf-status', resolution: 'remote' }])
    })
    await step('the other fields stay open, focus stays in the dialog', async () => {
      await expect(screen.queryByRole('heading', { name: /status/ })).not.toBeInTheDocument()
      await expect(screen.getAllByRole('region')).toHaveLength(3)
      await waitFor(() => expect(screen.getByRole('alertdialog')).toContainElement(document.activeElement as HTMLElement))
    })
  },
}

/** Interaction: "Keep all mine" asks once more before it settles all four (the canvas shows the question). */
export const KeepAllAsksFirst: Story = {
  args: { store: createFixtureStore({ conflicts: samples.manyFields() }) },
  play: async ({ args, step }) => {
    const store = args.store as FixtureStore
    await step('the first press only asks', async () => {
      await userEvent.click(await screen.findByRole('button', { name: 'Keep all mine' }))
      await expect(store.resolutions).toEqual([])
      // Once the dialog's opening animation (from opacity 0) is over.
      await waitFor(() => expect(screen.getByText('This decides all 4 conflicts.')).toBeVisible())
      await expect(screen.getByRole('button', { name: 'Keep all mine' })).toHaveFocus()
      await expect(screen.queryByRole('button', { name: 'Keep all theirs' })).not.toBeInTheDocument()
    })
    await step('Esc answers the question (no), not the dialog', async () => {
      await userEvent.keyboard('{Escape}')
      await waitFor(() => expect(screen.getByRole('button', { name: 'Decide later' })).toHaveFocus())
      await expect(screen.getByRole('alertdialog')).toBeInTheDocument()
      await expect(screen.queryByText('This decides all 4 conflicts.')).not.toBeInTheDocument()
      await expect(store.resolutions).toEqual([])
    })
  },
}

/** Headings in the app's words (`renderTitle`): the task's name instead of its id `tasks/42`. */
export const NamedByTheApp: Story = {
  args: {
    store: createFixtureStore({ conflicts: samples.manyFields() }),
    renderTitle: (c) => `“Ship the beta” · ${c.field}`,
  },
  play: async () => {
    await expect(await screen.findByRole('heading', { name: '“Ship the beta” · status' })).toBeInTheDocument()
  },
}

export const LongText: Story = {
  args: { store: createFixtureStore({ conflicts: samples.longText() }) },
}

export const NestedObject: Story = {
  args: { store: createFixtureStore({ conflicts: samples.nestedObject() }) },
  play: async ({ step }) => {
    await step('marks the changed keys, nested ones key by key', async () => {
      const d = await dialog()
      // A key whose value changed holds a struck-through old value; a new key is marked whole.
      const keyOf = (el: Element) => el.closest('li')!.querySelector('.zync-key')!.textContent
      const changed = [...d.querySelectorAll('[data-side="remote"] del, [data-side="remote"] ins')].map(keyOf)
      // notifications.email changed, notifications.push did not: only `email` is marked.
      await expect([...new Set(changed)]).toEqual(['locale', 'email', 'timezone'])
    })
  },
}

export const ArrayValue: Story = {
  name: 'Array',
  args: { store: createFixtureStore({ conflicts: samples.array() }) },
}

/** An id-keyed array: an element both sides edited is shown in place, key by key. */
export const Checklist: Story = {
  args: { store: createFixtureStore({ conflicts: samples.checklist() }) },
}

/** Interaction: Edit merged, then the merged JSON typed in (the canvas shows the editor as the test leaves it). */
export const MergedValue: Story = {
  args: { store: createFixtureStore({ conflicts: samples.nestedObject() }) },
  play: async ({ args, step }) => {
    const store = args.store as FixtureStore
    await step('opens the JSON editor with both sides merged key by key', async () => {
      await userEvent.click(await screen.findByRole('button', { name: 'Edit merged' }))
      const editor = screen.getByRole('textbox', { name: /merged value/i })
      await waitFor(() => expect(editor).toHaveFocus())
      await expect(JSON.parse((editor as HTMLTextAreaElement).value)).toEqual({
        theme: 'dark',
        locale: 'pt-BR',
        notifications: { email: false, push: true },
        timezone: 'America/Sao_Paulo',
      })
    })
    await step('invalid JSON shows an error and cannot be applied', async () => {
      const editor = screen.getByRole('textbox', { name: /merged value/i })
      await userEvent.clear(editor)
      await userEvent.type(editor, '{{ "theme": "dark", ')
      await expect(screen.getByRole('alert')).toHaveTextContent(/invalid json/i)
      await expect(editor).toHaveAttribute('aria-invalid', 'true')
      await expect(screen.getByRole('button', { name: 'Apply' })).toBeDisabled()
      await expect(store.resolutions).toHaveLength(0)
    })
    await step('valid JSON can be applied', async () => {
      const editor = screen.getByRole('textbox', { name: /merged value/i })
      await userEvent.type(editor, '"locale": "pt-BR" }')
      await expect(screen.queryByRole('alert')).not.toBeInTheDocument()
      await expect(screen.getByRole('button', { name: 'Apply' })).toBeEnabled()
    })
  },
}

/** The conflict was settled elsewhere (another tab, a later change) while its merge was being written here: the draft stays, not applied, until dismissed. */
export const SettledElsewhereWhileEditing: Story = {
  args: { store: createFixtureStore({ conflicts: samples.oneField() }) },
  play: async ({ args, step }) => {
    const store = args.store as FixtureStore
    await step('a merge is being written', async () => {
      await userEvent.click(await screen.findByRole('button', { name: 'Edit merged' }))
      const editor = screen.getByRole('textbox', { name: 'Merged value' })
      await userEvent.clear(editor)
      await userEvent.type(editor, 'Q3 planning notes, merged by hand')
    })
    await step('another tab settles the conflict: the draft stays on screen, not applied', async () => {
      store.setConflicts([])
      await expect(await screen.findByRole('status')).toHaveTextContent(/settled elsewhere/i)
      await expect(screen.getByRole('textbox')).toHaveValue('Q3 planning notes, merged by hand')
      await expect(store.resolutions).toHaveLength(0)
    })
  },
}

/** The app owns `open`: a toolbar button opens it; Esc ("decide later") closes it and focus returns to the button. */
export const Controlled: Story = {
  args: { store: createFixtureStore({ conflicts: samples.manyFields() }) },
  render: function Render(args) {
    const [open, setOpen] = useState(false)
    return (
      <div style={{ padding: 24 }}>
        <button className="zync-btn" onClick={() => setOpen(true)}>
          Review conflicts
        </button>
        <ConflictModal
          {...args}
          open={open}
          onOpenChange={(o) => {
            args.onOpenChange?.(o)
            setOpen(o)
          }}
        />
      </div>
    )
  },
  play: async ({ args, step }) => {
    const opener = await screen.findByRole('button', { name: 'Review conflicts' })
    await step('opens from the app', async () => {
      await userEvent.click(opener)
      await dialog()
    })
    await step('Tab and Shift+Tab stay inside the dialog', async () => {
      const d = await dialog()
      const buttons = [...d.querySelectorAll('button')]
      buttons[buttons.length - 1]!.focus()
      await userEvent.tab()
      await expect(buttons[0]).toHaveFocus()
      await userEvent.tab({ shift: true })
      await expect(buttons[buttons.length - 1]).toHaveFocus()
    })
    await step('the page behind is inert while it is open', async () => {
      await expect(opener.closest('[inert]')).not.toBeNull()
    })
    await step('Esc closes to "decide later": the conflicts stay, focus returns', async () => {
      await userEvent.keyboard('{Escape}')
      await waitFor(() => expect(screen.queryByRole('alertdialog')).not.toBeInTheDocument())
      await expect(args.onOpenChange).toHaveBeenCalledWith(false)
      await expect(args.store.sync.conflicts()).toHaveLength(4)
      await waitFor(() => expect(opener).toHaveFocus())
      await expect(document.querySelector('[inert]')).toBeNull()
    })
  },
}

export const Dark: Story = {
  args: { store: createFixtureStore({ conflicts: [...samples.oneField(), ...samples.nestedObject()] }) },
  globals: { theme: 'dark' },
}

export const Mobile: Story = {
  args: { store: createFixtureStore({ conflicts: samples.manyFields() }) },
  globals: { viewport: { value: 'mobile', isRotated: false } },
}

/** On a phone, opening "Edit merged" brings its Apply and Cancel into view (they were below the fold). */
export const EditMergedMobile: Story = {
  args: { store: createFixtureStore({ conflicts: samples.nestedObject() }) },
  globals: { viewport: { value: 'mobile', isRotated: false } },
  play: async () => {
    await userEvent.click(await screen.findByRole('button', { name: 'Edit merged' }))
    const apply = await screen.findByRole('button', { name: 'Apply' })
    const footer = document.querySelector('.zync-modal-footer')!.getBoundingClientRect()
    await waitFor(() => expect(apply.getBoundingClientRect().bottom).toBeLessThanOrEqual(footer.top + 1))
    await expect(apply.getBoundingClientRect().top).toBeGreaterThanOrEqual(0)
  },
}

/**
 * A phone in landscape (or 200% zoom): the whole dialog scrolls, and it opens at its top, title in view,
 * though focus starts on "Decide later" in its footer (focusing it scrolled the dialog to its bottom).
 */
export const LandscapePhone: Story = {
  args: { store: createFixtureStore({ conflicts: samples.manyFields() }) },
  globals: { viewport: { value: 'landscape', isRotated: false } },
  play: async () => {
    const d = await dialog()
    await waitFor(() => expect(screen.getByRole('button', { name: 'Decide later' })).toHaveFocus())
    // The dialog is taller than the screen here, so a scroll to its footer would show.
    await expect(d.scrollHeight).toBeGreaterThan(d.clientHeight)
    await expect(d.scrollTop).toBe(0)
    await expect(screen.getByRole('heading', { level: 2 }).getBoundingClientRect().top).toBeGreaterThanOrEqual(0)
    // The footer stays pinned at the dialog's bottom edge, at its top as halfway down: "Decide later"
    // and the bulk actions in reach without scrolling past every conflict.
    const later = screen.getByRole('button', { name: 'Decide later' })
    const inView = () => later.getBoundingClientRect().bottom <= d.getBoundingClientRect().bottom + 1 && later.getBoundingClientRect().top >= d.getBoundingClientRect().top
    await expect(inView()).toBe(true)
    d.scrollTop = d.scrollHeight / 2
    await waitFor(() => expect(inView()).toBe(true))
    // Left as it opened, at its top, for whoever looks at the canvas.
    d.scrollTop = 0
  },
}

/** A right-to-left page: the layout mirrors, values shown as JSON still read left to right. */
export const RightToLeft: Story = {
  globals: { dir: 'rtl' },
  args: { store: createFixtureStore({ conflicts: samples.nestedObject() }) },
  play: async ({ step }) => {
    await step('JSON values read left to right', async () => {
      const dialog = await screen.findByRole('alertdialog')
      const kv = dialog.querySelector('.zync-kv')!
      await expect(getComputedStyle(kv).direction).toBe('ltr')
    })
    await step('"Decide later" sits at the start edge (the right)', async () => {
      const later = screen.getByRole('button', { name: 'Decide later' })
      const footer = later.parentElement!.getBoundingClientRect()
      const r = later.getBoundingClientRect()
      // On a phone the footer is a grid and "Decide later" a whole row of its own: nothing to mirror there.
      if (getComputedStyle(later.parentElement!).display === 'grid') await expect(r.width).toBeGreaterThan(footer.width / 2)
      else await expect(footer.right - r.right < r.left - footer.left).toBe(true)
    })
  },
}
