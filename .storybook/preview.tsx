import type { Decorator, Preview } from '@storybook/react-vite'
import '../src/react/styles.css'

// The theme global sets data-theme on <html>, so portalled dialogs and toasts follow it too.
const withTheme: Decorator = (Story, { globals }) => {
  const chosen = (globals.theme as string | undefined) ?? 'light'
  // 'os': no data-theme, as an app without a dark mode of its own ships: the components follow the OS
  // setting (a designer's trial: the toolbar could not show what dark-OS users of such an app see).
  const theme = chosen === 'os' ? (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light') : chosen
  // Set during render, not in an effect, so the first paint (and the axe check) already has the theme.
  if (chosen === 'os') delete document.documentElement.dataset.theme
  else document.documentElement.dataset.theme = theme
  // The direction global: right-to-left pages (Arabic, Hebrew) mirror the components.
  document.documentElement.dir = (globals.dir as string | undefined) ?? 'ltr'
  document.body.style.background = theme === 'dark' ? '#0b1120' : '#ffffff'
  document.body.style.color = theme === 'dark' ? '#f3f4f6' : '#0f172a'
  // A body of the viewport's height: a dialog story renders nothing in the flow (its overlay is fixed and
  // portalled), and with the dialog's scroll lock on a 0 px body, axe took the whole dialog for off-screen
  // and checked none of its contrast (an axe audit; dequelabs/axe-core#3996).
  document.body.style.minHeight = '100vh'
  return <Story />
}

const preview: Preview = {
  // A docs page per component: its props with their descriptions and defaults, and its stories.
  tags: ['autodocs'],
  decorators: [withTheme],
  globalTypes: {
    theme: {
      description: 'Colour theme of the zync components',
      toolbar: {
        title: 'Theme',
        icon: 'mirror',
        items: [
          { value: 'light', title: 'Light', icon: 'sun' },
          { value: 'dark', title: 'Dark', icon: 'moon' },
          { value: 'os', title: 'Follow the OS (no data-theme)', icon: 'browser' },
        ],
        dynamicTitle: true,
      },
    },
    dir: {
      description: 'Text direction of the page',
      toolbar: {
        title: 'Direction',
        icon: 'transfer',
        items: [
          { value: 'ltr', title: 'Left to right' },
          { value: 'rtl', title: 'Right to left' },
        ],
        dynamicTitle: true,
      },
    },
  },
  initialGlobals: { theme: 'light', dir: 'ltr' },
  parameters: {
    layout: 'padded',
    // On a component's docs page each story renders in its own frame: the theme and direction are set on
    // <html> and dialogs and toasts are portalled to <body>, so stories sharing one document mixed them
    // (every modal open at once over the page, the right-to-left story mirroring the whole page).
    docs: { story: { inline: false, iframeHeight: 420 } },
    controls: { matchers: { color: /(background|color)$/i } },
    // axe runs after every story (and its play function); a violation fails the story's test.
    a11y: { test: 'error' },
    viewport: {
      options: {
        mobile: { name: 'Mobile (390×844)', styles: { width: '390px', height: '844px' }, type: 'mobile' },
        landscape: { name: 'Phone in landscape (740×375)', styles: { width: '740px', height: '375px' }, type: 'mobile' },
        tablet: { name: 'Tablet (820×1180)', styles: { width: '820px', height: '1180px' }, type: 'tablet' },
        desktop: { name: 'Desktop (1280×800)', styles: { width: '1280px', height: '800px' }, type: 'desktop' },
      },
    },
  },
}

export default preview
