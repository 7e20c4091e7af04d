//! Sync jobs: stored in the database, claimed with a lease and kept alive by a heartbeat, so that
//! at most one job is queued or running per installation — across every server instance on one
//! PostgreSQL — and a job whose worker died is taken over once its lease expires.
//!
//! The guarantee "at most one active job" is the unique index on `sync_jobs.active_slot`
//! (1 while queued or running, NULL otherwise): the database refuses a second one, without races.
//!
//! - [`model`]: the job, its progress, error and changes as stored and as callers see them.
//! - [`store`]: queueing (the unique active slot), reading, cancelling and waiting for jobs.
//! - [`worker`]: this instance's worker: claims a job with a lease, keeps the lease alive with a
//!   heartbeat, runs the job and records its end. The schedule that queues jobs is the sync
//!   engine's ([`crate::sync::schedule`]).

mod model;
mod store;
mod worker;

pub use model::{Job, JobErrorBody, Kind, NewJob, Phase, Progress, Status, StoredChange, Trigger};
pub use store::{cancel, changes, enqueue, get, list, start, wait};
pub use worker::{JobControl, JobRunner, Outcome, StopSignal, Worker};
