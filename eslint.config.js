import tseslint from 'typescript-eslint'

const framework = ['react', 'react/*', 'react-dom', 'react-dom/*', 'zustand', 'zustand/*', 'immer', 'dexie', 'socket.io', 'socket.io-client', '@tanstack/*']

export default tseslint.config(
  { ignores: ['dist/**', 'storybook-static/**', 'node_modules/**', 'coverage/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-restricted-syntax': ['error', { selector: "MemberExpression[property.name='__proto__']", message: 'Never touch __proto__.' }],
    },
  },
  {
    // Layering: core is framework-agnostic and does no I/O of its own.
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: framework, message: 'src/core imports nothing from React, Zustand, Dexie or socket.io: define an interface and implement it in src/adapters.' },
            { group: ['../adapters/*', '../middleware/*', '../react/*', '../react-query/*', '../server/*'], message: 'Dependencies point one way: core <- adapters <- middleware <- react.' },
          ],
        },
      ],
    },
  },
  {
    files: ['src/adapters/**/*.ts', 'src/middleware/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['../react/*', '../react-query/*', '../server/*', 'react', 'react-dom'], message: 'Adapters and the middleware never import the React layer or the server.' }] }],
    },
  },
  {
    files: ['src/react/**/*.ts', 'src/react/**/*.tsx', 'src/react-query/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['../server/*', '../server/**', 'socket.io', 'dexie'], message: 'The React layer wraps the store API; it never reaches the server or storage.' }] }],
    },
  },
  {
    // The server shares only protocol, clock and patch modules with the client.
    files: ['src/server/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['../core/engine', '../core/outbox', '../core/tabs', '../core/presence', '../core/storage', '../../core/engine', '../adapters/*', '../middleware/*', '../react/*', '../react-query/*', 'react', 'zustand', 'dexie', 'socket.io-client'], message: 'The server shares only the protocol and clock modules with the client.' },
          ],
        },
      ],
    },
  },
  {
    files: ['test/**/*.ts', 'test/**/*.tsx', 'bench/**/*.ts', 'stories/**/*.tsx'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
)
