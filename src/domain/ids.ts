import { monotonicFactory } from 'ulid';

/** Ids are ULIDs: opaque, unique, and sortable by creation time (CONTRACT.md section 5). */
export const newId = monotonicFactory();
