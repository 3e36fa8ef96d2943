/**
 * Channel transfer: an agent continues a customer's conversation on another of the contact's
 * channels. The target is the contact's conversation on that channel (created when the customer
 * never wrote there), assigned to the agent who moves it when nobody holds it; private notes on
 * both sides link the two histories. The customer's unresolved issue is counted once in the
 * reports: its episode goes with it (README, Reports).
 */
import * as z from '../zod';
import type { Route } from './context';
import { json, parseBody } from '../http/http';
import { badRequest, ClientError, conflict, notFound } from '../domain/errors';
import { PROVIDER_CHANNELS, type ProviderChannel } from '../domain/types';
import { addHandlesFollowingMerges, handleOnChannel, loadContact } from '../domain/contacts';
import { openConversation } from '../domain/inbound';
import { postAgentMessage, type AgentIdentity } from '../domain/outbound';
import { changeConversation, withStatus } from '../domain/conversations';
import { ensureAgent } from '../domain/assignment';
import { newId } from '../domain/ids';
import { getAdapter } from '../channels/registry';
import { claimHandle, getHandle } from '../store/contacts';
import { firstTeamReplySince } from '../store/messages';
import { getConversation, isErasing, toConversation, updateConversation, type ConversationRecord } from '../store/conversations';
import { closedEpisodeItem, closesOwnEpisode, movedEpisode, withMovedEpisode, type MovedEpisode } from '../domain/episodes';
import { FUNCTIONS } from '../manifest';

const TransferBody = z.object({ channel: z.enum(PROVIDER_CHANNELS) });

/** Past the API function's timeout, the move that claimed an episode died (its retry holds the claim all the same). */
const CLAIM_HOLDS_MS = FUNCTIONS.api.timeoutSeconds * 1000;

/**
 * Claims the source's unresolved episode for the move to `channel`, on the source, before any
 * target takes it: of two moves at once to two channels (two agents), only one carries it, the
 * other going on as a move after it would, without it (else both targets counted the issue).
 * The same move again (a double click, a retry) holds the same claim; one older than the API's
 * timeout was left by a move that died, and gives way. The episode this move carries, if any.
 */
async function claimEpisode(sourceId: string, channel: ProviderChannel): Promise<MovedEpisode | undefined> {
  const now = Date.now();
  let claimed: ConversationRecord | undefined;
  await updateConversation(sourceId, (c) => {
    claimed = undefined;
    // A source that moved before has no episode of its own left to give; a resolved one's is over;
    // the team's contact (an agent took up an issue closed days ago) is no issue until the customer writes.
    if (c.status === 'resolved' || c.movedTo || c.teamStarted) return undefined;
    if (c.movingTo && c.movingTo.channel !== channel && now - Date.parse(c.movingTo.at) < CLAIM_HOLDS_MS) return undefined;
    claimed = c;
    return c.movingTo?.channel === channel ? undefined : { ...c, movingTo: { channel, at: new Date(now).toISOString() } };
  });
  return claimed && movedEpisode(claimed);
}

async function targetConversation(
  source: ConversationRecord,
  channel: ProviderChannel,
): Promise<{ conversation: ConversationRecord; created: boolean; episode: MovedEpisode | undefined }> {
  const found = await loadContact(source.contact.id);
  if (!found) throw notFound('contact');
  const { contact } = found;
  const reachable = handleOnChannel(contact, channel, getAdapter(channel).handleForPhone);
  if (!reachable) {
    throw new ClientError(422, 'no_handle', `The customer has no ${channel} handle${getAdapter(channel).handleForPhone ? ' and no phone number' : ''} to continue on.`);
  }
  const { handle, fromPhone } = reachable;
  // A phone another contact holds (a visitor's unvouched one, with identity verification on) is
  // that customer's: continuing there would hand their messages on this channel to this contact.
  const phoneOwner = fromPhone ? (await getHandle('phone', fromPhone))?.contactId : undefined;
  if (phoneOwner && phoneOwner !== contact.id) {
    throw conflict('handle_taken', `The phone number ${fromPhone} belongs to another contact; merge the contacts first.`);
  }
  const pointer = (await getHandle(channel, handle)) ?? (await claimHandle(channel, handle, { contactId: contact.id }));
  if (pointer.contactId !== contact.id) {
    throw conflict('handle_taken', `The ${channel} handle ${handle} belongs to another contact; merge the contacts first.`);
  }
  // Claimed once the move is sure to go ahead: a refused one leaves the source as it was.
  const episode = await claimEpisode(source.id, channel);
  if (pointer.conversationId) {
    const existing = await getConversation(pointer.conversationId, true);
    if (existing) return { conversation: existing, created: false, episode };
  }
  // The contact it was merged into meanwhile, if it was.
  const contactId = await addHandlesFollowingMerges(contact.id, [{ channel, handle }]);
  const opened = await openConversation(
    {
      channel,
      handle,
      contactId,
      conversationId: pointer.conversationId,
      profile: { name: contact.name, email: contact.email, phone: contact.phone },
    },
    // Without an issue to carry the team starts this contact: it counts once the customer writes there.
    // Either way an agent goes on with it there: the customer's answer is not greeted as a new start.
    { ...(episode ?? { teamStarted: true }), autoresponded: true },
  );
  return { ...opened, episode };
}

/**
 * Moves the source's unresolved episode to the target, so that the customer's issue counts once
 * (src/domain/episodes.ts withMovedEpisode): a target made for it was created carrying it; one
 * without an episode of its own (moved back, or started by the team) takes it; one with a live
 * episode of its own (the customer wrote there too) folds the two, keeping the earlier start; a
 * resolved one is reopened for the agent going on there and takes it, its closed episode frozen
 * with its figures in the same write (else the customer's answer there would reopen that one or
 * count the issue again). Only then does the source leave the reports (recordMove: a crash in
 * between counts it twice until the transfer is retried, never not at all). A resolved source
 * moves nothing: its episode is over.
 */
async function moveEpisode(source: ConversationRecord, target: ConversationRecord, episode: MovedEpisode, agent: AgentIdentity): Promise<void> {
  // The team's conversation keeps only its first reply: one written there since the issue began,
  // after an earlier one, is found in its messages (those since that start alone).
  const replied = target.teamStarted && target.firstReplyAt !== undefined && target.firstReplyAt < episode.reportStartedAt;
  const teamReplySince = replied ? await firstTeamReplySince(target.id, episode.reportStartedAt) : undefined;
  // Decided on the record each write replaces: a concurrent move may have taken it already.
  await changeConversation(
    target.id,
    (c) => {
      const fields = withMovedEpisode(c, episode, teamReplySince);
      if (!fields) return undefined;
      // The agent who moves it goes on with it, as with a reopening of their own.
      const reopened = c.status === 'resolved' ? { ...withStatus(c, 'open', new Date().toISOString(), agent.id), assigneeId: agent.id } : c;
      // The issue was greeted where it began (or not at all): the customer's answer here is not a new start.
      return { ...reopened, ...fields, autoresponded: true };
    },
    { by: agent.id },
    (before, after) => (before.status === 'resolved' && after.status !== 'resolved' && closesOwnEpisode(before) ? closedEpisodeItem(before) : undefined),
  );
}

/**
 * Records the move on the source, in one write: where it was continued and the id the move's two
 * notes are stored under (continuedIn), and `movedTo` when its episode went (moveEpisode). The same
 * move again (a client's retry after a timeout, a 5xx or a lost answer, whatever step the first
 * attempt died after) finds it and keeps that id, so each note is stored once; a move back into
 * the source clears it first (transferToChannel), so moving it there again later is a new move
 * with notes of its own. Returns that id.
 */
async function recordMove(sourceId: string, target: ConversationRecord, episodeMoved: boolean): Promise<string> {
  const targetId = target.id;
  let id = '';
  const result = await updateConversation(sourceId, (c) => {
    const moves = episodeMoved && c.status !== 'resolved' && c.movedTo !== targetId;
    const repeated = c.continuedIn?.to === targetId ? c.continuedIn.id : undefined;
    // This move's claim ends here; another's (a move without the episode beside it) stands.
    const claimEnds = c.movingTo?.channel === target.channel;
    id = repeated ?? newId();
    if (repeated && !moves && !claimEnds) return undefined;
    return { ...c, ...(moves ? { movedTo: targetId } : {}), ...(claimEnds ? { movingTo: undefined } : {}), continuedIn: { to: targetId, id } };
  });
  if (!result) throw notFound('conversation');
  return id;
}

export async function transferToChannel(sourceId: string, channel: ProviderChannel, agent: AgentIdentity): Promise<{ conversation: ConversationRecord; created: boolean }> {
  const source = await getConversation(sourceId, true);
  if (!source || isErasing(source)) throw notFound('conversation');
  if (source.channel === channel) throw badRequest('same_channel', `the conversation is already on ${channel}`);
  const target = await targetConversation(source, channel);
  const { episode } = target;
  // One who never opened the console gets their record before anything is given to them, as when they take one.
  await ensureAgent(agent.id, agent);
  if (episode) await moveEpisode(source, target.conversation, episode, agent);
  // Moved back into a conversation continued elsewhere before: that earlier move is over (read on
  // the record just read, so a write only then), and no move of it there later repeats it.
  if (target.conversation.continuedIn) {
    await updateConversation(target.conversation.id, (c) => (c.continuedIn ? { ...c, continuedIn: undefined } : undefined));
  }
  const notes = `move:${await recordMove(source.id, target.conversation, episode !== undefined)}`;
  await postAgentMessage(target.conversation.id, agent, {
    text: `Continued from the ${source.channel} conversation ${source.id}.`,
    private: true,
    clientMessageId: notes,
  });
  await postAgentMessage(source.id, agent, { text: `Continued on ${channel} in conversation ${target.conversation.id}.`, private: true, clientMessageId: notes });
  // The agent who moves it goes on with it, as with a manual assignment (when nobody holds it,
  // checked on the record the write replaces); else it would wait in the queue for an unrelated
  // event to route it.
  const { after } = await changeConversation(target.conversation.id, (c) =>
    c.status === 'open' && !c.assigneeId ? { ...c, assigneeId: agent.id, updatedAt: new Date().toISOString() } : undefined,
  );
  return { conversation: after, created: target.created };
}

export const channelTransferRoute: Route = async ({ event, params, agent }) => {
  const body = parseBody(event, TransferBody);
  const { conversation, created } = await transferToChannel(params.id!, body.channel, agent);
  return json(created ? 201 : 200, toConversation(conversation));
};
