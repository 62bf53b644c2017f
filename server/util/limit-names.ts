/** The limits the server enforces, as named in `cometpad_limit_exceeded_total{limit}`. */
export const limitNames = ['messages_per_second', 'bytes_per_second', 'polls_per_second', 'sessions_per_ip', 'slow_reader', 'doc_bytes', 'open_rooms'] as const

/** One of {@link limitNames}. */
export type LimitName = (typeof limitNames)[number]

/** Called each time a client exceeds a limit (metrics). */
export type OnLimitExceeded = (limit: LimitName) => void
