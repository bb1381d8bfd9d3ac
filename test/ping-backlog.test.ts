// Automatic pings waiting for a slot: in order, one per user, later groups joining the waiting one;
// and the limiter that bounds pings running at once keeps its order through a large queue.
import { describe, expect, it } from 'vitest';
import { PingBacklog } from '../src/coalesce/ping-backlog.js';
import { Limiter } from '../src/util/limiter.js';

const group = (user: string, sources: string[], firstAt = 1000, changes = sources.length, trigger: 'auto' | 'catch-up' = 'auto') => ({
  user,
  sources,
  firstAt,
  changes,
  trigger,
});

describe('PingBacklog', () => {
  it('hands groups out in the order they came, each once', () => {
    const backlog = new PingBacklog();
    expect(backlog.add(group('alice', ['Product']))).toBe(true);
    expect(backlog.add(group('bob', ['Contact']))).toBe(true);
    expect(backlog.size).toBe(2);
    expect(backlog.take()).toMatchObject({ user: 'alice', sources: ['Product'] });
    expect(backlog.take()).toMatchObject({ user: 'bob', sources: ['Contact'] });
    expect(backlog.take()).toBeUndefined();
    expect(backlog.size).toBe(0);
  });

  it('a waiting catch-up group that a live one joins becomes an ordinary automatic ping', () => {
    const backlog = new PingBacklog();
    backlog.add(group('alice', ['Product'], 1000, 1, 'catch-up'));
    backlog.add(group('bob', ['Product'], 1000, 1, 'catch-up'));
    backlog.add(group('bob', ['Contact'], 1100, 1, 'catch-up'));
    backlog.add(group('alice', ['Contact'], 1100, 1, 'auto'));
    expect(backlog.take()).toMatchObject({ user: 'alice', trigger: 'auto' });
    expect(backlog.take()).toMatchObject({ user: 'bob', trigger: 'catch-up' });
  });

  it("a user's later group joins the waiting one: every source, earliest first change, changes summed", () => {
    const backlog = new PingBacklog();
    backlog.add(group('alice', ['Product'], 1000, 2));
    backlog.add(group('bob', ['Contact'], 1100));
    expect(backlog.add(group('alice', ['Contact', 'Product'], 900, 3))).toBe(false);
    expect(backlog.size).toBe(2);
    expect(backlog.take()).toEqual({ user: 'alice', sources: ['Product', 'Contact'], firstAt: 900, changes: 5, trigger: 'auto' });
    // Once taken (its ping started), the user's next group waits on its own again.
    expect(backlog.add(group('alice', ['Order']))).toBe(true);
    expect(backlog.take()).toMatchObject({ user: 'bob' });
    expect(backlog.take()).toMatchObject({ user: 'alice', sources: ['Order'] });
  });

  it('does not share the caller’s sources array', () => {
    const backlog = new PingBacklog();
    const sources = ['Product'];
    backlog.add(group('alice', sources));
    backlog.add(group('alice', ['Contact']));
    expect(sources).toEqual(['Product']);
  });

  it('keeps order across 50,000 users taken while others arrive', () => {
    const backlog = new PingBacklog();
    const taken: string[] = [];
    for (let i = 0; i < 50_000; i++) {
      backlog.add(group(`u${i}`, ['S']));
      if (i % 3 === 0) taken.push(backlog.take()!.user);
    }
    for (let g = backlog.take(); g; g = backlog.take()) taken.push(g.user);
    expect(taken).toEqual(Array.from({ length: 50_000 }, (_, i) => `u${i}`));
  });
});

describe('Limiter', () => {
  it('runs at most `concurrency` tasks at once and the rest in order, through a long queue', async () => {
    const limiter = new Limiter(3);
    let running = 0;
    let most = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 5000 }, (_, i) =>
        limiter.run(async () => {
          running += 1;
          most = Math.max(most, running);
          await Promise.resolve();
          order.push(i);
          running -= 1;
        }),
      ),
    );
    expect(most).toBe(3);
    expect(order).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    expect(limiter.running).toBe(0);
    expect(limiter.waiting).toBe(0);
  });

  it('a failing task frees its slot', async () => {
    const limiter = new Limiter(1);
    await expect(limiter.run(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await limiter.run(async () => 42)).toBe(42);
  });
});
