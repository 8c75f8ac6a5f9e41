/**
 * Why a target is missed (or borderline), from profiles of the bench processes and from per-stage
 * timings (client and server stamping one monotonic clock). docs/BENCHMARKS.md prints the entry of every
 * target a run misses, one bullet per line: what the time is spent on now, what was tried and measured,
 * and what closing the gap would take. Keep it current: update an entry when its cause changes, and
 * leave the history to git and the session notes.
 */
export const CAUSES: Record<string, string[]> = {
  '2': [
    "Borderline: 1.36-1.64x over runs of the same code on this machine; alternating runs of older and newer code showed the band is the machine's (fake-indexeddb and GC), not a change's.",
    'zync side: 18-37 ms from the last set() to the storage write (the diff, 5,000 ops, the outbox index, the row copies: ~4-5 µs per op with the GC of the burst), then 60-90 ms for the Dexie write (rows, document meta and conflicts in one transaction) against 55-63 ms for the raw bulkPut.',
  ],
  '3': [
    "~220-260 µs per trip against ~45-70 µs for a bare emit with ack. Warm, per stage: set() to emit ~25 µs; the server ~70 µs from receipt to ack for a one-op batch (envelope and op validation ~20-30 µs in place, clocks, vectors and the append ~30 µs, one event-loop turn ~7-15 µs so that writers landing together share one broadcast); the ack's socket write ~35 µs; the ack applied on the client ~20 µs.",
    "Tried: acking a lone writer without the event-loop turn (0.205-0.239 ms against 0.210-0.297 ms: no gain, reverted); a leading-edge broadcast saved ~40 µs but pushed 7's bytes over 3x.",
    "1.5x would need the validated, logged path on both sides to cost about what socket.io's own framing costs (~40 µs). The SQLite figure beside it adds a synchronous WAL commit per batch.",
  ],
  '4a': [
    'Warm, per stage, 10 readers: writer set() to emit 26-45 µs (Yjs ~11 µs); the emit call 32-60 µs (the socket write, which the Yjs writer pays too); receipt to broadcast 60-75 µs (validation 20-30 µs in place against ~5 µs in a hot loop, apply and append ~30 µs, the coalescing turn ~7 µs); the broadcast\'s 10 socket writes 90-110 µs; each reader applies the change in ~5 µs. Yjs relays an update as it arrives, without validation or a log.',
    'Per reader zync costs less than Yjs (~15 µs against ~24 µs, from 4b minus 4a), so 4b is at parity and 4a, where the fixed cost per write weighs more, is not.',
    'Since each suite runs in a fresh process (2026-11-23 evening), both sides are faster and Yjs more so: Yjs ~0.28-0.30 ms (from 0.34-0.42), zync ~0.40-0.43 ms (from 0.44-0.51), so the ratio went up (1.40-1.45x) while the zync p99 came under the 3 ms target (2.6-2.9 ms, from 3.4-4.0).',
    'The ratio moves with the machine: 1.12-1.6x over runs of the same code. The p99 comes from GC and from scheduling on 2 cores: Linux sometimes runs the woken server on the writer\'s core and the emit call then takes 250-320 µs. Pinning the processes to separate cores removed that but halved 5 and 6, so the bench does not pin. Yjs\'s p99 moves as much (1.8-10 ms over runs).',
  ],
  '4b': [
    "Borderline: 0.93-1.27x over runs (0.98-1.11x with each suite in a fresh process). The fixed cost per write is 4a's; per reader zync costs ~15 µs against Yjs's ~24 µs.",
  ],
  '5': [
    'The zync client is the bound at ~20 µs per op (client and server run on separate cores): capture ~4.5 µs (diff, op, outbox index), the pump and socket.io ~3 µs, the acknowledged change applied to the confirmed state ~4 µs, GC ~5 µs, the app\'s own spread and setState ~2.5 µs. No function is above ~5% of the profile.',
    'The server alone (the line beside the result: a raw socket sending compact batches of 500) reaches 0.6-0.8x, at ~14-16 µs per op (apply, clocks and vectors, the memory storage\'s copy of each entry, validation, GC).',
    'The bare client sends one message per op and its server does nothing with it. 1.0x would take both zync sides halving their per-op work: a different data path (for one, applying acknowledged own changes to the confirmed state lazily), not small changes.',
    "Done and measured: acks name an op applied as sent by its index instead of repeating it (shortAcks, docs/PROTOCOL.md): the ack's decoding fell from ~90 to ~30 ms per run, ~5% of the client's CPU. The snapshot interval (half the document's field count, so keepLog bounds the log of a growing document) costs ~0.05x here.",
  ],
  '6': ['Bound by the per-op work of both sides (see 5); the rate moves by a third from run to run with the load of the machine.'],
  '7': [
    'Time: borderline, 0.85-1.04x over runs. Broadcasts are coalesced per document per event-loop turn, so the 16 writes reach each reader in about one message.',
    'Bytes: 2.8-3.0x. A Yjs update is ~30 B of binary; a zync change record is ~75 B of JSON (op id, client id, packed stamp, seq) and an op carries its base vector, which names every writer of the entity (17 here).',
  ],
  '8a': [
    'The feature set, not waste: src/core/engine.ts alone is ~31 kB minified (the conflict inbox, dead letters, tabs with device-wide pending, presence, priority lanes, catch-up, link pacing, typed error messages), the compact wire codec ~4.3 kB, id-keyed arrays (order keys, the client predicting the server\'s merge) ~4.7 kB, the Dexie outbox ~3.8 kB, the conflict modal ~4.3 kB. String literals are ~3.8 kB of the gzipped total; mangling private names would save ~1 kB.',
    'It grew from 29.4 kB (size-limit, 2026-11-22) to 40.8 kB, 0.2-2 kB per round of user trials, each for what a trial found: offline edits of other documents delivered, edits kept per user on a shared device, sends paced to the server\'s rate limits and the link, clock jumps and a rewound server handled, server rendering, accessible and translatable components, short acks, a big document\'s snapshot spaced out, refused presence reported, a viewer told it is read-only before it edits (status().readOnly, "View only" in the badge), edits that backed off from a server outage sent once it is over, a confirmation before "Keep all", a new record\'s fields under their own policies sent as ops of their own, a failing conflict resolver leaving the conflict to the inbox, hooks that re-render only on a real change, a client that leaves presence when no component shows it and a big confirmed state saved and loaded in parts so the page keeps responding (+0.5 kB) and a "Why?" button that shows the badge\'s error reason on touch and keyboard, and the fixes of the adversarial, flaky-network and multi-node trials (entity names escaped, exact stamp grammar, bounded counters and history answers, presence kept across nodes; +0.3 kB), then whole top-level keys checked against the records under them and the screen kept in step when such a key goes (+0.3 kB) and id-keyed array merges made linear where they were quadratic, with sorted keys searched by bisection (+0.25 kB), and the fixes of a new-user trial (your own presence entry as the server authenticated you, conflict headings naming the record, whole rewrites diffed as such; +0.25 kB), then the fixes of a designer\'s and a developer\'s trial (the dialog opening at its top on short screens, the page behind it inert, popups closed when the user goes elsewhere, each TanStack Query connection with its own listener, edits of a closed page announced to the other tabs and shown by the tab that adopts them, two stores\' dialogs stacking, errors recognised across copies of zync, stores collected when dropped; +0.7 kB), then the fixes of a conflict, a browser performance and an operator trial (a conflict over an object kept open when someone edits another of its keys, Edit merged saying when its JSON is of the wrong type, the dialog showing 25 conflicts at a time, rows the joined snapshot holds not shown twice, an answer refreshing the screen once, acknowledged rows deleted only with the state that holds them, the inbox order kept after a reload, acknowledgements reported before flush() returns; +0.4 kB, to 40.68 kB), then the modules that import dexie and socket.io-client put in chunks of their own so that an app importing only ZyncError bundles neither (was 140 kB; +0.08 kB here, where both are bundled, to 40.83 kB). .size-limit.json keeps a regression budget just above the current size.',
    '8 kB would need the optional features (conflict UI, presence, tabs, id-keyed arrays) moved to separate entry points, which would change the API the issues fix.',
  ],
  '8b': [
    'From heap snapshots of both servers (300 joined connections): zync holds ~1.2-1.3 kB more per connection. ~280 B is the table of eight event listeners each socket.io socket keeps (one catch-all listener would save it, but socket.io calls catch-all listeners before `socket.use` middleware, so an operator\'s middleware would no longer gate zync\'s handlers); ~130 B the two flood-limit buckets; ~200 B the room membership.',
  ],
}
