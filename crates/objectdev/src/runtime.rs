//! Where a device's futures run: its own small runtime, or the caller's.

use std::future::Future;

use tokio::runtime::{Builder, Handle, Runtime};

use crate::error::Error;

/// Worker threads of a device's own runtime: they run the HTTP connections
/// (TLS, body decoding) while the reading thread waits, so parallel parts
/// of a large read are decoded on two cores.
const OWN_WORKER_THREADS: usize = 2;

/// The runtime a device blocks on.
#[derive(Debug)]
pub(crate) enum Executor {
    /// A runtime the device started and shuts down when dropped.
    Own(Option<Runtime>),
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
        Ok(Executor::Own(Some(runtime)))
    }

    pub(crate) fn handle(&self) -> &Handle {
        match self {
            Executor::Own(Some(runtime)) => runtime.handle(),
            Executor::Borrowed(handle) => handle,
            Executor::Own(None) => unreachable!("the runtime is only taken in drop"),
        }
    }

    /// Runs `future` to completion on the calling thread.
    ///
    /// Errors instead of panicking when called from inside a runtime, where
    /// blocking would stall that runtime's other tasks.
    pub(crate) fn block_on<F: Future>(&self, future: F) -> Result<F::Output, Error> {
        if Handle::try_current().is_ok() {
            return Err(Error::InsideRuntime);
        }
        Ok(self.handle().block_on(future))
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
