/**
 * The inbox index at each stage of its migration (context `inboxIndex`; README, Deploy): a table
 * deployed before 2026-11-27 has `gsi1` projecting every attribute, and CloudFormation cannot
 * change a projection in place, so the slim index is built beside it under another name, the
 * functions move to it, and the old one goes, one deploy each. Asset bundling is skipped.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { buildConversa, statefulResources, type ConversaAppConfig } from '../../lib/app';
import { StatefulStack } from '../../lib/stateful-stack';
import { StatelessStack } from '../../lib/stateless-stack';
import { ENV } from '../../src/config';
import { FUNCTIONS, type FunctionName } from '../../src/manifest';
import { type InboxIndexStage, TABLE } from '../../src/store/table';
import { testOutdir } from '../support/cdk-outdir';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));
const cdkJsonContext = (JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as { context: Record<string, unknown> }).context;

type Json = Record<string, any>;

function newApp(): App {
  // CDK's built-in CloudFormation schema check costs half a minute per process; `npm run synth` runs it.
  return new App({ context: { ...cdkJsonContext, 'aws:cdk:bundling-stacks': [] }, builtinCloudFormationValidation: false, outdir: testOutdir });
}

/** What one synth deploys: the templates, the table's indexes, and what the functions read and may query. */
interface Synth {
  stateful: Json;
  stateless: Json;
  /** The table's GlobalSecondaryIndexes, by name. */
  gsis: Map<string, Json>;
  /** CONVERSA_INBOX_INDEX of each function (undefined: unset, the code reads gsi1). */
  inboxEnv: Record<FunctionName, string | undefined>;
  /** The inbox index the functions read. */
  reads: string;
  /** The indexes the API function may query. */
  queried: string[];
  /** The indexes the write throttle alarm sums. */
  alarmed: string[];
}

function synth(config: Partial<ConversaAppConfig> = {}): Synth {
  const stacks = buildConversa(newApp(), { projectRoot, ...config });
  const stateful = Template.fromStack(stacks.stateful).toJSON();
  const stateless = Template.fromStack(stacks.stateless).toJSON();
  const resources = Object.entries(stateless.Resources as Json);
  const fn = (name: FunctionName): Json => resources.find(([, r]) => r.Type === 'AWS::Lambda::Function' && r.Properties.Description === FUNCTIONS[name].description)![1];
  const inboxEnv = Object.fromEntries(
    (Object.keys(FUNCTIONS) as FunctionName[]).map((name) => [name, fn(name).Properties.Environment.Variables[ENV.inboxIndex] as string | undefined]),
  ) as Record<FunctionName, string | undefined>;
  const apiRole = fn('api').Properties.Role['Fn::GetAtt'][0] as string;
  const apiPolicies = resources.filter(([, r]) => r.Type === 'AWS::IAM::Policy' && (r.Properties.Roles as Json[]).some((role) => role.Ref === apiRole));
  const queried = [...JSON.stringify(apiPolicies).matchAll(/"\/index\/([^"]+)"/g)].map((m) => m[1]!);
  const writeAlarm = resources.find(([, r]) => r.Type === 'AWS::CloudWatch::Alarm' && JSON.stringify(r.Properties.Metrics ?? []).includes('"WriteThrottleEvents"'))![1];
  const alarmed = (writeAlarm.Properties.Metrics as Json[]).flatMap((m) => (m.MetricStat?.Metric.Dimensions ?? []) as Json[]).filter((d) => d.Name === 'GlobalSecondaryIndexName').map((d) => d.Value as string);
  return {
    stateful,
    stateless,
    gsis: new Map((stateful.Resources.ConversaTable.Properties.GlobalSecondaryIndexes as Json[]).map((g) => [g.IndexName as string, g])),
    inboxEnv,
    reads: inboxEnv.api ?? 'gsi1',
    queried: [...new Set(queried)].sort(),
    alarmed: alarmed.sort(),
  };
}

const INBOX_KEYS = [
  { AttributeName: 'gsi1pk', KeyType: 'HASH' },
  { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
];
const SLIM = { ProjectionType: 'INCLUDE', NonKeyAttributes: ['id', 'channel', 'team', 'labels'] };
const ALL = { ProjectionType: 'ALL' };
/** The functions whose table access takes in the indexes (lib/stateless-stack.ts TABLE_ACCESS). */
const INDEX_READERS: readonly FunctionName[] = ['api', 'realtime', 'inbound', 'outbound', 'engagement'];

/** Each stage: the functions' inbox index, and the table's inbox indexes with their projections. */
const STAGES: readonly [InboxIndexStage, string, Record<string, Json>][] = [
  ['slim', 'gsi1', { gsi1: SLIM }],
  ['all', 'gsi1', { gsi1: ALL }],
  ['migrating', 'gsi1', { gsi1: ALL, gsi1slim: SLIM }],
  ['switched', 'gsi1slim', { gsi1: ALL, gsi1slim: SLIM }],
  ['migrated', 'gsi1slim', { gsi1slim: SLIM }],
];

const fresh = synth();
const synthOf = new Map(STAGES.map(([stage]) => [stage, synth({ inboxIndex: stage })]));
const at = (stage: InboxIndexStage): Synth => synthOf.get(stage)!;

describe('inbox index stages', () => {
  it.each(STAGES)('%s: the functions read %s, the table has its inbox indexes and grants and alarms follow', (stage, reads, inbox) => {
    const { gsis, inboxEnv, queried, alarmed, stateful } = at(stage);
    // The inbox indexes: both on gsi1pk/gsi1sk, the slim one projecting what the inbox filters on.
    const others = TABLE.indexes.filter((index) => index.name !== 'gsi1').map((index) => index.name);
    expect([...gsis.keys()].sort()).toEqual([...Object.keys(inbox), ...others].sort());
    for (const [name, projection] of Object.entries(inbox)) expect(gsis.get(name)).toEqual({ IndexName: name, KeySchema: INBOX_KEYS, Projection: projection });
    // The other indexes are those of a fresh table at every stage.
    for (const name of others) expect(gsis.get(name)).toEqual(fresh.gsis.get(name));
    const attributes = (stateful.Resources.ConversaTable.Properties.AttributeDefinitions as Json[]).map((a) => a.AttributeName as string);
    expect(attributes.filter((a) => a.startsWith('gsi1'))).toEqual(['gsi1pk', 'gsi1sk']);

    // The functions that query indexes read the stage's inbox index; gsi1 is the code's default, left unset.
    for (const name of Object.keys(FUNCTIONS) as FunctionName[]) {
      expect([name, inboxEnv[name]]).toEqual([name, INDEX_READERS.includes(name) && reads !== 'gsi1' ? reads : undefined]);
    }
    // Grants and alarms follow the table's indexes: the new one is queried and alarmed from its first deploy.
    expect(queried).toEqual([...gsis.keys()].sort());
    expect(alarmed).toEqual([...gsis.keys()].sort());
  });

  it('leaves a fresh deployment as it was: slim is the default, and sets no function variable', () => {
    expect(at('slim').stateful).toEqual(fresh.stateful);
    expect(at('slim').stateless).toEqual(fresh.stateless);
    expect(Object.values(fresh.inboxEnv).filter(Boolean)).toEqual([]);
  });

  it('reads inboxIndexAll true as the stage all, as the tables that set it are deployed', () => {
    const old = synth({ inboxIndexAll: true });
    expect(old.stateful).toEqual(at('all').stateful);
    expect(old.stateless).toEqual(at('all').stateless);
    expect(synth({ inboxIndexAll: false }).stateful).toEqual(fresh.stateful);
  });
});

describe('inbox index migration, one cdk deploy --all per step', () => {
  /**
   * What a step from `from` to `to` does wrong: CloudFormation creates or deletes one index per
   * table update and changes none in place; the stateful stack deploys first, so the functions of
   * `from` still run when the table has `to`'s indexes; the functions of `to` must read an index
   * an earlier deploy built (and that the README has checked ACTIVE: a building index refuses queries).
   */
  function faults(from: Synth, to: Synth): string[] {
    const found: string[] = [];
    const created = [...to.gsis.keys()].filter((name) => !from.gsis.has(name));
    const deleted = [...from.gsis.keys()].filter((name) => !to.gsis.has(name));
    if (created.length + deleted.length > 1) found.push(`creates ${created.join(', ') || 'none'} and deletes ${deleted.join(', ') || 'none'} in one table update`);
    for (const [name, gsi] of to.gsis) if (from.gsis.has(name) && JSON.stringify(from.gsis.get(name)) !== JSON.stringify(gsi)) found.push(`changes ${name} in place`);
    if (!to.gsis.has(from.reads)) found.push(`drops ${from.reads} while the running functions read it`);
    if (!from.gsis.has(to.reads)) found.push(`has the functions read ${to.reads}, built in the same deploy`);
    return found;
  }

  it('deploys the stateless stack after the stateful one, which the order of each step relies on', () => {
    const app = newApp();
    buildConversa(app, { projectRoot, inboxIndex: 'switched' });
    expect(app.synth().getStackArtifact('ConversaStateless').dependencies.map((artifact) => artifact.id)).toContain('ConversaStateful');
  });

  it.each([
    ['all', 'migrating'],
    ['migrating', 'switched'],
    ['switched', 'migrated'],
    // And back, the same steps the other way (README, Deploy).
    ['migrated', 'switched'],
    ['switched', 'migrating'],
    ['migrating', 'all'],
  ] as const)('goes from %s to %s with one index created or deleted, never under a running function', (from, to) => {
    expect(faults(at(from), at(to))).toEqual([]);
  });

  it('builds the index in step 1 and moves the functions in step 2, without touching the table again', () => {
    expect(at('switched').stateful).toEqual(at('migrating').stateful);
    // Step 1 moves no function either: they read gsi1 until step 2.
    expect(at('migrating').inboxEnv).toEqual(at('all').inboxEnv);
    // Step 3 moves no function: they read gsi1slim since step 2.
    expect(at('migrated').inboxEnv).toEqual(at('switched').inboxEnv);
  });

  // Why three deploys: each shortcut breaks one of the rules above.
  it.each([
    ['all', 'switched', ['has the functions read gsi1slim, built in the same deploy']],
    ['migrating', 'migrated', ['drops gsi1 while the running functions read it']],
    ['all', 'migrated', ['creates gsi1slim and deletes gsi1 in one table update', 'drops gsi1 while the running functions read it', 'has the functions read gsi1slim, built in the same deploy']],
    ['all', 'slim', ['changes gsi1 in place']],
    ['migrated', 'slim', ['creates gsi1 and deletes gsi1slim in one table update', 'drops gsi1slim while the running functions read it', 'has the functions read gsi1, built in the same deploy']],
  ] as const)('would break going from %s straight to %s', (from, to, expected) => {
    expect(faults(at(from), at(to))).toEqual(expected);
  });
});

describe('inbox index settings that cannot be meant', () => {
  it('refuses an inboxIndexAll that says another stage than inboxIndex', () => {
    expect(() => synth({ inboxIndexAll: true, inboxIndex: 'migrating' })).toThrow('inboxIndexAll true (inboxIndex all) and inboxIndex migrating disagree: set inboxIndex alone');
    expect(() => synth({ inboxIndexAll: false, inboxIndex: 'all' })).toThrow(/inboxIndexAll false \(inboxIndex slim\) and inboxIndex all disagree/);
    expect(() => synth({ inboxIndexAll: true, inboxIndex: 'all' })).not.toThrow();
  });

  it('refuses a stage it does not know', () => {
    expect(() => synth({ inboxIndex: 'done' as InboxIndexStage })).toThrow('inboxIndex must be one of slim, all, migrating, switched, migrated, got done');
  });

  it('refuses functions reading an index the table does not have (stacks put together by hand)', () => {
    const app = newApp();
    const stateful = new StatefulStack(app, 'Stateful', { table: { inboxIndex: 'migrated' } });
    const props = { projectRoot, ...statefulResources(stateful) };
    // The migrated table with functions left at their default, gsi1.
    expect(() => new StatelessStack(app, 'Stateless', { ...props, tableIndexNames: stateful.table.indexNames })).toThrow(
      "inboxIndexName gsi1 is not one of the table's indexes (tableIndexNames: gsi1slim, gsi2, gsi3): the inbox list would fail on every call",
    );
    expect(() => new StatelessStack(app, 'Stateless2', { ...props, inboxIndexName: 'gsi1slim' })).toThrow(/inboxIndexName gsi1slim is not one of the table's indexes \(tableIndexNames: gsi1, gsi2, gsi3\)/);
  });
});
