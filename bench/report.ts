/** The printed table, and the targets checked against the figures (informational only). */
import type { BundleResult } from './bundles';
import type { CostModel } from './cost';
import type { AckResult, ThroughputResult } from './measure';
import type { LatencySummary } from './stats';

export interface Results {
  at: string;
  quick: boolean;
  webhookAck: AckResult;
  webhookAckWhileConsuming: AckResult;
  webhookAckIsolated: AckResult;
  endToEnd: LatencySummary;
  endToEndFirstMessage: LatencySummary;
  agentReply: LatencySummary;
  visitorToAgent: LatencySummary;
  throughput: ThroughputResult;
  dynamodb: { wruPerInbound: number; rruPerInbound: number; wruPerOutbound: number; rruPerOutbound: number; wruPerFirstInbound: number; rruPerFirstInbound: number; wruPerInboundGrown: number; rruPerInboundGrown: number; wruPerOutboundGrown: number; rruPerOutboundGrown: number };
  bundles: BundleResult[];
  costUsdPerMillionMessages: CostModel;
  costUsdPerMillionMessagesWithReceipts: CostModel;
  machine: { node: string; seconds: number };
}

const MAX_BUNDLE_BYTES = 1.5 * 1024 * 1024;

interface Target {
  name: string;
  pass: boolean;
  detail: string;
}

export function targets(r: Results): Target[] {
  const largest = r.bundles.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  const slowest = r.bundles.reduce((a, b) => (b.initMs > a.initMs ? b : a));
  const ack = (a: AckResult) => {
    const ratio = a.p50Ms / a.floorP50Ms;
    const detail = `${a.p50Ms} ms vs floor ${a.floorP50Ms} ms (${ratio.toFixed(1)}x; a bare two-exchange chain: ${(a.chainP50Ms / a.chainFloorP50Ms).toFixed(1)}x)`;
    return { pass: ratio <= 3, detail };
  };
  return [
    { name: 'ack p50 within 3x floor', ...ack(r.webhookAck) },
    { name: '  the same, webhook alone (as deployed)', ...ack(r.webhookAckIsolated) },
    { name: 'end-to-end p50 < 100 ms', pass: r.endToEnd.p50Ms < 100, detail: `${r.endToEnd.p50Ms} ms` },
    { name: '<= 4 WRU per inbound', pass: r.dynamodb.wruPerInbound <= 4, detail: `${r.dynamodb.wruPerInbound} WRU` },
    { name: '<= 4 RRU per inbound', pass: r.dynamodb.rruPerInbound <= 4, detail: `${r.dynamodb.rruPerInbound} RRU` },
    { name: 'bundles < 1.5 MB', pass: largest.bytes < MAX_BUNDLE_BYTES, detail: `largest ${largest.name} ${(largest.bytes / 1024).toFixed(0)} KiB` },
    { name: 'cold load < 400 ms', pass: slowest.initMs < 400, detail: `slowest ${slowest.name} ${slowest.initMs} ms` },
    { name: '< $8 per million messages', pass: r.costUsdPerMillionMessages.total < 8, detail: `$${r.costUsdPerMillionMessages.total}` },
    {
      name: 'nothing lost or duplicated',
      pass: r.throughput.lost === 0 && r.throughput.duplicated === 0 && r.throughput.outOfOrder === 0,
      detail: `lost ${r.throughput.lost}, duplicated ${r.throughput.duplicated}, out of order ${r.throughput.outOfOrder}`,
    },
  ];
}

function table(rows: (string | number)[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => String(row[c]).length)));
  return rows.map((row) => row.map((cell, c) => String(cell).padEnd(widths[c]!)).join('  ')).join('\n');
}

export function printReport(r: Results): void {
  const lat = (name: string, s: LatencySummary, extra = '') => [name, s.n, s.p50Ms, s.p99Ms, extra];
  const ackRows = (name: string, a: AckResult, conditions: string) => [
    lat(name, a),
    ['  floor (bare node:http)', a.n, a.floorP50Ms, a.floorP99Ms, conditions],
    ['  bare two-exchange chain', a.n, a.chainP50Ms, a.chainP99Ms, `own pass, its floor ${a.chainFloorP50Ms} ms`],
  ];
  console.log(`\nConversa bench ${r.quick ? '(quick) ' : ''}${r.at}, node ${r.machine.node}, ${r.machine.seconds} s\n`);
  console.log(
    table([
      ['latency', 'n', 'p50 ms', 'p99 ms', ''],
      ...ackRows('webhook ack', r.webhookAck, 'interleaved, consumers idle'),
      ...ackRows('webhook ack, webhook alone', r.webhookAckIsolated, 'interleaved, own process'),
      ...ackRows('webhook ack, consumers busy', r.webhookAckWhileConsuming, 'interleaved, same event loop'),
      lat('end to end (webhook → agent WS)', r.endToEnd, 'existing conversation'),
      lat('  first message', r.endToEndFirstMessage, 'creates contact + conversation'),
      lat('agent reply (POST → visitor WS)', r.agentReply),
      lat('visitor → agent (WS → agent WS)', r.visitorToAgent),
    ]),
  );
  const t = r.throughput;
  console.log(`\nthroughput: ${t.messages} messages from ${t.senders} senders in ${t.seconds} s = ${t.perSecond}/s; lost ${t.lost}, duplicated ${t.duplicated}, out of order ${t.outOfOrder}`);
  const d = r.dynamodb;
  console.log(`dynamodb per message: inbound ${d.wruPerInbound} WRU / ${d.rruPerInbound} RRU (first of a conversation ${d.wruPerFirstInbound} / ${d.rruPerFirstInbound}), outbound ${d.wruPerOutbound} WRU / ${d.rruPerOutbound} RRU`);
  console.log(`  on a conversation past 1 KB: inbound ${d.wruPerInboundGrown} WRU / ${d.rruPerInboundGrown} RRU, outbound ${d.wruPerOutboundGrown} WRU / ${d.rruPerOutboundGrown} RRU\n`);
  console.log(table([['bundle', 'KiB', 'cold load ms'], ...r.bundles.map((b) => [b.name, (b.bytes / 1024).toFixed(0), b.initMs])]));
  const c = r.costUsdPerMillionMessages;
  console.log(`\ncost per million messages: $${c.total} (prices ${c.region}, ${c.pricesAsOf})`);
  console.log(table(Object.entries(c.breakdown).map(([k, v]) => [`  ${k}`, `$${v.toFixed(3)}`])));
  const w = r.costUsdPerMillionMessagesWithReceipts;
  const grew = Object.entries(w.breakdown).filter(([k, v]) => v !== c.breakdown[k]).map(([k, v]) => `${k} $${v.toFixed(2)}`);
  console.log(`with WhatsApp's three receipts per reply (sent, delivered, read): $${w.total} (${grew.join(', ')})`);
  console.log('\ntargets (informational):');
  console.log(table(targets(r).map((x) => [x.pass ? 'PASS' : 'FAIL', x.name, x.detail])));
}
