import { createInterface } from 'node:readline';
import { dataPaths } from '../paths.js';
import { openDb } from '../db/db.js';
import { Users } from './users.js';
import type { Role } from './users.js';
import { YachayError } from '../errors.js';

/**
 * `yachay users add|list|remove`: how the first admin and the teachers get accounts. There are
 * no default passwords: the password is typed (not echoed) or read from stdin for scripts.
 */
async function readPassword(prompt: string): Promise<string> {
  const input = process.stdin;
  if (!input.isTTY) {
    const rl = createInterface({ input });
    for await (const line of rl) { rl.close(); return line.trim(); }
    throw new YachayError('YCH_ERR_USAGE', 'no password on stdin');
  }
  process.stderr.write(prompt);
  return new Promise((resolve) => {
    let pw = '';
    input.setRawMode(true);
    input.resume();
    const onData = (buf: Buffer): void => {
      for (const ch of buf.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          input.setRawMode(false); input.pause(); input.off('data', onData);
          process.stderr.write('\n');
          resolve(pw);
          return;
        }
        if (ch === '\u0003') process.exit(130);
        if (ch === '\u007f') pw = pw.slice(0, -1); else pw += ch;
      }
    };
    input.on('data', onData);
  });
}

export async function usersCommand(dataDir: string, args: string[], role: string | undefined): Promise<number> {
  const [verb, username] = args;
  const db = openDb(dataPaths(dataDir).db);
  try {
    const users = new Users(db);
    switch (verb) {
      case 'add': {
        if (!username) throw new YachayError('YCH_ERR_USAGE', 'usage: yachay users add <username> [--role admin|teacher|device]');
        const r = (role ?? 'teacher') as Role;
        if (!['admin', 'teacher', 'device'].includes(r)) throw new YachayError('YCH_ERR_USAGE', `--role must be admin, teacher or device (got ${r})`);
        const pw = await readPassword(`Contraseña para / password for ${username}: `);
        await users.add(username, pw, r);
        process.stdout.write(`${username} (${r}) ok\n`);
        return 0;
      }
      case 'list':
        for (const u of users.list()) process.stdout.write(`${u.username}\t${u.role}\t${new Date(u.createdAt).toISOString()}\n`);
        return 0;
      case 'remove':
        if (!username) throw new YachayError('YCH_ERR_USAGE', 'usage: yachay users remove <username>');
        if (!users.remove(username)) throw new YachayError('YCH_ERR_USAGE', `no user ${username}`);
        process.stdout.write(`${username} removed\n`);
        return 0;
      default:
        throw new YachayError('YCH_ERR_USAGE', 'usage: yachay users add|list|remove …');
    }
  } finally {
    db.close();
  }
}
