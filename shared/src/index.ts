export * from './routing-key.js';
export * from './json.js';
export * from './protocol.js';
export * from './typed-topics.js';
