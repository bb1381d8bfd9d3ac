export * from '../../src/testing/rhoconnect-writes.js';
