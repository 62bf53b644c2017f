/**
 * How other people's carets and selections are drawn: builders for
 * y-prosemirror's `yCursorPlugin`.
 *
 * The `user` they receive is a remote peer's awareness field, so it is
 * untrusted: the name goes in with `textContent`, and the colour reaches CSS
 * only after it matches `#rrggbb` (a raw string could smuggle in
 * `red; background-image: url(…)`).
 */
import type { DecorationAttrs } from 'prosemirror-view'
import { readUser, textColorOn } from '../ui/identity'

/**
 * The remote caret: a zero-width `span.remote-cursor` drawn in the user's
 * colour, holding a `span.remote-cursor-label` with their name above it.
 */
export function cursorBuilder(user: unknown, clientId: number): HTMLElement {
  const { name, color } = readUser({ user })
  const cursor = document.createElement('span')
  cursor.className = 'remote-cursor'
  cursor.dataset['clientId'] = String(clientId)
  cursor.style.setProperty('--user-color', color)
  cursor.style.borderColor = color

  const label = document.createElement('span')
  label.className = 'remote-cursor-label'
  label.textContent = name
  label.style.backgroundColor = color
  label.style.color = textColorOn(color)
  // The label is decoration; screen readers would otherwise read it as
  // document text in the middle of a word.
  label.setAttribute('aria-hidden', 'true')

  // Word joiners on both sides keep the browser from breaking the line, or
  // placing the local caret, between the remote caret and its neighbours (as
  // y-prosemirror's default cursor does).
  cursor.append('\u2060', label, '\u2060')
  return cursor
}

/** The remote selection: a translucent background in the user's colour. */
export function selectionBuilder(user: unknown, _clientId: number): DecorationAttrs {
  const { color } = readUser({ user })
  // #rrggbb + "33" is the same colour at 20% opacity.
  return { class: 'remote-selection', style: `background-color: ${color}33` }
}
