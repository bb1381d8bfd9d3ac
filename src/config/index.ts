export * from './settings.js';
export { SettingsError, SettingsWarning } from './settings-error.js';
export { loadSettings, parseSettings, parseRedisSpec, normaliseKey } from './load-settings.js';
