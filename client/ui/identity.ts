/**
 * Who the local user is — a display name and a colour — remembered in this
 * browser, plus the validators that every piece of UI showing a *remote*
 * user's name or colour goes through.
 *
 * Awareness states come from other people's browsers: treat them as untrusted
 * input. A name is only ever shown as text and a colour only ever reaches CSS
 * after matching `#rrggbb`.
 */

/** A user as shown to others: the `user` field of an awareness state. */
export interface Identity {
  name: string
  /** A CSS colour in `#rrggbb` form. */
  color: string
}

/** The localStorage key holding the JSON-encoded {@link Identity}. */
export const identityStorageKey = 'cometpad:user'

/** Longest display name we keep or show, in characters. */
export const maxNameLength = 40

/** Shown for peers whose colour is missing or malformed. */
export const fallbackColor = '#757575'

/** Shown for peers whose name is missing or empty. */
export const fallbackName = 'Anonymous'

/**
 * Default colours: each has at least 4.5:1 contrast against white, so labels
 * with white text on them stay readable (WCAG AA).
 */
export const palette: readonly string[] = [
  '#d32f2f', '#c2185b', '#8e24aa', '#5e35b1', '#3949ab', '#1565c0',
  '#0277bd', '#00796b', '#2e7d32', '#bf360c', '#6d4c41', '#546e7a',
]

const adjectives: readonly string[] = [
  'Curious', 'Brave', 'Clever', 'Gentle', 'Happy', 'Jolly', 'Kind', 'Lively',
  'Merry', 'Nimble', 'Quiet', 'Swift', 'Witty', 'Calm', 'Bright', 'Bold',
]

const animals: readonly string[] = [
  'Otter', 'Fox', 'Owl', 'Panda', 'Koala', 'Heron', 'Badger', 'Lynx',
  'Dolphin', 'Falcon', 'Hedgehog', 'Penguin', 'Raccoon', 'Tiger', 'Walrus', 'Wombat',
]

const hexColorPattern = /^#[0-9a-fA-F]{6}$/

/** Whether `value` is a colour in `#rrggbb` form, the only form we pass to CSS. */
export function isHexColor(value: unknown): value is string {
  return typeof value === 'string' && hexColorPattern.test(value)
}

/**
 * `value` as a display name: trimmed, control characters removed, at most
 * {@link maxNameLength} characters; null when nothing usable is left.
 */
export function cleanName(value: unknown): string | null {
  if (typeof value !== 'string') return null
  // Control characters (newlines, bidi overrides…) let a name disguise itself
  // or break the layout of a one-line label.
  const name = value.replace(/[\p{Cc}\p{Cf}]/gu, '').trim()
  if (name === '') return null
  // Count code points, not UTF-16 units, so an emoji is not cut in half.
  return Array.from(name).slice(0, maxNameLength).join('').trim()
}

/**
 * The user carried by an awareness state, made safe to display: a missing or
 * malformed name becomes {@link fallbackName}, a colour that is not `#rrggbb`
 * becomes {@link fallbackColor}.
 */
export function readUser(state: unknown): Identity {
  const user: unknown = typeof state === 'object' && state !== null ? (state as { user?: unknown }).user : null
  const fields = typeof user === 'object' && user !== null ? (user as { name?: unknown; color?: unknown }) : {}
  return {
    name: cleanName(fields.name) ?? fallbackName,
    color: isHexColor(fields.color) ? fields.color.toLowerCase() : fallbackColor,
  }
}

function pick<T>(list: readonly T[], random: () => number): T {
  const item = list[Math.floor(random() * list.length) % list.length]
  if (item === undefined) throw new RangeError('cannot pick from an empty list')
  return item
}

/** A friendly random identity such as `{ name: 'Curious Otter', color: '#00796b' }`. */
export function randomIdentity(random: () => number = Math.random): Identity {
  return {
    name: `${pick(adjectives, random)} ${pick(animals, random)}`,
    color: pick(palette, random),
  }
}

/** The browser's localStorage, or null where it is disabled or throws (private modes, sandboxed frames). */
function browserStorage(): Storage | null {
  try {
    return globalThis.localStorage ?? null
  } catch {
    return null
  }
}

/**
 * The identity remembered in `storage`, with any missing or invalid field
 * replaced by a random one (and the repaired identity saved back), so the
 * same person keeps the same name and colour across visits.
 */
export function loadIdentity(storage: Storage | null = browserStorage()): Identity {
  const fresh = randomIdentity()
  let stored: unknown = null
  try {
    const raw = storage?.getItem(identityStorageKey)
    stored = raw == null ? null : JSON.parse(raw)
  } catch {
    // Corrupt JSON or storage that throws: start again with a fresh identity.
  }
  const fields = typeof stored === 'object' && stored !== null ? (stored as { name?: unknown; color?: unknown }) : {}
  const identity: Identity = {
    name: cleanName(fields.name) ?? fresh.name,
    color: isHexColor(fields.color) ? fields.color.toLowerCase() : fresh.color,
  }
  saveIdentity(identity, storage)
  return identity
}

/**
 * Remember `identity` in `storage`. Invalid fields are refused with a
 * TypeError: callers validate user input first (see {@link cleanName}).
 * Storage failures (quota, disabled storage) are ignored: the identity then
 * lasts for this page only, which is the best we can do.
 */
export function saveIdentity(identity: Identity, storage: Storage | null = browserStorage()): void {
  const name = cleanName(identity.name)
  if (name === null) throw new TypeError('identity.name must be a non-empty string')
  if (!isHexColor(identity.color)) throw new TypeError('identity.color must be a #rrggbb colour')
  try {
    storage?.setItem(identityStorageKey, JSON.stringify({ name, color: identity.color.toLowerCase() }))
  } catch {
    // See above: a page-lifetime identity is acceptable.
  }
}

/**
 * Black or white, whichever reads better on `background` (a `#rrggbb`
 * colour), by WCAG relative luminance. Users may pick any colour, including
 * pale ones where white text would vanish.
 */
export function textColorOn(background: string): '#000000' | '#ffffff' {
  if (!isHexColor(background)) return '#ffffff'
  const channel = (offset: number): number => {
    const value = Number.parseInt(background.slice(offset, offset + 2), 16) / 255
    return value <= 0.03928 ? value / 12.92 : ((value + 0.055) / 1.055) ** 2.4
  }
  const luminance = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
  // Contrast with white is 1.05 / (L + 0.05), with black (L + 0.05) / 0.05; they are equal at L ≈ 0.179.
  return luminance > 0.179 ? '#000000' : '#ffffff'
}
