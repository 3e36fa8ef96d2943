import { keys } from './keys';
import { namedCollection } from './named';

export interface CannedResponse {
  id: string;
  /** What agents type to find it, e.g. `refund`. */
  shortCode: string;
  text: string;
  createdAt: string;
  createdBy: string;
}

const library = namedCollection<CannedResponse>({
  record: keys.cannedResponse,
  claim: keys.cannedCode,
  partition: keys.cannedPartition,
  prefix: keys.cannedPrefix,
  nameOf: (r) => r.shortCode,
  // A response stored before short codes were claimed has no claim.
  unclaimedRecords: true,
});

/** Stores a new canned response with the claim of its short code; false when the code is taken. */
export const putCannedResponse = library.put;
export const getCannedResponse = library.get;
/** False when there was nothing to delete. The short code's claim goes with it, in one transaction. */
export const deleteCannedResponse = library.remove;
/** The whole library in one Query: a workspace keeps hundreds, not millions. */
export const listCannedResponses = library.list;
