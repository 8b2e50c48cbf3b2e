//! Shutdown plumbing: a cloneable [`Shutdown`] every task selects on, and [`signal`], the
//! future the binary passes to `run` (SIGINT or SIGTERM).

use tokio::sync::watch;

/// A task's view of the shutdown flag. Cheap to clone (one `Arc`), so every connection
/// task holds one.
#[derive(Clone, Debug)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// The side that triggers shutdown.
#[derive(Debug)]
pub struct Trigger {
    tx: watch::Sender<bool>,
}

/// Creates a trigger and the first listener of it.
pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger { tx }, Shutdown { rx })
}

impl Trigger {
    /// Tells every [`Shutdown`] to stop. Idempotent.
    pub fn fire(&self) {
        self.tx.send_replace(true);
    }
}

impl Shutdown {
    /// Completes once shutdown has been triggered (at once if it already was, or if the
    /// trigger is gone).
    pub async fn wait(&mut self) {
        let _ = self.rx.wait_for(|stop| *stop).await;
    }

    /// Whether shutdown has been triggered.
    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }
}

/// Completes on the first SIGINT (Ctrl-C) or SIGTERM after this call. The handlers are
/// installed by the call itself, not when the future is first polled: a signal that
/// arrives while the server is still starting then shuts it down gracefully instead of
/// killing it. Must be called inside a tokio runtime.
pub fn signal() -> impl std::future::Future<Output = ()> + Send {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let handlers = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        );
        async move {
            match handlers {
                (Ok(mut int), Ok(mut term)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
