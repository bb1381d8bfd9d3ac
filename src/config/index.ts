export * from './settings.js';
export { SettingsError } from './settings-error.js';
export { loadSettings, parseSettings, parseRedisSpec, normaliseKey } from './load-settings.js';
