// y-websocket 2 ships its server helpers (bin/utils.cjs) without types.
declare module 'y-websocket/bin/utils' {
  export function setupWSConnection(conn: unknown, req: unknown, opts?: { docName?: string; gc?: boolean }): void
}
