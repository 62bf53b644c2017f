/** Branded identifiers, so a session id can never be passed where a document id belongs. */

/** A document's address as it appears in a link: 22 URL-safe base64 characters (132 bits). */
export type DocId = string & { readonly __brand: 'DocId' }
/** A Comet session id. */
export type SessionId = string & { readonly __brand: 'SessionId' }

/** Document ids are 22 characters of the URL-safe base64 alphabet. */
const docIdPattern = /^[A-Za-z0-9_-]{22}$/

/** Whether `value` is a well-formed document id (says nothing of whether it exists). */
export function isDocId(value: string): value is DocId {
  return docIdPattern.test(value)
}

/** `value` as a DocId, or null when it is malformed. */
export function parseDocId(value: string): DocId | null {
  return isDocId(value) ? value : null
}

const base64url = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/**
 * A random id of `chars` base64url characters (6 bits each) from the
 * platform's cryptographic RNG; 22 characters carry 132 bits.
 */
export function randomId(chars = 22): string {
  const bytes = new Uint8Array(chars)
  globalThis.crypto.getRandomValues(bytes)
  let id = ''
  for (const byte of bytes) id += base64url[byte & 63]
  return id
}

/** A fresh, unguessable document id. */
export function newDocId(): DocId {
  return randomId(22) as DocId
}
