import { nanoid } from 'nanoid'

/**
 * Client and op ids: nanoid with 16 URL-safe chars (96 random bits). Op ids need to be unique within
 * one document's log (they are its dedupe keys), client ids among the clients of a document (they key
 * version vectors): at a billion of either in one document the odds of any collision are about 6 in
 * a trillion. Every change record on the wire carries both, so the characters saved add up.
 */
export function newId(): string {
  return nanoid(16)
}
