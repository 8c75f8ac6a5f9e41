import { fileURLToPath } from 'node:url'
import type { StorybookConfig } from '@storybook/react-vite'

const r = (p: string) => fileURLToPath(new URL(p, import.meta.url))

const config: StorybookConfig = {
  stories: ['../stories/**/*.stories.@(ts|tsx)'],
  addons: ['@storybook/addon-docs', '@storybook/addon-a11y', '@storybook/addon-vitest'],
  framework: { name: '@storybook/react-vite', options: {} },
  core: { disableTelemetry: true, disableWhatsNewNotifications: true },
  // Stories import the public entry points, as an app would.
  viteFinal: (vite) => ({
    ...vite,
    resolve: {
      ...vite.resolve,
      alias: {
        ...(vite.resolve?.alias as Record<string, string> | undefined),
        'zync/react-query': r('../src/react-query/index.ts'),
        'zync/react': r('../src/react/index.ts'),
      },
    },
  }),
}

export default config
