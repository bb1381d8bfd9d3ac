import { describe, expect, it } from 'vitest';
import { keyspacePatterns, parseKey } from '../src/store/keys.js';

describe("RhoConnect's key grammar", () => {
  it('parses master document counts, including odd logins', () => {
    expect(parseKey('source:application:alice:Product:md_size')).toEqual({ kind: 'md_size', partition: 'alice', source: 'Product' });
    expect(parseKey('source:application:a:b:c:Product:md_size')).toEqual({ kind: 'md_size', partition: 'a:b:c', source: 'Product' });
    expect(parseKey('source:application:Jean Dupont:Note:md_size')).toEqual({ kind: 'md_size', partition: 'Jean Dupont', source: 'Note' });
    expect(parseKey('source:application:zoë✓用户:Contact:md_size')).toEqual({ kind: 'md_size', partition: 'zoë✓用户', source: 'Contact' });
    expect(parseKey('source:application:__shared__:Catalog:md_size')).toEqual({
      kind: 'md_size',
      partition: '__shared__',
      source: 'Catalog',
    });
    expect(parseKey('source:application:md_size:Product:md_size')).toEqual({ kind: 'md_size', partition: 'md_size', source: 'Product' });
  });

  it('parses client document counts with logins that contain colons', () => {
    expect(parseKey('client:application:alice:0c63:Product:cd_size')).toEqual({
      kind: 'cd_size',
      user: 'alice',
      clientId: '0c63',
      source: 'Product',
    });
    expect(parseKey('client:application:x:y:abc123:Product:cd_size')).toEqual({
      kind: 'cd_size',
      user: 'x:y',
      clientId: 'abc123',
      source: 'Product',
    });
  });

  it('treats unrelated and malformed keys as other, never throwing', () => {
    for (const key of [
      '',
      'md_size',
      'source:application:md_size',
      'source:application::md_size',
      'source:application:alice::md_size',
      'source:application:alice:Product:md:35',
      'source:application:alice:Product:mda55d386a30514dbb4dcd389114964127:indices',
      'source:otherapp:alice:Product:md_size',
      'lock:source:application:alice:Product:md',
      'client:application:alice:Product:cd_size',
      'client:application::c1:Product:cd_size',
      'client:1234:last_sync',
      'myapp:session:alice',
      'rhopush:canary:',
    ]) {
      expect(parseKey(key), key).toEqual({ kind: 'other' });
    }
    expect(parseKey('rhopush:canary:abc')).toEqual({ kind: 'canary', id: 'abc' });
  });

  it("parses shared CUD queues and their clients' entries", () => {
    const cid = 'f726a47f01d58cb5ec3e28978f2ce94e';
    expect(parseKey('source:application:Product:create')).toEqual({
      kind: 'cud_queue',
      queue: 'source:application:Product:create',
      source: 'Product',
      op: 'create',
    });
    expect(parseKey('source:application:Product:delete:qk1')).toEqual({
      kind: 'cud_queue',
      queue: 'source:application:Product:delete:qk1',
      source: 'Product',
      op: 'delete',
    });
    expect(parseKey(`source:application:Product:create:1:${cid}:Product:0:indices`)).toEqual({
      kind: 'cud_entry',
      queue: 'source:application:Product:create',
      source: 'Product',
      op: 'create',
      clientId: cid,
    });
    expect(parseKey(`source:application:Contact:delete:qk:7:${cid}:Contact:0:indices`)).toMatchObject({
      kind: 'cud_entry',
      queue: 'source:application:Contact:delete:qk',
      clientId: cid,
    });
    for (const key of [
      `source:application:Product:create:1:${cid}:Product:0:10`, // an entry's bucket
      `source:application:Product:create:1:${cid}:Contact:0:indices`, // entry of another source
      'source:application:Product:update', // updates move no counts
      'source:application:alice:Product:md:indices',
      'source:application:Product:create:indices',
    ]) {
      expect(parseKey(key), key).toEqual({ kind: 'other' });
    }
  });

  it('subscribes only to the patterns it needs, in the configured database', () => {
    expect(keyspacePatterns(3)).toEqual([
      '__keyspace@3__:source:application:*:md_size',
      '__keyspace@3__:client:application:*:cd_size',
      '__keyspace@3__:source:application:*:create*',
      '__keyspace@3__:source:application:*:delete*',
      '__keyspace@3__:rhopush:canary:*',
    ]);
  });
});
