//! Where a device's futures run: its own small runtime, or the caller's;
//! and who may block waiting for them.

use std::future::Future;
use std::task::{Context, Poll, Waker};

use tokio::runtime::{Builder, Handle, Runtime, RuntimeFlavor};
use tokio::task::{JoinError, JoinHandle, coop};

use crate::error::Error;

/// Worker threads of a device's own runtime: they run the HTTP connections
/// (TLS, body decoding) while the reading thread waits, so parallel parts
/// of a large read are decoded on two cores.
const OWN_WORKER_THREADS: usize = 2;

/// The runtime a device's requests run on, as tasks.
#[derive(Debug)]
pub(crate) enum Executor {
    /// A runtime the device started and shuts down when dropped (boxed: a
    /// device is moved around, and kept in enums beside small devices).
    Own(Option<Box<Runtime>>),
    /// A runtime the caller owns.
    Borrowed(Handle),
}

impl Executor {
    pub(crate) fn own() -> Result<Self, Error> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(OWN_WORKER_THREADS)
            .thread_name("objectdev")
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        Ok(Executor::Own(Some(Box::new(runtime))))
    }

    /// The caller's runtime, if its tasks run without anyone blocking on it.
    pub(crate) fn borrowed(handle: Handle) -> Result<Self, Error> {
        if handle.runtime_flavor() != RuntimeFlavor::MultiThread {
            // Its tasks run only while its owner is inside `block_on`,
            // which the device cannot know: a read could wait forever.
            return Err(Error::UnusableRuntime {
                reason: "a current_thread runtime runs the device's requests only while its \
                         owner blocks on it; pass a multi_thread runtime's handle, or let the \
                         device start its own (ObjectDevice::new)"
                    .into(),
            });
        }
        Ok(Executor::Borrowed(handle))
    }

    pub(crate) fn handle(&self) -> &Handle {
        match self {
            Executor::Own(Some(runtime)) => runtime.handle(),
            Executor::Borrowed(handle) => handle,
            Executor::Own(None) => unreachable!("the runtime is only taken in drop"),
        }
    }

    /// Runs `future` as a task of the device's runtime and waits for it
    /// without blocking; the task is aborted if this future is dropped.
    pub(crate) async fn run<F>(&self, future: F) -> Result<F::Output, Error>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let mut task = AbortOnDrop(self.handle().spawn(future));
        (&mut task.0).await.map_err(task_failed)
    }

    /// Runs `future` as a task of the device's runtime and blocks the
    /// calling thread until it is done.
    ///
    /// Refused on a thread that runs async tasks, where blocking would
    /// stall them (and, on the runtime that would run `future`, could wait
    /// forever); allowed on plain threads, `spawn_blocking` threads, inside
    /// `block_in_place` and on threads that only entered a runtime.
    pub(crate) fn block_on<F>(&self, future: F) -> Result<F::Output, Error>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if runs_async_tasks() {
            return Err(Error::InsideRuntime);
        }
        // A plain park-and-wake wait: unlike tokio's `block_on` it needs no
        // runtime context on this thread, and never panics for being in one.
        futures_executor::block_on(self.run(future))
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        // Shutting down in the background never blocks and never panics,
        // even when the device is dropped inside another runtime.
        if let Executor::Own(runtime) = self
            && let Some(runtime) = runtime.take()
        {
            runtime.shutdown_background();
        }
    }
}

/// Aborts the task when the wait for it is abandoned.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn task_failed(error: JoinError) -> Error {
    let reason = if error.is_cancelled() {
        "the runtime was shut down (a borrowed runtime must outlive the device)".to_owned()
    } else {
        let payload = error.into_panic();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        format!("the request's task panicked: {message} (a borrowed runtime needs enable_all)")
    };
    Error::RuntimeGone { reason }
}

/// Whether this thread is polling an async task (a tokio worker, or a
/// `block_on`), where a blocking wait would stall the runtime.
///
/// tokio has no public "may I block here?" query; it gives a task it polls
/// a budget (128 operations) and takes the budget away on the threads where
/// blocking is allowed: `spawn_blocking`, `block_in_place`, outside any
/// task. So: spend the budget without limit and see whether it runs out.
/// The spent budget is restored before returning. A task wrapped in
/// `tokio::task::unconstrained` has no budget either and is taken for a
/// blocking thread.
fn runs_async_tasks() -> bool {
    if Handle::try_current().is_err() {
        return false;
    }
    let mut cx = Context::from_waker(Waker::noop());
    let Poll::Ready(restore) = coop::poll_proceed(&mut cx) else {
        return true;
    };
    let ran_out = (0..=u16::from(u8::MAX)).any(|_| match coop::poll_proceed(&mut cx) {
        Poll::Ready(step) => {
            step.made_progress();
            false
        }
        Poll::Pending => true,
    });
    drop(restore);
    ran_out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn multi_thread() -> Runtime {
        Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn only_task_threads_count_as_running_async_tasks() {
        assert!(!runs_async_tasks(), "a plain thread");
        let runtime = multi_thread();
        assert!(runtime.block_on(async { runs_async_tasks() }), "block_on");
        assert!(
            runtime
                .block_on(runtime.spawn(async { runs_async_tasks() }))
                .unwrap()
        );
        let blocking = runtime.spawn_blocking(runs_async_tasks);
        assert!(!runtime.block_on(blocking).unwrap(), "spawn_blocking");
        let in_place = runtime.spawn(async { tokio::task::block_in_place(runs_async_tasks) });
        assert!(!runtime.block_on(in_place).unwrap(), "block_in_place");
        let _entered = runtime.enter();
        assert!(!runs_async_tasks(), "a thread inside Runtime::enter");
    }

    #[test]
    fn the_probe_gives_back_the_budget_it_spent() {
        let runtime = multi_thread();
        let spent = runtime.block_on(runtime.spawn(async {
            // A task whose budget is one poll from running out stays so.
            for _ in 0..127 {
                tokio::task::coop::consume_budget().await;
            }
            let before = coop::has_budget_remaining();
            assert!(runs_async_tasks());
            (before, coop::has_budget_remaining())
        }));
        assert_eq!(spent.unwrap(), (true, true));
    }
}
