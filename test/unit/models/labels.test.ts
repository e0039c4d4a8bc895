import t from 'tap';
import { join } from 'node:path';
import { openDb } from '../../../daemon/db/db.js';
import { FeedbackStore } from '../../../daemon/feedback/store.js';
import { featureVector } from '../../../daemon/models/rate/features.js';
import { BAD_MARGIN, PERSON_WEIGHT, applyLabels, loadLabels, type PersonLabel } from '../../../daemon/models/rate/labels.js';
import { loadDataset, recordEncodes } from '../../../daemon/models/rate/store.js';
import type { EncodeRow } from '../../../daemon/models/rate/sweep.js';
import { predictNet, trainRate } from '../../../daemon/models/rate/train.js';

// A label from a person outweighs a measured one (issue 13 item 3): the rule in rate/labels.ts.

const row = (lesson: string, shot: number, qp: number, value: number, at = 100): EncodeRow => ({
  lesson, shot, cls: 'slide', at,
  features: featureVector({ cls: 'slide', start: 0, end: 5, video: { diff: 0.5, diffP90: 1, ti: 1, si: 30 + shot, edges: 0.05, edgeGrowth: 0 } }, { width: 640, height: 360, fps: 5 }, qp),
  settings: { qp, fps: 5, width: 640, height: 360 }, quality: { metric: 'ocr', value, floor: 0.97 }, bytes: 0,
});
const label = (o: Partial<PersonLabel>): PersonLabel => ({ lesson: 'agua', shot: 0, kind: 'text', answer: 'bad', source: 'student', at: 200, ...o });

t.test('"bad" lowers the target under the floor and weighs the row; "ok" only weighs it', async (t) => {
  const rows = [row('agua', 0, 40, 0.99), row('agua', 1, 40, 0.98), row('agua', 2, 40, 0.98), row('otra', 0, 40, 0.99)];
  const { rows: out, report } = applyLabels(rows, [label({}), label({ shot: 1, answer: 'ok' })]);
  t.equal(out[0]!.quality.value, 0.97 - BAD_MARGIN, 'measured 0.99, a person could not read it: under the floor');
  t.equal(out[0]!.weight, PERSON_WEIGHT);
  t.same([out[1]!.quality.value, out[1]!.weight], [0.98, PERSON_WEIGHT], '"ok" confirms the measure');
  t.equal(out[2]!.weight, undefined, 'a shot nobody spoke of is measured only');
  t.equal(out[3]!.weight, undefined, 'shot 0 of another lesson is another shot');
  t.same(report, { answers: 2, textAnswers: 2, shots: 2, rows: 2, lowered: 1, weight: PERSON_WEIGHT });
  t.equal(rows[0]!.quality.value, 0.99, 'the input rows are not changed');
});

t.test('a teacher beats students; students go by majority; voice and later encodes are left alone', async (t) => {
  const rows = [row('agua', 0, 40, 0.99, 100), row('agua', 0, 34, 1, 300), row('agua', 1, 40, 0.99), row('agua', 2, 40, 0.99)];
  const { rows: out } = applyLabels(rows, [
    label({ answer: 'ok' }), label({ answer: 'ok' }), label({ source: 'teacher' }),
    label({ shot: 1 }), label({ shot: 1, answer: 'ok' }),
    label({ shot: 2, kind: 'voice' }),
  ]);
  t.equal(out[0]!.quality.value, 0.97 - BAD_MARGIN, 'the teacher\'s flag wins over two students\' "yes"');
  t.same([out[1]!.quality.value, out[1]!.weight], [1, undefined], 'the re-encode recorded after the labels is measured afresh');
  t.same([out[2]!.quality.value, out[2]!.weight], [0.99, PERSON_WEIGHT], 'one "no" and one "yes": not bad, but a person looked');
  t.equal(out[3]!.weight, undefined, 'a voice answer does not touch the picture model');
});

t.test('labels come from the feedback table and rows carry when they were recorded', async (t) => {
  const db = openDb(join(t.testdir(), 'y.db'));
  t.teardown(() => db.close());
  recordEncodes(db, [row('agua', 0, 40, 0.99)]);
  new FeedbackStore(db).record([{ lesson: 'agua', version: 1, shot: 0, rendition: 'v0', kind: 'text', answer: 'bad', source: 'teacher', at: Date.now() + 1 }]);
  t.equal(loadDataset(db)[0]!.at, undefined, 'plain rows as before');
  const rows = loadDataset(db, { at: true });
  t.ok(typeof rows[0]!.at === 'number' && rows[0]!.at > 0, 'created_at read back');
  const { rows: out } = applyLabels(rows, loadLabels(db));
  t.same([out[0]!.quality.value, out[0]!.weight], [0.97 - BAD_MARGIN, PERSON_WEIGHT]);
});

t.test('training reads the weights: a weighted "bad" row pulls the prediction down more', async (t) => {
  // the same 12 rows twice: once measured only, once with shot 0 at QP 40 labelled "bad"
  const base: EncodeRow[] = [];
  for (const lesson of ['a-es-1', 'b-es-2']) for (let shot = 0; shot < 3; shot++) for (const qp of [30, 40]) base.push(row(lesson, shot, qp, qp === 30 ? 1 : 0.99));
  const labels = [label({ lesson: 'a-es-1', shot: 0, at: 1000 })];
  const { rows: labelled } = applyLabels(base, labels);
  const bare = base.map((r) => (r.lesson === 'a-es-1' && r.shot === 0 && r.settings.qp === 40 ? { ...r, quality: { ...r.quality, value: 0.97 - BAD_MARGIN } } : r));
  const probe = [labelled.find((r) => r.lesson === 'a-es-1' && r.shot === 0 && r.settings.qp === 40)!.features];
  const unweighted = await trainRate(bare, { epochs: 40, seed: 2 });
  const weighted = await trainRate(labelled, { epochs: 40, seed: 2 });
  t.teardown(() => { unweighted.dispose(); weighted.dispose(); });
  const pu = predictNet(unweighted.net, probe)[0]!;
  const pw = predictNet(weighted.net, probe)[0]!;
  t.ok(pw < pu, `same lowered target, weight ${PERSON_WEIGHT} vs 1: prediction ${pw.toFixed(4)} < ${pu.toFixed(4)}`);
});
