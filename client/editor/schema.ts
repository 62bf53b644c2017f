/**
 * The Cometpad document schema.
 *
 * Node and mark names follow prosemirror-schema-basic and prosemirror-schema-list
 * (`paragraph`, `heading`, `code_block`, `bullet_list`, `strong`, `em`, …) so
 * that documents read by the server, by y-prosemirror's JSON helpers and by
 * other ProseMirror tools mean the same thing. Only `strike` is ours.
 *
 * Content arrives from remote peers through Yjs without passing `parseDOM`, so
 * every `toDOM` treats its attributes as untrusted: heading levels are clamped
 * and unsafe link targets are never written to the page. Attributes carry no
 * `validate`, on purpose: y-prosemirror deletes from the shared document any
 * element whose node fails to build, and one peer's odd attribute should be
 * rendered safely, not erase text for everyone.
 */
import { Schema } from 'prosemirror-model'
import type { DOMOutputSpec, MarkSpec, NodeSpec } from 'prosemirror-model'

/** URL schemes a link may point to; anything else (javascript:, data:, vbscript:, file:) is refused. */
const safeLinkProtocols: ReadonlySet<string> = new Set(['http:', 'https:', 'mailto:'])

/**
 * `href` normalised by the URL parser when it is an absolute http:, https: or
 * mailto: URL, otherwise null.
 *
 * The WHATWG parser is the one the browser uses when the link is followed, so
 * tricks such as `java\tscript:` or leading control characters are seen the
 * same way here as there. Relative URLs are refused: a document is shared
 * across pages, so a relative link would mean different things to different
 * readers.
 */
export function safeHref(href: unknown): string | null {
  if (typeof href !== 'string') return null
  let url: URL
  try {
    url = new URL(href)
  } catch {
    return null
  }
  return safeLinkProtocols.has(url.protocol) ? url.href : null
}

/** Highest heading level the schema allows. */
export const maxHeadingLevel = 3

function headingLevel(value: unknown): number {
  const level = typeof value === 'number' ? Math.trunc(value) : Number.parseInt(String(value), 10)
  if (!Number.isFinite(level)) return 1
  return Math.min(Math.max(level, 1), maxHeadingLevel)
}

function listStart(value: unknown): number {
  const start = typeof value === 'number' ? Math.trunc(value) : Number.parseInt(String(value), 10)
  return Number.isFinite(start) && start >= 0 ? start : 1
}

const nodes = {
  /** The top-level document node. */
  doc: { content: 'block+' },

  paragraph: {
    content: 'inline*',
    group: 'block',
    parseDOM: [{ tag: 'p' }],
    toDOM: (): DOMOutputSpec => ['p', 0],
  },

  blockquote: {
    content: 'block+',
    group: 'block',
    defining: true,
    parseDOM: [{ tag: 'blockquote' }],
    toDOM: (): DOMOutputSpec => ['blockquote', 0],
  },

  horizontal_rule: {
    group: 'block',
    parseDOM: [{ tag: 'hr' }],
    toDOM: (): DOMOutputSpec => ['hr'],
  },

  heading: {
    attrs: { level: { default: 1 } },
    content: 'inline*',
    group: 'block',
    defining: true,
    // h4–h6 pasted from elsewhere become the smallest heading we have.
    parseDOM: [1, 2, 3, 4, 5, 6].map((level) => ({
      tag: `h${level}`,
      attrs: { level: Math.min(level, maxHeadingLevel) },
    })),
    toDOM: (node): DOMOutputSpec => [`h${headingLevel(node.attrs['level'])}`, 0],
  },

  code_block: {
    content: 'text*',
    marks: '',
    group: 'block',
    code: true,
    defining: true,
    parseDOM: [{ tag: 'pre', preserveWhitespace: 'full' }],
    toDOM: (): DOMOutputSpec => ['pre', ['code', 0]],
  },

  text: { group: 'inline' },

  hard_break: {
    inline: true,
    group: 'inline',
    selectable: false,
    parseDOM: [{ tag: 'br' }],
    toDOM: (): DOMOutputSpec => ['br'],
  },

  ordered_list: {
    attrs: { order: { default: 1 } },
    content: 'list_item+',
    group: 'block',
    parseDOM: [
      {
        tag: 'ol',
        getAttrs: (dom) => ({ order: listStart((dom as HTMLElement).getAttribute('start') ?? 1) }),
      },
    ],
    toDOM: (node): DOMOutputSpec => {
      const order = listStart(node.attrs['order'])
      return order === 1 ? ['ol', 0] : ['ol', { start: String(order) }, 0]
    },
  },

  bullet_list: {
    content: 'list_item+',
    group: 'block',
    parseDOM: [{ tag: 'ul' }],
    toDOM: (): DOMOutputSpec => ['ul', 0],
  },

  list_item: {
    // A paragraph first, then any blocks: the shape prosemirror-schema-list's
    // commands (split, sink, lift) expect.
    content: 'paragraph block*',
    defining: true,
    parseDOM: [{ tag: 'li' }],
    toDOM: (): DOMOutputSpec => ['li', 0],
  },
} satisfies Record<string, NodeSpec>

const marks = {
  link: {
    attrs: {
      href: { default: '' },
      title: { default: null },
    },
    inclusive: false,
    parseDOM: [
      {
        tag: 'a[href]',
        getAttrs: (dom) => {
          const element = dom as HTMLElement
          const href = safeHref(element.getAttribute('href'))
          // Returning false makes the parser skip the mark but keep the text.
          if (href === null) return false
          return { href, title: element.getAttribute('title') }
        },
      },
    ],
    toDOM: (mark): DOMOutputSpec => {
      const href = safeHref(mark.attrs['href'])
      const title: unknown = mark.attrs['title']
      const attrs: Record<string, string> = { rel: 'noopener noreferrer nofollow', target: '_blank' }
      if (href !== null) attrs['href'] = href
      if (typeof title === 'string' && title !== '') attrs['title'] = title
      return ['a', attrs, 0]
    },
  },

  em: {
    parseDOM: [
      { tag: 'i' },
      { tag: 'em' },
      { style: 'font-style=italic' },
      { style: 'font-style=normal', clearMark: (mark) => mark.type.name === 'em' },
    ],
    toDOM: (): DOMOutputSpec => ['em', 0],
  },

  strong: {
    parseDOM: [
      { tag: 'strong' },
      // Google Docs wraps pasted content in <b style="font-weight:normal">.
      { tag: 'b', getAttrs: (node) => (node as HTMLElement).style.fontWeight !== 'normal' && null },
      { style: 'font-weight=400', clearMark: (mark) => mark.type.name === 'strong' },
      {
        style: 'font-weight',
        getAttrs: (value) => /^(bold(er)?|[5-9]\d{2,})$/.test(value as string) && null,
      },
    ],
    toDOM: (): DOMOutputSpec => ['strong', 0],
  },

  strike: {
    parseDOM: [
      { tag: 's' },
      { tag: 'del' },
      { tag: 'strike' },
      { style: 'text-decoration=line-through' },
      { style: 'text-decoration-line=line-through' },
    ],
    toDOM: (): DOMOutputSpec => ['s', 0],
  },

  code: {
    code: true,
    parseDOM: [{ tag: 'code' }],
    toDOM: (): DOMOutputSpec => ['code', 0],
  },
} satisfies Record<string, MarkSpec>

/** The schema every Cometpad editor and the server's document readers share. */
export const schema = new Schema({ nodes, marks })
