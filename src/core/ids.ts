import { nanoid } from 'nanoid'

/** A globally unique, URL-safe id (nanoid, 21 chars, ~126 bits). */
export function newId(): string {
  return nanoid()
}
