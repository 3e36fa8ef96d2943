import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { ddb } from '../aws/clients';
import { config } from '../config';
import { withoutKeys, putNew, transactIf, updateIf } from './items';
import { namedCollection } from './named';
import { keys } from './keys';

export type MacroAction =
  | { type: 'addLabels' | 'removeLabels'; labels: string[] }
  | { type: 'assign'; agentId: string | null }
  | { type: 'transfer'; team: string; note?: string }
  | { type: 'sendMessage'; text: string }
  | { type: 'addNote'; text: string }
  | { type: 'setStatus'; status: 'open' | 'pending' | 'resolved' }
  | { type: 'snooze'; minutes: number };

/** An action as a run keeps it: a snooze with the instant it ends, fixed when the run started. */
export type MacroRunAction = Exclude<MacroAction, { type: 'snooze' }> | { type: 'snooze'; minutes: number; until: string };

export interface MacroRecord {
  id: string;
  name: string;
  actions: MacroAction[];
  createdAt: string;
  createdBy: string;
  updatedAt: string;
}

/** How far one run got: the actions as they were when it started, and the messages it wrote. */
export interface MacroRun {
  macroId: string;
  agentId: string;
  actions: MacroRunAction[];
  /** Actions done, in order: a retry goes on from the next. */
  done: number;
  messageIds: string[];
}

/** As long as a message's idempotency record: a retry later than that is a new run. */
const RUN_TTL_SECONDS = 14 * 24 * 3600;

const library = namedCollection<MacroRecord>({ record: keys.macro, claim: keys.macroName, partition: keys.macroPartition, prefix: keys.macroPrefix, nameOf: (m) => m.name });

/** Stores a new macro with the claim of its name; false when the name is taken. */
export const putMacro = library.put;

/**
 * Replaces a macro as read (`previous`); a new name is claimed and the old one freed in the same
 * transaction. False when the name is taken or the macro changed or went meanwhile (read again to tell).
 */
export async function replaceMacro(previous: MacroRecord, record: MacroRecord): Promise<boolean> {
  const renamed = keys.macroName(previous.name).sk !== keys.macroName(record.name).sk;
  return transactIf([
    ...(renamed
      ? [
          library.claimPut(record),
          { Delete: { TableName: config.tableName, Key: keys.macroName(previous.name), ConditionExpression: 'id = :id', ExpressionAttributeValues: { ':id': record.id } } },
        ]
      : []),
    {
      Put: {
        TableName: config.tableName,
        Item: { ...keys.macro(record.id), ...record },
        ConditionExpression: 'updatedAt = :was',
        ExpressionAttributeValues: { ':was': previous.updatedAt },
      },
    },
  ]);
}

export const getMacroRecord = library.get;
/** False when there was nothing to delete. The name's claim goes with it, in one transaction. */
export const deleteMacro = library.remove;
/** Every macro in one Query: a workspace keeps tens, not millions. */
export const listMacroRecords = library.list;

export async function getMacroRun(conversationId: string, runKey: string): Promise<MacroRun | undefined> {
  const out = await ddb().send(new GetCommand({ TableName: config.tableName, Key: keys.macroRun(conversationId, runKey), ConsistentRead: true }));
  return out.Item ? withoutKeys<MacroRun & { expiresAt?: number }>(out.Item) : undefined;
}

/** Records a run about to start; false when another attempt of it did first (read theirs). */
export async function putMacroRun(conversationId: string, runKey: string, run: MacroRun): Promise<boolean> {
  return putNew({ ...keys.macroRun(conversationId, runKey), ...run, expiresAt: Math.floor(Date.now() / 1000) + RUN_TTL_SECONDS });
}

/** Moves a run on past its action `done - 1`; never back (an attempt beside it may be further). */
export async function advanceMacroRun(conversationId: string, runKey: string, done: number, messageIds: string[]): Promise<void> {
  await updateIf({
    Key: keys.macroRun(conversationId, runKey),
    UpdateExpression: 'SET done = :done, messageIds = :ids',
    ConditionExpression: 'attribute_exists(pk) AND done < :done',
    ExpressionAttributeValues: { ':done': done, ':ids': messageIds },
  });
}
