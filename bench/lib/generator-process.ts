// Load generator in its own process, so the process being measured only consumes.
// Usage: node --import tsx bench/lib/generator-process.ts <port> <users> <sources> <calls>
import { Redis } from 'ioredis';
import { pluginWriteBurst } from './plugin-writes.js';

const [port, users, sources, calls] = process.argv.slice(2).map(Number) as [number, number, number, number];
const redis = new Redis(port, '127.0.0.1');
const ms = await pluginWriteBurst(redis, users, sources, calls);
redis.disconnect();
process.stdout.write(JSON.stringify({ calls, ms }) + '\n');
