/**
 * The formatting toolbar: a row of buttons that run editor commands and show,
 * through `aria-pressed`, which marks and blocks apply at the selection.
 *
 * It lives in a ProseMirror plugin view so it re-renders after every
 * transaction, including remote ones and the read-only switch.
 */
import { Plugin } from 'prosemirror-state'
import type { Command, EditorState } from 'prosemirror-state'
import type { EditorView } from 'prosemirror-view'
import type { MarkType, NodeType } from 'prosemirror-model'
import { lift, setBlockType, toggleMark, wrapIn } from 'prosemirror-commands'
import { liftListItem, wrapInList } from 'prosemirror-schema-list'
import { keydownHandler } from 'prosemirror-keymap'
import { redoCommand, undoCommand } from 'y-prosemirror'
import { safeHref, schema } from './schema'
import { isReadOnly } from './setup'

/** One toolbar button: what it runs and how it knows whether it applies. */
interface ToolbarItem {
  /** Stable identifier, exposed as `data-command` for styling and tests. */
  id: string
  /** Accessible name, without the shortcut. */
  label: string
  /** ProseMirror key name, e.g. `Mod-b`; shown in the title and aria-label. */
  shortcut?: string
  /** An SVG path (24×24 viewBox) or short text shown on the button. */
  icon: { path: string } | { text: string }
  run: Command
  /** Present for toggles: whether the button shows as pressed. */
  isActive?: (state: EditorState) => boolean
  /** Starts a new visual group in the toolbar. */
  groupStart?: boolean
}

const isMac = typeof navigator !== 'undefined' && /Mac|iPhone|iPad|iPod/.test(navigator.platform || navigator.userAgent)

/** `Mod-Shift-z` → `Ctrl+Shift+Z` (or `⌘⇧Z` on Apple platforms). */
function describeShortcut(shortcut: string): string {
  const parts = shortcut.split('-').map((part) => {
    switch (part) {
      case 'Mod': return isMac ? '⌘' : 'Ctrl'
      case 'Shift': return isMac ? '⇧' : 'Shift'
      case 'Alt': return isMac ? '⌥' : 'Alt'
      case 'Ctrl': return isMac ? '⌃' : 'Ctrl'
      default: return part.length === 1 ? part.toUpperCase() : part
    }
  })
  return parts.join(isMac ? '' : '+')
}

/** `Mod-Shift-z` → `Control+Shift+Z` / `Meta+Shift+Z`, the `aria-keyshortcuts` syntax. */
function ariaShortcut(shortcut: string): string {
  return shortcut
    .split('-')
    .map((part) => (part === 'Mod' ? (isMac ? 'Meta' : 'Control') : part === 'Ctrl' ? 'Control' : part.length === 1 ? part.toUpperCase() : part))
    .join('+')
}

function markActive(state: EditorState, type: MarkType): boolean {
  const { from, $from, to, empty } = state.selection
  if (empty) return type.isInSet(state.storedMarks ?? $from.marks()) !== undefined
  return state.doc.rangeHasMark(from, to, type)
}

function blockActive(state: EditorState, type: NodeType, attrs?: Record<string, unknown>): boolean {
  const parent = state.selection.$from.parent
  if (parent.type !== type) return false
  return Object.entries(attrs ?? {}).every(([key, value]) => parent.attrs[key] === value)
}

/** The depth of the nearest ancestor of the selection of one of `types`, or -1. */
function ancestorDepth(state: EditorState, types: readonly NodeType[]): number {
  const { $from } = state.selection
  for (let depth = $from.depth; depth > 0; depth--) {
    if (types.includes($from.node(depth).type)) return depth
  }
  return -1
}

function wrappedIn(state: EditorState, type: NodeType): boolean {
  const depth = ancestorDepth(state, [type, ...listTypes(), ...quoteType()])
  return depth > 0 && state.selection.$from.node(depth).type === type
}

function listTypes(): NodeType[] {
  return [schema.nodes.bullet_list, schema.nodes.ordered_list].filter((t): t is NodeType => t !== undefined)
}

function quoteType(): NodeType[] {
  return schema.nodes.blockquote ? [schema.nodes.blockquote] : []
}

/** Toggle a list: leave it when already in one of this kind, convert a list of the other kind, else wrap. */
function toggleList(listType: NodeType, itemType: NodeType): Command {
  return (state, dispatch) => {
    const depth = ancestorDepth(state, listTypes())
    if (depth > 0) {
      const list = state.selection.$from.node(depth)
      if (list.type === listType) return liftListItem(itemType)(state, dispatch)
      if (dispatch) dispatch(state.tr.setNodeMarkup(state.selection.$from.before(depth), listType).scrollIntoView())
      return true
    }
    return wrapInList(listType)(state, dispatch)
  }
}

/** Toggle a text block type: set it, or back to paragraph when it already applies. */
function toggleBlock(type: NodeType, attrs?: Record<string, unknown>): Command {
  return (state, dispatch, view) => {
    const paragraph = schema.nodes.paragraph
    if (paragraph && blockActive(state, type, attrs)) return setBlockType(paragraph)(state, dispatch, view)
    return setBlockType(type, attrs)(state, dispatch, view)
  }
}

/** Toggle a wrapper such as blockquote: lift out of it when inside, else wrap. */
function toggleWrap(type: NodeType): Command {
  return (state, dispatch, view) =>
    wrappedIn(state, type) ? lift(state, dispatch, view) : wrapIn(type)(state, dispatch, view)
}

/**
 * What the user typed as a link target, as a safe href, or null. Bare
 * domains get `https://` and bare e-mail addresses `mailto:`, because that
 * is what people type.
 */
export function normalizeLinkInput(input: string): string | null {
  const text = input.trim()
  if (text === '') return null
  if (/^[a-z][a-z0-9+.-]*:/i.test(text)) return safeHref(text)
  if (/^[^\s@/]+@[^\s@/]+\.[^\s@/]+$/.test(text)) return safeHref(`mailto:${text}`)
  return safeHref(`https://${text.replace(/^\/+/, '')}`)
}

/**
 * The selection grown to cover every adjacent text node carrying `type`, so
 * that removing a link with the caret inside it removes all of it (a link
 * spans several text nodes when part of it is bold, say).
 */
function markExtent(state: EditorState, type: MarkType): { from: number; to: number } {
  const { $from, $to } = state.selection
  let from = $from.pos
  let to = $to.pos
  if (!$from.sameParent($to)) return { from, to }
  const base = $from.start()
  const spans: Array<{ from: number; to: number; hasMark: boolean }> = []
  $from.parent.forEach((child, offset) => {
    spans.push({ from: base + offset, to: base + offset + child.nodeSize, hasMark: type.isInSet(child.marks) !== undefined })
  })
  for (const span of [...spans].reverse()) {
    if (span.hasMark && span.from < from && span.to >= from) from = span.from
  }
  for (const span of spans) {
    if (span.hasMark && span.from <= to && span.to > to) to = span.to
  }
  return { from, to }
}

/**
 * Add, change or remove a link. With a link at the selection, removes it;
 * otherwise asks for a URL (refusing anything but http:, https: and mailto:)
 * and links the selection, or inserts the URL as linked text when nothing is
 * selected.
 */
export const toggleLink: Command = (state, dispatch, view) => {
  const link = schema.marks.link
  if (!link) return false
  if (markActive(state, link)) {
    if (dispatch) {
      const range = markExtent(state, link)
      dispatch(state.tr.removeMark(range.from, range.to, link).scrollIntoView())
    }
    return true
  }
  if (!dispatch) return state.selection.$from.parent.inlineContent && !state.selection.$from.parent.type.spec.code
  const input = window.prompt('Link address (http://, https:// or mailto:)', 'https://')
  view?.focus()
  if (input === null || input.trim() === '' || input.trim() === 'https://') return false
  const href = normalizeLinkInput(input)
  if (href === null) {
    window.alert('That link was not added: links must start with http://, https:// or mailto:.')
    return false
  }
  // Read state again: the prompt was modal, but remote changes may have arrived meanwhile.
  const current = view ? view.state : state
  const apply = view ? view.dispatch.bind(view) : dispatch
  const mark = link.create({ href })
  if (current.selection.empty) {
    const text = href.replace(/^mailto:/, '')
    apply(current.tr.replaceSelectionWith(schema.text(text, [mark]), false).scrollIntoView())
  } else {
    apply(current.tr.addMark(current.selection.from, current.selection.to, mark).scrollIntoView())
  }
  return true
}

// Material Design icon paths (Apache-2.0), 24×24.
const icons = {
  bold: 'M15.6 10.79c.97-.67 1.65-1.77 1.65-2.79 0-2.26-1.75-4-4-4H7v14h7.04c2.09 0 3.71-1.7 3.71-3.79 0-1.52-.86-2.82-2.15-3.42zM10 6.5h3c.83 0 1.5.67 1.5 1.5s-.67 1.5-1.5 1.5h-3v-3zm3.5 9H10v-3h3.5c.83 0 1.5.67 1.5 1.5s-.67 1.5-1.5 1.5z',
  italic: 'M10 4v3h2.21l-3.42 8H6v3h8v-3h-2.21l3.42-8H18V4z',
  strike: 'M10 19h4v-3h-4v3zM5 4v3h5v3h4V7h5V4H5zM3 14h18v-2H3v2z',
  code: 'M9.4 16.6L4.8 12l4.6-4.6L8 6l-6 6 6 6 1.4-1.4zm5.2 0l4.6-4.6-4.6-4.6L16 6l6 6-6 6-1.4-1.4z',
  link: 'M3.9 12c0-1.71 1.39-3.1 3.1-3.1h4V7H7c-2.76 0-5 2.24-5 5s2.24 5 5 5h4v-1.9H7c-1.71 0-3.1-1.39-3.1-3.1zM8 13h8v-2H8v2zm9-6h-4v1.9h4c1.71 0 3.1 1.39 3.1 3.1s-1.39 3.1-3.1 3.1h-4V17h4c2.76 0 5-2.24 5-5s-2.24-5-5-5z',
  bulletList: 'M4 10.5c-.83 0-1.5.67-1.5 1.5s.67 1.5 1.5 1.5 1.5-.67 1.5-1.5-.67-1.5-1.5-1.5zm0-6c-.83 0-1.5.67-1.5 1.5S3.17 7.5 4 7.5 5.5 6.83 5.5 6 4.83 4.5 4 4.5zm0 12c-.83 0-1.5.68-1.5 1.5s.68 1.5 1.5 1.5 1.5-.68 1.5-1.5-.67-1.5-1.5-1.5zM7 19h14v-2H7v2zm0-6h14v-2H7v2zm0-8v2h14V5H7z',
  orderedList: 'M2 17h2v.5H3v1h1v.5H2v1h3v-4H2v1zm1-9h1V4H2v1h1v3zm-1 3h1.8L2 13.1v.9h3v-1H3.2L5 10.9V10H2v1zm5-6v2h14V5H7zm0 14h14v-2H7v2zm0-6h14v-2H7v2z',
  quote: 'M6 17h3l2-4V7H5v6h3zm8 0h3l2-4V7h-6v6h3z',
  rule: 'M4 11h16v2H4z',
  undo: 'M12.5 8c-2.65 0-5.05.99-6.9 2.6L2 7v9h9l-3.62-3.62c1.39-1.16 3.16-1.88 5.12-1.88 3.54 0 6.55 2.31 7.6 5.5l2.37-.78C21.08 11.03 17.15 8 12.5 8z',
  redo: 'M18.4 10.6C16.55 8.99 14.15 8 11.5 8c-4.65 0-8.58 3.03-9.96 7.22L3.9 16c1.05-3.19 4.05-5.5 7.6-5.5 1.95 0 3.73.72 5.12 1.88L13 16h9V7l-3.6 3.6z',
} as const

function requireType<T>(type: T | undefined, name: string): T {
  if (type === undefined) throw new TypeError(`schema has no ${name}`)
  return type
}

/** The toolbar's buttons, in order. */
function buildItems(): ToolbarItem[] {
  const { marks, nodes } = schema
  const strong = requireType(marks.strong, 'strong mark')
  const em = requireType(marks.em, 'em mark')
  const strike = requireType(marks.strike, 'strike mark')
  const code = requireType(marks.code, 'code mark')
  const link = requireType(marks.link, 'link mark')
  const heading = requireType(nodes.heading, 'heading node')
  const paragraph = requireType(nodes.paragraph, 'paragraph node')
  const bulletList = requireType(nodes.bullet_list, 'bullet_list node')
  const orderedList = requireType(nodes.ordered_list, 'ordered_list node')
  const listItem = requireType(nodes.list_item, 'list_item node')
  const blockquote = requireType(nodes.blockquote, 'blockquote node')
  const codeBlock = requireType(nodes.code_block, 'code_block node')
  const rule = requireType(nodes.horizontal_rule, 'horizontal_rule node')

  const headingItem = (level: number): ToolbarItem => ({
    id: `heading-${level}`,
    label: `Heading ${level}`,
    shortcut: `Mod-Alt-${level}`,
    icon: { text: `H${level}` },
    run: toggleBlock(heading, { level }),
    isActive: (state) => blockActive(state, heading, { level }),
    groupStart: level === 1,
  })

  return [
    { id: 'bold', label: 'Bold', shortcut: 'Mod-b', icon: { path: icons.bold }, run: toggleMark(strong), isActive: (s) => markActive(s, strong) },
    { id: 'italic', label: 'Italic', shortcut: 'Mod-i', icon: { path: icons.italic }, run: toggleMark(em), isActive: (s) => markActive(s, em) },
    { id: 'strike', label: 'Strikethrough', shortcut: 'Mod-Shift-s', icon: { path: icons.strike }, run: toggleMark(strike), isActive: (s) => markActive(s, strike) },
    { id: 'code', label: 'Inline code', shortcut: 'Mod-e', icon: { path: icons.code }, run: toggleMark(code), isActive: (s) => markActive(s, code) },
    { id: 'link', label: 'Link', shortcut: 'Mod-k', icon: { path: icons.link }, run: toggleLink, isActive: (s) => markActive(s, link) },
    headingItem(1),
    headingItem(2),
    headingItem(3),
    { id: 'paragraph', label: 'Normal text', shortcut: 'Mod-Alt-0', icon: { text: '¶' }, run: setBlockType(paragraph), isActive: (s) => blockActive(s, paragraph) },
    { id: 'bullet-list', label: 'Bulleted list', shortcut: 'Mod-Shift-8', icon: { path: icons.bulletList }, run: toggleList(bulletList, listItem), isActive: (s) => wrappedIn(s, bulletList), groupStart: true },
    { id: 'ordered-list', label: 'Numbered list', shortcut: 'Mod-Shift-7', icon: { path: icons.orderedList }, run: toggleList(orderedList, listItem), isActive: (s) => wrappedIn(s, orderedList) },
    { id: 'blockquote', label: 'Quote', shortcut: 'Mod-Shift-9', icon: { path: icons.quote }, run: toggleWrap(blockquote), isActive: (s) => wrappedIn(s, blockquote) },
    { id: 'code-block', label: 'Code block', shortcut: 'Mod-Alt-c', icon: { text: '{ }' }, run: toggleBlock(codeBlock), isActive: (s) => blockActive(s, codeBlock) },
    {
      id: 'horizontal-rule',
      label: 'Divider',
      shortcut: 'Mod-_',
      icon: { path: icons.rule },
      run: (state, dispatch) => {
        const parent = state.selection.$from.parent
        if (!parent.inlineContent || parent.type.spec.code) return false
        dispatch?.(state.tr.replaceSelectionWith(rule.create()).scrollIntoView())
        return true
      },
    },
    { id: 'undo', label: 'Undo', shortcut: 'Mod-z', icon: { path: icons.undo }, run: undoCommand, groupStart: true },
    { id: 'redo', label: 'Redo', shortcut: isMac ? 'Mod-Shift-z' : 'Mod-y', icon: { path: icons.redo }, run: redoCommand },
  ]
}

const svgNamespace = 'http://www.w3.org/2000/svg'

function renderIcon(icon: ToolbarItem['icon']): Element {
  if ('text' in icon) {
    const span = document.createElement('span')
    span.className = 'toolbar-text-icon'
    span.textContent = icon.text
    return span
  }
  const svg = document.createElementNS(svgNamespace, 'svg')
  svg.setAttribute('viewBox', '0 0 24 24')
  svg.setAttribute('width', '20')
  svg.setAttribute('height', '20')
  svg.setAttribute('aria-hidden', 'true')
  svg.setAttribute('focusable', 'false')
  const path = document.createElementNS(svgNamespace, 'path')
  path.setAttribute('d', icon.path)
  path.setAttribute('fill', 'currentColor')
  svg.append(path)
  return svg
}

function renderButton(item: ToolbarItem): HTMLButtonElement {
  const button = document.createElement('button')
  button.type = 'button'
  button.className = 'toolbar-button'
  button.dataset['command'] = item.id
  const name = item.shortcut ? `${item.label} (${describeShortcut(item.shortcut)})` : item.label
  button.title = name
  button.setAttribute('aria-label', name)
  if (item.shortcut) button.setAttribute('aria-keyshortcuts', ariaShortcut(item.shortcut))
  if (item.isActive) button.setAttribute('aria-pressed', 'false')
  button.tabIndex = -1
  button.append(renderIcon(item.icon))
  return button
}

/**
 * The toolbar plugin: fills `container` (which should be empty) with buttons
 * for `view`, keeps their pressed and disabled state in step with the
 * selection, hides the toolbar while the editor is read-only, and binds
 * Mod-k to {@link toggleLink}.
 */
export function toolbarPlugin(container: HTMLElement): Plugin {
  return new Plugin({
    props: {
      handleKeyDown: keydownHandler({ 'Mod-k': toggleLink }),
    },
    view: (view) => new ToolbarView(container, view),
  })
}

class ToolbarView {
  readonly #container: HTMLElement
  readonly #buttons: Array<{ item: ToolbarItem; button: HTMLButtonElement }> = []
  #view: EditorView

  constructor(container: HTMLElement, view: EditorView) {
    this.#container = container
    this.#view = view
    container.classList.add('toolbar')
    container.setAttribute('role', 'toolbar')
    container.setAttribute('aria-label', 'Formatting')

    let group: HTMLElement | null = null
    for (const item of buildItems()) {
      if (group === null || item.groupStart) {
        group = document.createElement('div')
        group.className = 'toolbar-group'
        container.append(group)
      }
      const button = renderButton(item)
      group.append(button)
      this.#buttons.push({ item, button })
    }

    // Keep focus (and so the selection) in the editor when a button is pressed with the mouse.
    container.addEventListener('mousedown', this.#onMouseDown)
    container.addEventListener('click', this.#onClick)
    container.addEventListener('keydown', this.#onKeyDown)
    this.update(view)
  }

  update(view: EditorView): void {
    this.#view = view
    const { state } = view
    const readOnly = isReadOnly(state)
    this.#container.hidden = readOnly
    this.#container.toggleAttribute('data-read-only', readOnly)
    for (const { item, button } of this.#buttons) {
      // A command called without dispatch only reports whether it could run.
      // The link command can always run to remove or add a link where text goes.
      button.disabled = readOnly || !item.run(state, undefined, view)
      if (item.isActive) button.setAttribute('aria-pressed', String(item.isActive(state)))
    }
    this.#keepOneTabStop()
  }

  /** Exactly one enabled button is reachable with Tab; arrows reach the rest. */
  #keepOneTabStop(): void {
    const current = this.#buttons.find(({ button }) => button.tabIndex === 0 && !button.disabled)
    const stop = current ?? this.#buttons.find(({ button }) => !button.disabled)
    for (const { button } of this.#buttons) button.tabIndex = button === stop?.button ? 0 : -1
  }

  destroy(): void {
    this.#container.removeEventListener('mousedown', this.#onMouseDown)
    this.#container.removeEventListener('click', this.#onClick)
    this.#container.removeEventListener('keydown', this.#onKeyDown)
    this.#container.replaceChildren()
  }

  readonly #onMouseDown = (event: MouseEvent): void => {
    if (event.target instanceof Element && event.target.closest('button')) event.preventDefault()
  }

  readonly #onClick = (event: MouseEvent): void => {
    const target = event.target instanceof Element ? event.target.closest('button') : null
    const entry = this.#buttons.find(({ button }) => button === target)
    if (!entry || entry.button.disabled || isReadOnly(this.#view.state)) return
    const view = this.#view
    view.focus()
    entry.item.run(view.state, view.dispatch, view)
  }

  /** Arrow keys move between buttons (one tab stop for the whole toolbar, per the ARIA toolbar pattern). */
  readonly #onKeyDown = (event: KeyboardEvent): void => {
    const enabled = this.#buttons.map(({ button }) => button).filter((button) => !button.disabled)
    const index = enabled.findIndex((button) => button === document.activeElement)
    if (index < 0) return
    let next: number
    switch (event.key) {
      case 'ArrowRight': next = (index + 1) % enabled.length; break
      case 'ArrowLeft': next = (index - 1 + enabled.length) % enabled.length; break
      case 'Home': next = 0; break
      case 'End': next = enabled.length - 1; break
      default: return
    }
    event.preventDefault()
    for (const { button } of this.#buttons) button.tabIndex = -1
    const target = enabled[next]
    if (target) {
      target.tabIndex = 0
      target.focus()
    }
  }
}
