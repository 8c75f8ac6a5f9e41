/**
 * Why a `cors` list cannot match what browsers send, or undefined: a browser's Origin header is
 * scheme://host[:port], never with a path or a trailing slash, and '*' only means everything alone.
 */
export function corsProblem(cors: unknown): string | undefined {
  if (cors === undefined || cors === '*') return undefined
  if (!Array.isArray(cors)) return `cors must be '*' or a list of origins (got ${JSON.stringify(cors)})`
  for (const o of cors) {
    if (o === '*') return "cors: '*' allows every origin on its own; it cannot be one item of a list"
    if (typeof o !== 'string' || !/^https?:\/\/[^/\s?#]+$/i.test(o)) return `cors: ${JSON.stringify(o)} is not an origin as browsers send it (scheme://host[:port], no path or trailing slash)`
  }
  return undefined
}
