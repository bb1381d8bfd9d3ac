export * from '../../src/kit/rhoconnect-writes.js';
