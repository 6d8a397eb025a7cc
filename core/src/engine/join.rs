//! Waiting for two futures at once, for the pull's overlap of storing one page with fetching
//! the next (`cycle.rs`). The core has no executor or futures crate, and needs nothing more
//! than this: both run to completion, polled in turn whenever either wakes the task.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Runs `a` and `b` concurrently and answers both results once both are done.
pub async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    Join {
        a: Half::Running(Box::pin(a)),
        b: Half::Running(Box::pin(b)),
    }
    .await
}

enum Half<F: Future> {
    Running(Pin<Box<F>>),
    Done(Option<F::Output>),
}

impl<F: Future> Half<F> {
    /// Polls a running half; true once it has its output.
    fn poll_done(&mut self, cx: &mut Context<'_>) -> bool {
        match self {
            Half::Running(future) => match future.as_mut().poll(cx) {
                Poll::Ready(output) => {
                    *self = Half::Done(Some(output));
                    true
                }
                Poll::Pending => false,
            },
            Half::Done(_) => true,
        }
    }

    fn take(&mut self) -> F::Output {
        match self {
            Half::Done(output) => output.take().expect("a joined output is taken once"),
            Half::Running(_) => unreachable!("taken only when done"),
        }
    }
}

struct Join<A: Future, B: Future> {
    a: Half<A>,
    b: Half<B>,
}

// Both halves are boxed, so `Join` never moves a pinned future.
impl<A: Future, B: Future> Unpin for Join<A, B> {}

impl<A: Future, B: Future> Future for Join<A, B> {
    type Output = (A::Output, B::Output);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let a_done = this.a.poll_done(cx);
        let b_done = this.b.poll_done(cx);
        if a_done && b_done {
            Poll::Ready((this.a.take(), this.b.take()))
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::block_on;
    use std::cell::Cell;
    use std::rc::Rc;
    use std::task::Waker;

    /// A future that is pending `left` times (waking itself each time), then ready with `value`.
    struct PendingFor {
        left: u32,
        value: u32,
        polls: Rc<Cell<u32>>,
    }

    impl Future for PendingFor {
        type Output = u32;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
            self.polls.set(self.polls.get() + 1);
            if self.left == 0 {
                return Poll::Ready(self.value);
            }
            self.left -= 1;
            Waker::wake_by_ref(cx.waker());
            Poll::Pending
        }
    }

    #[test]
    fn both_run_to_completion_and_a_finished_half_is_not_polled_again() {
        let (polls_a, polls_b) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let a = PendingFor {
            left: 1,
            value: 7,
            polls: polls_a.clone(),
        };
        let b = PendingFor {
            left: 4,
            value: 9,
            polls: polls_b.clone(),
        };
        assert_eq!(block_on(join(a, b)), (7, 9));
        assert_eq!(polls_a.get(), 2, "a is polled until ready, then left alone");
        assert_eq!(polls_b.get(), 5);
    }
}
