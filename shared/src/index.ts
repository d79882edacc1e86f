export * from './routing-key.js';
export * from './json.js';
export * from './protocol.js';
