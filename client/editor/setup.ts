/**
 * Builds the collaborative editor: a ProseMirror view bound to a Y.Doc with
 * y-prosemirror (content, remote cursors, per-user undo), plus keymaps, input
 * rules and the small comforts (drop cursor, gap cursor, placeholder).
 */
import { EditorState, Plugin, PluginKey } from 'prosemirror-state'
import type { Command, EditorState as State } from 'prosemirror-state'
import { EditorView } from 'prosemirror-view'
import { keymap } from 'prosemirror-keymap'
import { baseKeymap, chainCommands, exitCode, setBlockType, toggleMark, wrapIn } from 'prosemirror-commands'
import { liftListItem, sinkListItem, splitListItem, wrapInList } from 'prosemirror-schema-list'
import {
  inputRules,
  textblockTypeInputRule,
  undoInputRule,
  wrappingInputRule,
} from 'prosemirror-inputrules'
import type { InputRule } from 'prosemirror-inputrules'
import { dropCursor } from 'prosemirror-dropcursor'
import { gapCursor } from 'prosemirror-gapcursor'
import { redoCommand, undoCommand, yCursorPlugin, ySyncPlugin, yUndoPlugin } from 'y-prosemirror'
import type * as Y from 'yjs'
import type { Awareness } from 'y-protocols/awareness'
import { maxHeadingLevel, schema } from './schema'
import { cursorBuilder, selectionBuilder } from './cursors'

/**
 * Name of the Y.XmlFragment holding the document. The server reads the same
 * fragment to render and edit documents, so it must not change.
 */
export const fragmentName = 'prosemirror'

/** Options for {@link createEditorView}. */
export interface EditorViewOptions {
  /** Element the editor is appended to. */
  mount: HTMLElement
  /** The shared document; its `prosemirror` XmlFragment holds the content. */
  doc: Y.Doc
  /** Presence channel: carries this user's cursor and shows everyone else's. */
  awareness: Awareness
  /**
   * Start without editing, e.g. for a view-only link. Change it later with
   * {@link setReadOnly}.
   * @default false
   */
  readOnly?: boolean
  /** Extra plugins, such as the toolbar's. Added after the editor's own. */
  plugins?: readonly Plugin[]
}

const readOnlyKey = new PluginKey<boolean>('cometpad-read-only')

/**
 * Holds whether the view is read-only in editor state, so that `editable`,
 * the toolbar and anything else can read one source of truth and a change
 * re-renders them through an ordinary transaction.
 */
function readOnlyPlugin(initial: boolean): Plugin<boolean> {
  return new Plugin<boolean>({
    key: readOnlyKey,
    state: {
      init: () => initial,
      apply: (tr, value) => {
        const next: unknown = tr.getMeta(readOnlyKey)
        return typeof next === 'boolean' ? next : value
      },
    },
    props: {
      editable: (state) => !isReadOnly(state),
    },
  })
}

/** Whether the editor in `state` is read-only. */
export function isReadOnly(state: State): boolean {
  return readOnlyKey.getState(state) ?? false
}

/** Make `view` read-only or editable again (e.g. when the server says this link is view-only). */
export function setReadOnly(view: EditorView, readOnly: boolean): void {
  if (isReadOnly(view.state) === readOnly) return
  view.dispatch(view.state.tr.setMeta(readOnlyKey, readOnly).setMeta('addToHistory', false))
}

/**
 * Marks the editor `is-empty` while the document is a single empty paragraph,
 * so CSS can show a placeholder without adding anything to the document.
 */
function placeholderPlugin(): Plugin {
  return new Plugin({
    props: {
      attributes: (state): Record<string, string> => {
        const { doc } = state
        const first = doc.firstChild
        const isEmpty = doc.childCount === 1 && first !== null && first.isTextblock && first.content.size === 0
        return isEmpty ? { class: 'is-empty', 'data-placeholder': 'Start writing…' } : {}
      },
    },
  })
}

/** `# `, `## `, `### ` heading; `> ` quote; `- `/`* ` and `1. ` lists; ``` code block. */
function buildInputRules(): Plugin {
  const { heading, blockquote, bullet_list, ordered_list, code_block } = schema.nodes
  const rules: InputRule[] = []
  if (heading) {
    rules.push(
      textblockTypeInputRule(new RegExp(`^(#{1,${maxHeadingLevel}})\\s$`), heading, (match) => ({
        level: match[1]?.length ?? 1,
      })),
    )
  }
  if (blockquote) rules.push(wrappingInputRule(/^\s*>\s$/, blockquote))
  if (bullet_list) rules.push(wrappingInputRule(/^\s*([-*])\s$/, bullet_list))
  if (ordered_list) {
    rules.push(
      wrappingInputRule(
        /^(\d+)\.\s$/,
        ordered_list,
        (match) => ({ order: Number(match[1]) }),
        // Join with a list just above only when the numbering continues it.
        (match, node) => node.childCount + Number(node.attrs['order']) === Number(match[1]),
      ),
    )
  }
  if (code_block) rules.push(textblockTypeInputRule(/^```$/, code_block))
  return inputRules({ rules })
}

/** Every keyboard shortcut the editor adds on top of ProseMirror's base keymap. */
function buildKeymap(): Record<string, Command> {
  const { nodes, marks } = schema
  const keys: Record<string, Command> = {
    'Mod-z': undoCommand,
    'Mod-y': redoCommand,
    'Mod-Shift-z': redoCommand,
    Backspace: undoInputRule,
  }
  const bind = (key: string, command: Command | null): void => {
    if (command) keys[key] = command
  }
  bind('Mod-b', marks.strong ? toggleMark(marks.strong) : null)
  bind('Mod-i', marks.em ? toggleMark(marks.em) : null)
  bind('Mod-Shift-s', marks.strike ? toggleMark(marks.strike) : null)
  bind('Mod-e', marks.code ? toggleMark(marks.code) : null)

  if (nodes.heading) {
    for (let level = 1; level <= maxHeadingLevel; level++) {
      bind(`Mod-Alt-${level}`, setBlockType(nodes.heading, { level }))
    }
  }
  bind('Mod-Alt-0', nodes.paragraph ? setBlockType(nodes.paragraph) : null)
  bind('Mod-Alt-c', nodes.code_block ? setBlockType(nodes.code_block) : null)
  bind('Mod-Shift-7', nodes.ordered_list ? wrapInList(nodes.ordered_list) : null)
  bind('Mod-Shift-8', nodes.bullet_list ? wrapInList(nodes.bullet_list) : null)
  bind('Mod-Shift-9', nodes.blockquote ? wrapIn(nodes.blockquote) : null)

  if (nodes.list_item) {
    bind('Enter', splitListItem(nodes.list_item))
    bind('Tab', sinkListItem(nodes.list_item))
    bind('Shift-Tab', liftListItem(nodes.list_item))
  }
  if (nodes.hard_break) {
    const hardBreak = nodes.hard_break
    const insertBreak: Command = (state, dispatch) => {
      dispatch?.(state.tr.replaceSelectionWith(hardBreak.create()).scrollIntoView())
      return true
    }
    // In a code block, Mod-Enter leaves it; elsewhere both insert a line break.
    bind('Mod-Enter', chainCommands(exitCode, insertBreak))
    bind('Shift-Enter', chainCommands(exitCode, insertBreak))
  }
  if (nodes.horizontal_rule) {
    const rule = nodes.horizontal_rule
    bind('Mod-_', (state, dispatch) => {
      dispatch?.(state.tr.replaceSelectionWith(rule.create()).scrollIntoView())
      return true
    })
  }
  return keys
}

/**
 * A ProseMirror view editing `doc`'s `prosemirror` fragment together with
 * everyone else connected to it, showing their cursors from `awareness`.
 * Undo and redo (Mod-z, Mod-y / Mod-Shift-z) only revert this user's changes.
 */
export function createEditorView(options: EditorViewOptions): EditorView {
  const { mount, doc, awareness, readOnly = false, plugins = [] } = options
  const fragment = doc.getXmlFragment(fragmentName)
  const state = EditorState.create({
    schema,
    plugins: [
      ySyncPlugin(fragment),
      yCursorPlugin(awareness, { cursorBuilder, selectionBuilder }),
      yUndoPlugin(),
      readOnlyPlugin(readOnly),
      buildInputRules(),
      keymap(buildKeymap()),
      keymap(baseKeymap),
      dropCursor({ color: 'var(--accent)', width: 2 }),
      gapCursor(),
      placeholderPlugin(),
      ...plugins,
    ],
  })
  return new EditorView(mount, {
    state,
    attributes: {
      role: 'textbox',
      'aria-multiline': 'true',
      'aria-label': 'Document',
      spellcheck: 'true',
    },
  })
}
