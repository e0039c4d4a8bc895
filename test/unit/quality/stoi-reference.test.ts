import t from 'tap';
import { stoi, STOI_FS } from '../../../daemon/quality/stoi.js';
import { FS, cases, cleanSignal } from '../../helpers/stoi-signals.js';

// issue 10, item 14: our STOI against an independent implementation on fixed signals. The
// expected values are the referee's (../shared/eval/lib/stoi.py, a numpy port of the authors'
// MATLAB code, written by other people than stoi.ts), computed once on exactly these samples:
//   npx tsx -e "…write cases() as float64 files…" && python3 -c "from stoi import stoi; …"
// (test/helpers/stoi-signals.ts makes the signals; its generator is seeded, so they never change)
const REFEREE: Record<string, number> = {
  identical: 0.9999999999999996,
  'noise+5dB': 0.9281491831286761,
  'noise-5dB': 0.7824350200496403,
  lowpass800: 0.9998223162797756,
  reverb: 0.9098775525816112,
  quantized4: 0.9464507634205853,
};

t.test('STOI matches the referee\'s independent implementation on fixed signals', async (t) => {
  t.equal(FS, STOI_FS);
  const clean = Float32Array.from(cleanSignal());
  for (const [name, degraded] of Object.entries(cases())) {
    const ours = stoi(clean, Float32Array.from(degraded), FS);
    t.ok(Math.abs(ours - REFEREE[name]!) < 0.002, `${name}: ours ${ours.toFixed(4)}, referee ${REFEREE[name]!.toFixed(4)}`);
  }
});
