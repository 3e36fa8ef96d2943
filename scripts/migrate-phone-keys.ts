/**
 * `npm run migrate:phone-keys -- [--table NAME] [--dry-run] [--page-size N] [--show-numbers]`
 *
 * Re-keys the handle and identity items of phone numbers (WhatsApp, SMS, a contact's phone) that
 * a version before the two forms of one number wrote under another key: keys.handle now keys a
 * number by phoneKey (a Brazilian mobile with its ninth digit, a Mexican `52 1` or Argentine `54 9`
 * mobile without the extra digit) and reads a leading international `00` as the `+`, so an item
 * keyed as the number was given is found no more (README: Deploy, Upgrading).
 *
 * A one-off admin job, so it scans: one page of `--page-size` items (100) at a time, in sequence,
 * so that it takes a small share of the table's read capacity. Each step is conditional and the
 * old item goes last: a crash or a second run leaves the table consistent, and a run over a
 * migrated table changes nothing.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ENV } from '../src/config';
import { keys, PHONE_HANDLES, sameHandle, type Key } from '../src/store/keys';

type Item = Record<string, unknown>;
type Handle = { channel: string; handle: string };

const HANDLE_PREFIX = 'HANDLE#';

/**
 * The key every version before the two forms of one number (commit acbbb6a) gave a handle item:
 * the handle as given, in lower case, for every channel. Between that commit and 9072408 a phone
 * channel's handle that is no number (an alphanumeric SMS sender) was keyed in its own case; such
 * an item is found by the scan all the same, as its key is not the current one either.
 */
export function legacyHandleKey(channel: string, handle: string): Key {
  return { pk: `${HANDLE_PREFIX}${channel}#${handle.toLowerCase()}`, sk: 'HANDLE' };
}

/**
 * The number the current code has for a phone channel's handle an older version stored: before
 * normalizePhone read a leading international `00` as the `+` (commit e72021a), `0044 20…` was
 * kept as `+004420…` (and a conversation moved to WhatsApp from it got `004420…`). A country
 * code never starts with 0, so no number in its current form starts so.
 */
export function currentNumber(handle: string): string {
  return handle.replace(/^(\+?)00(?=[1-9])/, '$1');
}

/**
 * A customer's number as the command prints it by default: its first two digits and last four,
 * the rest starred. The output lands in terminals and CI logs; contact ids name the customers
 * an admin acts on, and `--show-numbers` prints numbers whole. A handle that is no number of
 * seven digits or more (a short code, an alphanumeric sender) is a business's, shown as it is.
 */
export function maskNumber(handle: string): string {
  const parts = /^(\+?\d{2})(\d+)(\d{4})$/.exec(handle);
  return parts ? `${parts[1]}${'*'.repeat(parts[2]!.length)}${parts[3]}` : handle;
}

/** The channel and handle a handle item's key names (a handle may itself hold a `#`). */
function parseHandleKey(pk: string): Handle | undefined {
  if (!pk.startsWith(HANDLE_PREFIX)) return undefined;
  const rest = pk.slice(HANDLE_PREFIX.length);
  const at = rest.indexOf('#');
  return at > 0 ? { channel: rest.slice(0, at), handle: rest.slice(at + 1) } : undefined;
}

export interface Summary {
  scanned: number;
  rekeyed: number;
  duplicates: number;
  conflicts: number;
  contactsFixed: number;
  /** Old items that changed between their read and their delete: left for another run. */
  changed: number;
}

export interface MigrateOptions {
  client: DynamoDBDocumentClient;
  table: string;
  dryRun?: boolean;
  pageSize?: number;
  log?: (line: string) => void;
  /** Print numbers whole in the log lines (default: masked, maskNumber). */
  showNumbers?: boolean;
}

/** Merges chained one after another, followed to the contact that has the handles in the end. */
const MAX_MERGE_HOPS = 5;
/** Reads and writes of one contact item when an agent's edit or a customer's message lands in between. */
const CONTACT_WRITE_ATTEMPTS = 5;

export async function migratePhoneKeys({ client, table, dryRun = false, pageSize = 100, log = console.log, showNumbers = false }: MigrateOptions): Promise<Summary> {
  const summary: Summary = { scanned: 0, rekeyed: 0, duplicates: 0, conflicts: 0, contactsFixed: 0, changed: 0 };
  const would = dryRun ? 'would ' : '';
  const shownNumber = (handle: string): string => (showNumbers ? handle : maskNumber(handle));
  /** A handle item's key as printed: its number masked unless asked for whole. */
  const shown = (pk: string): string => {
    const handle = parseHandleKey(pk);
    return handle ? `${HANDLE_PREFIX}${handle.channel}#${shownNumber(handle.handle)}` : pk;
  };

  const get = async (key: Key): Promise<Item | undefined> => (await client.send(new GetCommand({ TableName: table, Key: key, ConsistentRead: true }))).Item;
  const conditional = async (write: () => Promise<unknown>): Promise<boolean> => {
    try {
      await write();
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  };

  /** The contact a contact id stands for now: the one it was merged into, if it was. */
  const survivorOf = async (contactId: string): Promise<string> => {
    let current = contactId;
    for (let hop = 0; hop < MAX_MERGE_HOPS; hop++) {
      const mergedInto = (await get(keys.contact(current)))?.mergedInto;
      if (typeof mergedInto !== 'string') return current;
      current = mergedInto;
    }
    return current;
  };

  /**
   * The contact's list (and its phone, for a phone identity) names a number stored with `00` as the
   * current code writes it. Only that case: sameHandle finds a number in its other form through
   * phoneKey, and the list keeps the form each channel wrote, where a reply goes.
   */
  const fixContact = async (contactId: string, old: Handle, number: string): Promise<void> => {
    if (number === old.handle) return;
    for (let attempt = 0; attempt < CONTACT_WRITE_ATTEMPTS; attempt++) {
      const contact = await get(keys.contact(contactId));
      if (!contact) return;
      const handles = (contact.handles ?? []) as Handle[];
      const stale = (h: Handle) => h.channel === old.channel && h.handle === old.handle;
      const staleList = handles.some(stale);
      const stalePhone = old.channel === 'phone' && contact.phone === old.handle;
      if (!staleList && !stalePhone) return;
      if (dryRun) {
        log(`${would}fix contact ${contactId}: ${old.channel} ${shownNumber(old.handle)} -> ${shownNumber(number)}`);
        summary.contactsFixed++;
        return;
      }
      const fixed: Handle[] = [];
      for (const h of handles) {
        const next = stale(h) ? { channel: h.channel, handle: number } : h;
        // The number may be listed already (a customer who wrote since in its current form): once.
        if (!fixed.some((f) => sameHandle(f, next))) fixed.push(next);
      }
      const version = typeof contact.version === 'number' ? contact.version : undefined;
      // With the version bumped and on condition of the one read: an agent's edit that read the
      // old list is refused and reads again, as it would be by another edit.
      const written = await conditional(() =>
        client.send(
          new UpdateCommand({
            TableName: table,
            Key: keys.contact(contactId),
            UpdateExpression: `SET handles = :handles, version = :next${stalePhone ? ', phone = :phone' : ''}`,
            ConditionExpression: version === undefined ? 'attribute_not_exists(version)' : 'version = :read',
            ExpressionAttributeValues: {
              ':handles': fixed,
              ':next': (version ?? 0) + 1,
              ...(version === undefined ? {} : { ':read': version }),
              ...(stalePhone ? { ':phone': number } : {}),
            },
          }),
        ),
      );
      if (written) {
        log(`fixed contact ${contactId}: ${old.channel} ${shownNumber(old.handle)} -> ${shownNumber(number)}`);
        summary.contactsFixed++;
        return;
      }
    }
    throw new Error(`contact ${contactId} kept changing while its handles were fixed; run again`);
  };

  /** The old item's contact and, when it was merged, the survivor: the merge copied its list there. */
  const fixContacts = async (contactId: string, holder: string, old: Handle, number: string): Promise<void> => {
    await fixContact(contactId, old, number);
    if (holder !== contactId) await fixContact(holder, old, number);
  };

  /** Deletes the old item on condition that it is as read (nobody pointed it elsewhere meanwhile). */
  const deleteOld = async (item: Item): Promise<boolean> => {
    const fields = Object.keys(item).filter((name) => name !== 'pk' && name !== 'sk');
    const names = Object.fromEntries(fields.map((name, i) => [`#a${i}`, name]));
    const values = Object.fromEntries(fields.map((name, i) => [`:a${i}`, item[name]]));
    const conditions = [...fields.map((_, i) => `#a${i} = :a${i}`), ...(fields.includes('conversationId') ? [] : ['attribute_not_exists(conversationId)'])];
    return conditional(() =>
      client.send(
        new DeleteCommand({
          TableName: table,
          Key: { pk: item.pk, sk: item.sk },
          ConditionExpression: conditions.join(' AND '),
          ...(fields.length > 0 ? { ExpressionAttributeNames: names, ExpressionAttributeValues: values } : {}),
        }),
      ),
    );
  };

  const migrate = async (scanned: Item, old: Handle): Promise<void> => {
    const number = currentNumber(old.handle);
    const target = keys.handle(old.channel, number);
    if (target.pk === scanned.pk) return;
    // A Scan reads eventually consistent: the delete's condition needs the item as it is.
    const item = await get({ pk: String(scanned.pk), sk: String(scanned.sk) });
    if (!item) return;
    const oldPk = String(item.pk);
    const contactId = String(item.contactId);
    let existing = await get(target);
    if (!existing) {
      if (dryRun) {
        log(`${would}re-key ${shown(oldPk)} -> ${shown(target.pk)} (contact ${contactId})`);
        summary.rekeyed++;
        await fixContact(contactId, old, number);
        return;
      }
      const put = await conditional(() =>
        client.send(new PutCommand({ TableName: table, Item: { ...item, ...target }, ConditionExpression: 'attribute_not_exists(pk)' })),
      );
      if (put) {
        await fixContact(contactId, old, number);
        if (await deleteOld(item)) {
          log(`re-keyed ${shown(oldPk)} -> ${shown(target.pk)} (contact ${contactId})`);
          summary.rekeyed++;
        } else {
          log(`changed during the run, left for the next: ${shown(oldPk)}`);
          summary.changed++;
        }
        return;
      }
      // Written meanwhile (a customer's message in the current form): as if it had been there.
      existing = await get(target);
      if (!existing) throw new Error(`${shown(target.pk)} was written and is gone again; run again`);
    }
    const holder = String(existing.contactId);
    if (holder !== contactId && (await survivorOf(holder)) !== (await survivorOf(contactId))) {
      log(
        `conflict: ${shown(oldPk)} is contact ${contactId}'s, ${shown(target.pk)} is contact ${holder}'s: one customer, two contacts. ` +
          `Merge them (POST /v1/contacts/${holder}/merge {"otherContactId":"${contactId}"}), then run this again`,
      );
      summary.conflicts++;
      return;
    }
    if (dryRun) {
      log(`${would}remove ${shown(oldPk)}: ${shown(target.pk)} is contact ${holder}'s already`);
      summary.duplicates++;
      await fixContacts(contactId, holder, old, number);
      return;
    }
    // The old item's conversation, where the current one names none yet (an identity claimed
    // since): the customer's next message goes on in it.
    if (typeof item.conversationId === 'string' && existing.conversationId === undefined) {
      await conditional(() =>
        client.send(
          new UpdateCommand({
            TableName: table,
            Key: target,
            UpdateExpression: 'SET conversationId = :conversation',
            ConditionExpression: 'contactId = :contact AND attribute_not_exists(conversationId)',
            ExpressionAttributeValues: { ':conversation': item.conversationId, ':contact': holder },
          }),
        ),
      );
    }
    await fixContacts(contactId, holder, old, number);
    if (await deleteOld(item)) {
      log(`removed ${shown(oldPk)}: ${shown(target.pk)} is contact ${holder}'s already`);
      summary.duplicates++;
    } else {
      log(`changed during the run, left for the next: ${shown(oldPk)}`);
      summary.changed++;
    }
  };

  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: table,
        Limit: pageSize,
        // Filtered after the read (a Scan reads every item anyway): only handle items come back.
        FilterExpression: 'begins_with(pk, :prefix) AND sk = :sk',
        ExpressionAttributeValues: { ':prefix': HANDLE_PREFIX, ':sk': 'HANDLE' },
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      }),
    );
    summary.scanned += page.ScannedCount ?? 0;
    for (const item of page.Items ?? []) {
      const old = parseHandleKey(String(item.pk));
      if (old && PHONE_HANDLES.has(old.channel)) await migrate(item, old);
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);

  return summary;
}

export function summaryLine(summary: Summary, dryRun: boolean): string {
  const verb = dryRun ? 'dry run, nothing written; would have ' : '';
  return (
    `summary: ${verb}scanned ${summary.scanned} items, re-keyed ${summary.rekeyed}, removed as duplicates ${summary.duplicates}, ` +
    `conflicts ${summary.conflicts}, contacts fixed ${summary.contactsFixed}, changed during the run ${summary.changed}`
  );
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      table: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      'page-size': { type: 'string', default: '100' },
      'show-numbers': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const table = values.table ?? process.env.CONVERSA_TABLE ?? process.env[ENV.tableName];
  if (!table) {
    console.error(`No table: give --table NAME, or set CONVERSA_TABLE or ${ENV.tableName}`);
    return 2;
  }
  const pageSize = Number(values['page-size']);
  if (!Number.isInteger(pageSize) || pageSize < 1) {
    console.error('--page-size must be a positive whole number');
    return 2;
  }
  const dryRun = values['dry-run'];
  // Region, credentials and endpoint (AWS_ENDPOINT_URL_DYNAMODB for DynamoDB Local) from the standard AWS environment.
  const client = DynamoDBDocumentClient.from(new DynamoDBClient({ maxAttempts: 8 }), { marshallOptions: { removeUndefinedValues: true } });
  const summary = await migratePhoneKeys({ client, table, dryRun, pageSize, showNumbers: values['show-numbers'] });
  console.log(summaryLine(summary, dryRun));
  // Conflicts wait for an admin's merge and are no failure; an item changed during the run is left for another.
  return summary.changed > 0 ? 1 : 0;
}

// Run as a command (tests import the functions).
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error instanceof Error ? (error.stack ?? error.message) : error);
      process.exit(1);
    },
  );
}
