// Library entry point: `import { ping, enqueuePing, loadSettings, createDaemon } from 'rhopush'`.
export { loadSettings, parseSettings, SettingsError, sourcePolicy } from './config/index.js';
export type { Settings, SourcePolicy, RedisEndpoint } from './config/index.js';
export { createDaemon, Daemon, type DaemonOptions } from './daemon.js';
export { PingJob, PingError, type PingResult, type PingTrigger } from './ping/ping-job.js';
export { normalizePingParams, PingParamsError, type PingParams, type NormalizedPing } from './ping/ping-params.js';
export { classifyKeyspaceEvent, ChangeClassifier, type KeyspaceDecision } from './capture/classify.js';
export { SIGNAL_RULES, DECISION_RULES } from './capture/signal-rules.js';
export { CoalescingWindow, type ChangeGroup } from './coalesce/coalescing-window.js';
export { parseKey } from './store/keys.js';
export type { DevicePushResult, PushAdapter, Platform } from './push/adapter.js';
export { replayFiles, replayFixture, type ReplayResult } from './replay/replay.js';
// Delivery: dead-token feedback for backends.
export { FEEDBACK_STREAM, readFeedback, type FeedbackEntry } from './push/feedback.js';
