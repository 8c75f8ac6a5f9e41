import { nanoid } from 'nanoid'

/** A globally unique, URL-safe id (nanoid, 21 chars, ~126 bits): client ids. */
export function newId(): string {
  return nanoid()
}

/**
 * An op id: nanoid with 16 chars (96 random bits). Op ids only need to be unique within one document's
 * log (they are its dedupe keys): at a billion ops in one document the odds of any collision are about
 * 6 in a trillion. Every change record on the wire carries one, so the 5 characters saved add up.
 */
export function newOpId(): string {
  return nanoid(16)
}
