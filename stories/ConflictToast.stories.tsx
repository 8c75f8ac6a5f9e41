import type { Meta, StoryObj } from '@storybook/react-vite'
import { useState } from 'react'
import { expect, fn, screen, userEvent, waitFor } from 'storybook/test'
import { ConflictModal, ConflictToast } from 'zync/react'
import { createFixtureStore, resetStore, samples } from './fixtures'

const meta = {
  title: 'Conflicts/ConflictToast',
  component: ConflictToast,
  args: { store: createFixtureStore({ conflicts: samples.manyFields() }), onResolve: fn() },
  argTypes: {
    // The component renders through a portal, which hides its props from Storybook's extractor: listed here.
    store: { control: false, description: 'The synced store (anything with a `sync` property).', type: { name: 'other', value: 'SyncedStore', required: true } },
    onResolve: { description: 'Called by the Resolve action, typically to open a ConflictModal.', type: { name: 'function', required: true } },
    labels: { control: 'object', description: 'Replaces any of the English texts: message(count), resolve, dismiss.', table: { defaultValue: { summary: 'the English texts' } } },
    className: { control: 'text', description: 'Extra class on the toast.', table: { defaultValue: { summary: 'none' } } },
  },
  beforeEach: resetStore,
  parameters: {
    layout: 'fullscreen',
    docs: {
      description: {
        component: 'A non-blocking notice while conflicts wait, with Resolve (onResolve) and Dismiss; dismissing hides it until a new conflict arrives. Steps aside while a ConflictModal of the same store is shown.',
      },
    },
  },
} satisfies Meta<typeof ConflictToast>

export default meta
type Story = StoryObj<typeof meta>

export const Default: Story = {
  play: async ({ args, step }) => {
    await step('announces the conflicts without blocking', async () => {
      // The live region says the message only; the toast is a group named by it.
      await waitFor(() => expect(screen.getByRole('status')).toHaveTextContent(/^4 conflicts need your decision$/))
      // Once its entry animation (from opacity 0) is over.
      await waitFor(() => expect(screen.getByRole('group', { name: '4 conflicts need your decision' })).toBeVisible())
      await expect(screen.queryByRole('alertdialog')).not.toBeInTheDocument()
    })
    await step('Resolve calls onResolve', async () => {
      await userEvent.click(screen.getByRole('button', { name: 'Resolve' }))
      await expect(args.onResolve).toHaveBeenCalledOnce()
    })
  },
}

export const OneConflict: Story = {
  args: { store: createFixtureStore({ conflicts: samples.oneField() }) },
}

/** Interaction: Dismiss (the canvas shows the toast gone; the conflicts stay in the inbox). */
export const Dismissed: Story = {
  play: async ({ args, step }) => {
    await step('dismiss hides the toast; the conflicts stay', async () => {
      await userEvent.click(await screen.findByRole('button', { name: 'Dismiss' }))
      await expect(screen.queryByText(/need your decision/)).not.toBeInTheDocument()
      await expect(args.store.sync.conflicts()).toHaveLength(4)
    })
  },
}

/** The usual pairing: the toast's Resolve opens the modal. */
export const OpensTheModal: Story = {
  args: { store: createFixtureStore({ conflicts: samples.oneField() }) },
  render: function Render(args) {
    const [open, setOpen] = useState(false)
    return (
      <>
        <ConflictToast
          {...args}
          onResolve={() => {
            args.onResolve()
            setOpen(true)
          }}
        />
        <ConflictModal store={args.store} open={open} onOpenChange={setOpen} />
      </>
    )
  },
  play: async ({ step }) => {
    await step('Resolve opens the dialog', async () => {
      await userEvent.click(await screen.findByRole('button', { name: 'Resolve' }))
      await screen.findByRole('alertdialog')
    })
    await step('keeping mine settles the conflict; dialog and toast go away', async () => {
      await userEvent.click(screen.getByRole('button', { name: 'Keep mine' }))
      await waitFor(() => expect(screen.queryByRole('alertdialog')).not.toBeInTheDocument())
      await expect(screen.queryByText(/need your decision/)).not.toBeInTheDocument()
    })
  },
}

export const Dark: Story = { globals: { theme: 'dark' } }

export const Mobile: Story = {
  globals: { viewport: { value: 'mobile', isRotated: false } },
  play: async () => {
    // Resolve and dismiss stay on one line together (the × wrapped to a row of its own at 375 px).
    const resolve = (await screen.findByRole('button', { name: 'Resolve' })).getBoundingClientRect()
    const dismiss = screen.getByRole('button', { name: 'Dismiss' }).getBoundingClientRect()
    await expect(Math.abs(resolve.top + resolve.height / 2 - (dismiss.top + dismiss.height / 2))).toBeLessThan(2)
  },
}

/** German labels (long words) in a right-to-left page: the buttons stay inside the toast, which sits at the inline end. */
export const GermanRightToLeft: Story = {
  globals: { dir: 'rtl' },
  args: {
    labels: { message: (n) => `${n} Synchronisierungskonflikte benötigen Ihre Entscheidung`, resolve: 'Konflikte auflösen', dismiss: 'Schließen' },
  },
  play: async ({ step }) => {
    await step('every button lies within the toast, and the toast within the page', async () => {
      const toast = await screen.findByRole('group', { name: /Synchronisierungskonflikte/ })
      const box = toast.getBoundingClientRect()
      for (const b of toast.querySelectorAll('button')) {
        const r = b.getBoundingClientRect()
        await expect(r.left >= box.left - 1 && r.right <= box.right + 1).toBe(true)
        await expect(b.scrollWidth <= b.clientWidth + 1).toBe(true)
      }
      await expect(box.left >= 0 && box.right <= document.documentElement.clientWidth).toBe(true)
      // At the inline end: the left side in a right-to-left page.
      await expect(box.left < document.documentElement.clientWidth / 2).toBe(true)
    })
  },
}
