// Library entry point: `import { ping, enqueuePing, loadSettings, createDaemon } from 'rhopush'`.
export { loadSettings, parseSettings, SettingsError, sourcePolicy } from './config/index.js';
export type { Settings, SourcePolicy, RedisEndpoint } from './config/index.js';
export { createDaemon, Daemon, type DaemonOptions, type StopOptions } from './daemon.js';
export { Metrics, type JobOutcome } from './metrics.js';
export { runDoctor, formatDoctorReport, type DoctorReport, type DoctorCheck } from './doctor.js';
export { PingJob, PingError, type PingResult, type PingTrigger } from './ping/ping-job.js';
export { normalizePingParams, PingParamsError, type PingParams, type NormalizedPing } from './ping/ping-params.js';
export { ping, enqueuePing, type PingOptions, type EnqueueOptions } from './library.js';
export { enqueuePingJob, resqueKeys, PING_JOB_CLASS, type EnqueuedPing, type ResqueJob, type ResqueFailure } from './queue/resque-queue.js';
export { ResqueWorker, workerKeys, type ResqueWorkerOptions } from './queue/resque-worker.js';
export type { PushAdapters } from './push/registry.js';
export { classifyKeyspaceEvent, ChangeClassifier, type KeyspaceDecision } from './rules/classify.js';
export { SIGNAL_RULES, DECISION_RULES } from './rules/signal-rules.js';
export { CoalescingWindow, type ChangeGroup } from './coalesce/coalescing-window.js';
export { parseKey } from './store/keys.js';
export type { DevicePushResult, PushAdapter, Platform } from './push/adapter.js';
// Delivery: dead-token feedback for backends.
export { FEEDBACK_STREAM, readFeedback, type FeedbackEntry } from './push/feedback.js';
