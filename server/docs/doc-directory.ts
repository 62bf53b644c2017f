/**
 * Which documents exist and what a link to one allows. A link's address is
 * resolved here before any room is loaded, so a guessed or malformed id
 * never creates anything.
 */
import * as Y from 'yjs'
import { newDocId, parseDocId, type DocId } from '../../common/ids'
import type { DocStore } from '../storage/doc-store'

/** What an address grants. */
export interface DocAccess {
  docId: DocId
  canWrite: boolean
}

/** Creates documents and resolves link addresses. */
export class DocDirectory {
  constructor(private readonly store: DocStore) {}

  /**
   * Create a new, empty document and make it durable, so its link works
   * from the first request on.
   */
  async create(): Promise<DocId> {
    const docId = newDocId()
    await this.store.append(docId, Y.encodeStateAsUpdate(new Y.Doc()))
    return docId
  }

  /** What `address` grants, or null when it is malformed or names no document. */
  async resolve(address: string): Promise<DocAccess | null> {
    const docId = parseDocId(address)
    if (!docId) return null
    if (!(await this.store.has(docId))) return null
    return { docId, canWrite: true }
  }
}
