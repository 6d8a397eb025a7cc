//! A wake-up call for the network loop: [`Signal::notify`] ends the current
//! [`Signal::wait`] early; a notice given while nobody waits is kept for the next wait.

use futures::future::{poll_fn, select, Either};
use std::cell::{Cell, RefCell};
use std::pin::pin;
use std::task::{Poll, Waker};

#[derive(Default)]
pub struct Signal {
    raised: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Signal {
    pub fn notify(&self) {
        self.raised.set(true);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    /// Waits for a notice or `ms` milliseconds; true if notified.
    pub async fn wait(&self, ms: u32) -> bool {
        let notified = poll_fn(|cx| {
            if self.raised.replace(false) {
                return Poll::Ready(());
            }
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        });
        let timeout = gloo_timers::future::TimeoutFuture::new(ms);
        matches!(select(pin!(notified), timeout).await, Either::Left(_))
    }
}
