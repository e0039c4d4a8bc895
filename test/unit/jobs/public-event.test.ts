import t from 'tap';
import { publicJobEvent } from '../../../daemon/jobs/public-event.js';

t.test('job errors reach teachers without the box\'s folders', async (t) => {
  const e = publicJobEvent({ type: 'job', id: 3, kind: 'optimize', state: 'dead', lessonId: 'agua',
    error: "YCH_ERR_INPUT_CORRUPT: /var/lib/yachay/sources/9f2c.mp4: moov atom not found (ffmpeg -i '/var/lib/yachay/sources/9f2c.mp4')" });
  t.equal(e.error, "YCH_ERR_INPUT_CORRUPT: 9f2c.mp4: moov atom not found (ffmpeg -i '9f2c.mp4')");
  t.notMatch(e.error!, /yachay\//);
  const ok = { type: 'job' as const, id: 1, kind: 'optimize', state: 'leased' as const, progress: 0.5 };
  t.equal(publicJobEvent(ok), ok, 'an event without an error is unchanged');
});
