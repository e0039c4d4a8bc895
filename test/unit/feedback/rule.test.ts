import t from 'tap';
import { boostSpans, shotsIn, triggered, type Answer } from '../../../daemon/feedback/rule.js';

// When what people said re-encodes a shot (issue 13 item 3).

const no = (shot: number, source: Answer['source'] = 'student', kind: Answer['kind'] = 'text'): Answer => ({ shot, kind, answer: 'bad', source });
const yes = (shot: number, kind: Answer['kind'] = 'text'): Answer => ({ shot, kind, answer: 'ok', source: 'student' });
const rule = { studentBadPerShot: 3 };

t.test('students: the configured number of "no" on one shot, and more "no" than "yes"', async (t) => {
  t.same(triggered([no(1), no(1)], rule), [], 'two are not enough');
  t.same(triggered([no(1), no(1), no(1)], rule), [{ shot: 1, kind: 'text', because: 'students' }], 'three are');
  t.same(triggered([no(1), no(1), no(1), yes(1), yes(1), yes(1)], rule), [], 'as many "yes" cancel them');
  t.same(triggered([no(1), no(1), no(2), no(2), no(3)], rule), [], 'spread over shots: no shot has three');
  t.same(triggered([no(1, 'student', 'voice'), no(1), no(1, 'student', 'voice'), no(1)], rule), [], 'text and voice are counted apart');
  t.same(triggered([no(1), no(1)], { studentBadPerShot: 2 }), [{ shot: 1, kind: 'text', because: 'students' }], 'the rule is a config value');
});

t.test('a teacher flag is enough on its own, whatever students said', async (t) => {
  t.same(triggered([no(4, 'teacher', 'voice')], rule), [{ shot: 4, kind: 'voice', because: 'teacher' }]);
  t.same(triggered([yes(4), yes(4), no(4, 'teacher')], rule), [{ shot: 4, kind: 'text', because: 'teacher' }]);
  t.same(triggered([no(2, 'teacher'), no(0), no(0), no(0)], rule).map((x) => x.shot), [0, 2], 'sorted by shot');
});

const shots = [{ index: 0, start: 0, end: 4 }, { index: 1, start: 4, end: 9.5 }, { index: 2, start: 9.5, end: 12 }];

t.test('a span names the shots it overlaps, not those it only touches', async (t) => {
  t.same(shotsIn(shots, 4, 9.5), [1]);
  t.same(shotsIn(shots, 3, 5), [0, 1]);
  t.same(shotsIn(shots, 0, 100), [0, 1, 2]);
  t.same(shotsIn(shots, 5, 5), [1], 'a point names its shot');
  t.same(shotsIn(shots, 20, 30), [], 'past the end: none');
});

t.test('boost spans: text → the shot\'s picture, voice → speech; once each', async (t) => {
  t.same(boostSpans(shots, [{ shot: 1, kind: 'text' }, { shot: 1, kind: 'text' }, { shot: 2, kind: 'voice' }, { shot: 7, kind: 'text' }]), [
    { start: 4, end: 9.5, kind: 'text' },
    { start: 9.5, end: 12, kind: 'speech' },
  ]);
});
