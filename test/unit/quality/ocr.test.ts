import t from 'tap';
import { inflateSync } from 'node:zlib';
import { encodeGrayPng, ocrRatio, wordAccuracy, wordCount, wordRecall, words } from '../../../daemon/quality/ocr.js';

// Text scoring used on OCR output: pure functions, no tesseract needed.

t.test('words: NFKC, lower case, letter runs and digit runs, accents kept', async (t) => {
  t.same(words('Área del Círculo: A = π·r²'), ['área', 'del', 'círculo', 'a', 'π', 'r', '2']);
  t.same(words('x2+3y=10, ¿sí?'), ['x', '2', '3', 'y', '10', 'sí']);
  t.same(words('ﬁnal ＡＢＣ'), ['final', 'abc'], 'ligature and full-width folded by NFKC');
  // decomposed accent (e + combining acute) equals the composed one
  t.same(words('cafe\u0301'), words('café'));
  t.equal(wordCount('  — 1.5 kg —  '), 3);
  t.equal(wordCount(''), 0);
});

t.test('wordAccuracy', async (t) => {
  t.equal(wordAccuracy('la fuerza es masa', 'la fuerza es masa'), 1, 'identical');
  t.equal(wordAccuracy('la fuerza es masa', 'la fuerza es mesa'), 0.75, 'one substitution in 4 words');
  t.equal(wordAccuracy('la fuerza es masa', 'la fuerza masa'), 0.75, 'one deletion');
  t.equal(wordAccuracy('la fuerza es masa', 'la gran fuerza es masa'), 0.75, 'one insertion');
  t.equal(wordAccuracy('año académico', 'ano academico'), 0, 'accents count');
  t.equal(wordAccuracy('Año, académico!', 'año académico'), 1, 'punctuation and case ignored');
  t.equal(wordAccuracy('uno dos', 'tres cuatro cinco seis siete'), 0, 'clamped at 0');
  t.equal(wordAccuracy('', ''), 1);
  t.equal(wordAccuracy('', 'ruido'), 0);
  t.equal(wordAccuracy('E = mc²', 'E = mc2'), 1, 'superscript two is the digit 2 after NFKC');
});

t.test('ocrRatio takes the source reading as reference', async (t) => {
  t.equal(ocrRatio('Teorema de Pitágoras\na² + b² = c²', 'Teorema de Pitagoras\na2 + b2 = c2'), 8 / 9);
  t.equal(ocrRatio('', 'anything'), 1, 'nothing legible on the source: nothing lost');
  t.equal(ocrRatio('dos palabras', ''), 0);
});

t.test('encodeGrayPng writes a valid greyscale PNG', async (t) => {
  const w = 5; const h = 3;
  const px = Uint8Array.from({ length: w * h }, (_, i) => i * 10);
  const png = encodeGrayPng(px, w, h);
  t.same([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  t.equal(png.readUInt32BE(16), w);
  t.equal(png.readUInt32BE(20), h);
  const idatLen = png.readUInt32BE(33);
  t.equal(png.toString('ascii', 37, 41), 'IDAT');
  const raw = inflateSync(png.subarray(41, 41 + idatLen));
  t.equal(raw.length, (w + 1) * h);
  t.same([...raw.subarray(w + 2, 2 * w + 2)], [...px.subarray(w, 2 * w)], 'second row intact');
  // every PNG ends with the same IEND chunk, whose CRC is the well-known AE 42 60 82
  t.same([...png.subarray(-12)], [0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);
});

t.test('word recall ignores the order blocks were read in, counts repeats and misreads', async (t) => {
  const page = 'Main Page Modules Classes\nInstallation in Linux\nQuick start';
  const reordered = 'Installation in Linux\nQuick start\nMain Page Modules Classes';
  t.ok(wordAccuracy(page, reordered) < 0.6, 'the ordered measure punishes another reading order');
  t.equal(wordRecall(page, reordered), 1, 'every word is still read');
  t.equal(wordRecall('the the cat', 'the cat'), 2 / 3, 'a word read once counts once');
  t.equal(wordRecall('quick start', 'qu1ck start'), 0.5, 'a misread word is lost');
  t.equal(wordRecall('', 'anything'), 1, 'nothing to read on the source: nothing lost');
});
