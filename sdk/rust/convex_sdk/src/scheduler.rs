//! [`Scheduler`]: run a mutation or an action later.
//!
//! Two host calls (ABI §3): `__convex_schedule` with an absolute time
//! (`{"path", "args", "atMs"}`) and `__convex_schedule_cancel` (`{"id"}`).
//! [`Scheduler::run_after`] turns a delay into an absolute time with
//! [`now_ms`](crate::now_ms), which is frozen in a mutation, so a mutation
//! schedules deterministically.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::action::args_object;
use crate::document::DocumentId;
use crate::error::{ConvexError, ErrorCode};
use crate::rt::{Context, Kind};
use crate::sys::{self, imports};
use crate::value::Value;

/// Schedules functions to run later: from a mutation (the job is created
/// only if the mutation commits) or from an action.
///
/// Take it as a parameter of a `#[mutation]` or `#[action]` (type
/// `Scheduler`, next to `db: Database` or `ctx: ActionCtx`), or get it
/// with [`ActionCtx::scheduler`](crate::ActionCtx::scheduler). Queries
/// cannot schedule.
///
/// ```no_run
/// use convex_sdk::*;
/// use std::time::Duration;
///
/// #[mutation]
/// async fn send_later(db: Database, scheduler: Scheduler, to: String) -> Result<DocumentId, ConvexError> {
///     let id = db.insert("outbox", json!({ "to": to.clone() })).await?;
///     scheduler.run_after(Duration::from_secs(60), "mail:send", json!({ "id": id.clone() })).await?;
///     Ok(id)
/// }
/// ```
///
/// A job is a document of the system table `_scheduled_functions`
/// (`{name, args, scheduledTime, state: {kind}, completedTime?}`), which
/// queries and mutations can read with [`Database::get`](crate::Database::get)
/// and [`Database::query`](crate::Database::query).
#[derive(Clone, Copy, Debug)]
pub struct Scheduler {
    _private: (),
}

impl Context for Scheduler {
    fn __convex_new(_kind: Kind) -> Scheduler {
        Scheduler { _private: () }
    }
}

/// A delay for [`Scheduler::run_after`]: a [`Duration`], or a number of
/// milliseconds (`f64`, `u64`, `i64`, `u32`, `i32`, so `run_after(500, ..)`
/// works). A negative delay is zero.
pub trait ScheduleDelay {
    /// The delay in milliseconds.
    fn delay_ms(self) -> f64;
}

impl ScheduleDelay for Duration {
    fn delay_ms(self) -> f64 {
        self.as_secs_f64() * 1000.0
    }
}

/// A time for [`Scheduler::run_at`]: a [`SystemTime`], or milliseconds
/// since the Unix epoch (`f64`, `u64`, `i64`), as [`now_ms`](crate::now_ms)
/// returns. A time in the past runs the job as soon as possible.
pub trait ScheduleTime {
    /// The time in milliseconds since the Unix epoch.
    fn epoch_ms(self) -> f64;
}

impl ScheduleTime for SystemTime {
    fn epoch_ms(self) -> f64 {
        match self.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs_f64() * 1000.0,
            Err(before) => -before.duration().as_secs_f64() * 1000.0,
        }
    }
}

macro_rules! number_impls {
    ($trait:ident :: $method:ident for $($t:ty),*) => {$(
        impl $trait for $t {
            fn $method(self) -> f64 {
                self as f64
            }
        }
    )*};
}
number_impls!(ScheduleDelay::delay_ms for f64, u64, i64, u32, i32);
number_impls!(ScheduleTime::epoch_ms for f64, u64, i64);

impl Scheduler {
    #[cfg(not(target_arch = "wasm32"))]
    /// A handle for native tests, backed by [`crate::testing`]'s fake host.
    pub fn for_tests() -> Scheduler {
        Scheduler { _private: () }
    }

    /// Runs the mutation or action at `path` with `args` (an object, or
    /// `()` for none) after `delay` ([`Duration`] or milliseconds), and
    /// returns the job's id.
    ///
    /// The time is [`now_ms`](crate::now_ms)` + delay`: the start of the
    /// mutation (frozen clock), or the current time in an action.
    pub async fn run_after(
        &self,
        delay: impl ScheduleDelay,
        path: &str,
        args: impl Serialize,
    ) -> Result<DocumentId, ConvexError> {
        let delay = delay.delay_ms();
        if delay.is_nan() {
            return Err(ConvexError::coded(
                ErrorCode::InvalidArgument,
                "run_after: the delay is NaN",
            ));
        }
        self.schedule(crate::now_ms() + delay.max(0.0), path, &args)
    }

    /// Runs the mutation or action at `path` with `args` at `time` (a
    /// [`SystemTime`], or milliseconds since the Unix epoch), and returns
    /// the job's id. A time in the past runs it as soon as possible.
    pub async fn run_at(
        &self,
        time: impl ScheduleTime,
        path: &str,
        args: impl Serialize,
    ) -> Result<DocumentId, ConvexError> {
        self.schedule(time.epoch_ms(), path, &args)
    }

    fn schedule(&self, at_ms: f64, path: &str, args: &impl Serialize) -> Result<DocumentId, ConvexError> {
        if !at_ms.is_finite() {
            return Err(ConvexError::coded(
                ErrorCode::InvalidArgument,
                format!("cannot schedule {path} at {at_ms} ms"),
            ));
        }
        let req: Value = [
            ("path", Value::from(path)),
            ("args", args_object(path, args)?),
            ("atMs", Value::Float64(at_ms)),
        ]
        .into_iter()
        .collect();
        match sys::call(imports::__convex_schedule, &req)? {
            Value::String(id) => Ok(DocumentId::from(id)),
            other => Err(ConvexError::coded(
                ErrorCode::Internal,
                format!("schedule returned {} instead of an id", other.type_name()),
            )),
        }
    }

    /// Cancels a job that has not started. Canceling a job that already
    /// ran (or was canceled) does nothing; an action that is running is
    /// not stopped.
    pub async fn cancel(&self, id: DocumentId) -> Result<(), ConvexError> {
        let req: Value = [("id", Value::from(id))].into_iter().collect();
        sys::call(imports::__convex_schedule_cancel, &req).map(drop)
    }
}
