// Preloaded (node --import) into a box under test: when the file named by YCH_TEST_CRASH_FILE
// appears, throws from a timer (an uncaught exception) or rejects a promise nobody awaits,
// as its content says. A bug escaping every handler, without a hook in the product.
import { existsSync, readFileSync } from 'node:fs';

const file = process.env.YCH_TEST_CRASH_FILE;
if (file) {
  const poll = setInterval(() => {
    if (!existsSync(file)) return;
    clearInterval(poll);
    const kind = readFileSync(file, 'utf8').trim();
    if (kind === 'rejection') void Promise.reject(new Error('prueba: promesa rechazada sin manejar'));
    else throw new Error('prueba: excepción sin manejar');
  }, 100);
  poll.unref();
}
