import type { Meta, StoryObj } from '@storybook/react-vite'
import { expect, screen, userEvent, waitFor } from 'storybook/test'
import { ZyncError } from '../src/core/errors'
import { OfflineBanner } from 'zync/react'
import { createFixtureStore, resetStore, sampleError } from './fixtures'
import { withRootFontSize } from './decorators'

const meta = {
  title: 'Status/OfflineBanner',
  component: OfflineBanner,
  args: { store: createFixtureStore({ status: { connection: 'offline' } }) },
  argTypes: {
    store: { control: false },
    // Typed `T | undefined` (exactOptionalPropertyTypes), which Storybook cannot infer a control from: listed here.
    className: { control: 'text', type: 'string', description: 'Extra class on the banner.', table: { defaultValue: { summary: 'none' } } },
    labels: { control: 'object', description: 'Replaces any of the English texts (title, unreachable, refused, message, refusedMessage).', table: { defaultValue: { summary: 'the English texts' } } },
    action: { control: false, description: "An action at the end of the banner: (state) => ReactNode, e.g. a \"Sign in again\" button for 'refused'.", table: { defaultValue: { summary: 'none' } } },
  },
  beforeEach: resetStore,
} satisfies Meta<typeof OfflineBanner>

export default meta
type Story = StoryObj<typeof meta>

export const NothingPending: Story = {
  play: async () => {
    await expect(await screen.findByRole('status')).toHaveTextContent('Changes you make will sync when you reconnect.')
  },
}

export const ThreePending: Story = {
  args: { store: createFixtureStore({ pending: 3, status: { connection: 'offline' } }) },
  play: async () => {
    await expect(await screen.findByRole('status')).toHaveTextContent('3 changes are waiting to sync.')
  },
}

export const TwoHundredFiftyPending: Story = {
  args: { store: createFixtureStore({ pending: 250, status: { connection: 'offline' } }) },
}

/** Online, but the sync server cannot be reached (down or restarting): changes wait just the same. */
export const ServerUnreachable: Story = {
  args: { store: createFixtureStore({ pending: 2, status: { connection: 'connecting', error: sampleError } }) },
  play: async () => {
    await expect(await screen.findByRole('status')).toHaveTextContent('Can’t reach the sync server. 2 changes are waiting to sync.')
  },
}

/** The server refused this client for good (an expired token): not retried until the app reconnects. */
export const Refused: Story = {
  args: { store: createFixtureStore({ pending: 1, status: { connection: 'offline', error: new ZyncError('UNAUTHENTICATED', '[zync] authentication failed: token expired') } }) },
  play: async () => {
    await expect(await screen.findByRole('status')).toHaveTextContent('The sync server refused this connection. 1 change is kept on this device until access is restored.')
  },
}

/** A refusal with the app's action (`action`): a way out for the user. */
export const RefusedWithAction: Story = {
  args: {
    store: createFixtureStore({ pending: 3, status: { connection: 'offline', error: new ZyncError('UNAUTHENTICATED', '[zync] authentication failed: token expired') } }),
    action: (state) => (state === 'refused' ? <button className="zync-btn">Sign in again</button> : undefined),
  },
  play: async () => {
    await expect(await screen.findByRole('button', { name: 'Sign in again' })).toBeInTheDocument()
  },
}

/** The action makes the banner go (here: reconnect): keyboard focus goes back to where it was, not to the page. */
export const ActionGivesFocusBack: Story = {
  args: {
    store: createFixtureStore({ pending: 2, status: { connection: 'offline' } }),
    action: () => <button className="zync-btn">Reconnect</button>,
  },
  render: (args) => (
    <>
      <button className="zync-btn">Board</button>
      <OfflineBanner {...args} action={() => <button className="zync-btn" onClick={() => args.store.sync.connect()}>Reconnect</button>} />
    </>
  ),
  play: async ({ step }) => {
    await step('only the sentence is announced, not the action', async () => {
      await expect(await screen.findByRole('status')).toHaveTextContent('You’re offline. 2 changes are waiting to sync.')
      await expect(screen.getByRole('status')).not.toHaveTextContent('Reconnect')
    })
    await step('the action hides the banner; focus is back on Board', async () => {
      screen.getByRole('button', { name: 'Board' }).focus()
      await userEvent.tab()
      await expect(screen.getByRole('button', { name: 'Reconnect' })).toHaveFocus()
      await userEvent.keyboard('{Enter}')
      await waitFor(() => expect(screen.queryByRole('button', { name: 'Reconnect' })).not.toBeInTheDocument())
      await waitFor(() => expect(screen.getByRole('button', { name: 'Board' })).toHaveFocus())
    })
  },
}

export const RefusedMobile: Story = {
  ...RefusedWithAction,
  globals: { viewport: { value: 'mobile', isRotated: false } },
}

/** Online: the banner is not shown (an empty live region stays for announcements). */
export const Online: Story = {
  args: { store: createFixtureStore({ pending: 3 }) },
  play: async () => {
    await expect(await screen.findByRole('status')).toBeEmptyDOMElement()
  },
}

export const Dark: Story = {
  args: { store: createFixtureStore({ pending: 3, status: { connection: 'offline' } }) },
  globals: { theme: 'dark' },
}

export const Mobile: Story = {
  args: { store: createFixtureStore({ pending: 250, status: { connection: 'offline' } }) },
  globals: { viewport: { value: 'mobile', isRotated: false } },
}

/** A phone 360 px wide at twice the default font size: the dot stays beside the first line of the sentence. */
export const LargerFontOnAPhone: Story = {
  args: { store: createFixtureStore({ pending: 3, status: { connection: 'offline' } }) },
  decorators: [
    (Story) => (
      <div style={{ width: 328 }}>
        <Story />
      </div>
    ),
    withRootFontSize(32),
  ],
  play: async () => {
    const text = await screen.findByRole('status')
    await expect(text).toHaveTextContent(/offline/)
    const dot = text.parentElement!.querySelector('.zync-dot')!.getBoundingClientRect()
    const t = text.getBoundingClientRect()
    // Beside it, not on a line of its own above it.
    await expect(dot.right).toBeLessThanOrEqual(t.left)
    await expect(dot.top).toBeGreaterThanOrEqual(t.top)
  },
}
