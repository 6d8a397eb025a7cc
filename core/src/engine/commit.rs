//! The one commit pipeline of an engine: every change of the replica reaches the store
//! through it, one commit at a time, in the order the batches were taken.
//!
//! It also owns the rollback rule. A commit that fails makes the engine reload the replica
//! from the store, and starts a new *generation*: a batch taken before (or during) that
//! reload comes from the replica that was thrown away — it may carry part of the refused
//! changes, say an outbox entry frozen for a push while its record's commit was failing — so
//! it is dropped instead of stored, and every write of the old generation is reported as
//! rolled back ([`rolled_back`], the only place that error is made).
//!
//! A store load that replaces the replica (a reload after another tab committed) also takes
//! a place in the pipeline, so no commit of this engine runs while it reads.

use super::WriteTicket;
use crate::error::{CoreError, ErrorCode};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::task::{Poll, Waker};

/// The error of a write whose commit, or an earlier one it depended on, failed.
pub fn rolled_back() -> CoreError {
    CoreError::new(
        ErrorCode::Storage,
        "the write was rolled back because storing it (or an earlier write) failed",
    )
}

/// Which commits are running, in which generation.
#[derive(Default)]
pub(super) struct CommitPipeline {
    started: Cell<u64>,
    /// The places taken and not yet left, in ascending order (ids are handed out in
    /// ascending order, so a place is pushed at the end). A sorted `Vec`, not a
    /// `BTreeSet<u64>`: a few commits run at once, and that set type was used nowhere else
    /// in the engine, so it cost its own copy of the B-tree code in the WebAssembly module.
    running: RefCell<Vec<u64>>,
    waiters: RefCell<Vec<Waker>>,
    generation: Cell<u64>,
}

/// A place in the pipeline, held until dropped.
pub(super) struct Place<'a> {
    pipeline: &'a CommitPipeline,
    id: u64,
    generation: u64,
}

impl CommitPipeline {
    /// The ticket of writes made now.
    pub fn ticket(&self) -> WriteTicket {
        WriteTicket(self.generation.get())
    }

    /// Whether the writes of `ticket` are still those of the current generation (none of
    /// their commits failed). Only meaningful once [`CommitPipeline::settled`] resolved.
    pub fn check(&self, ticket: WriteTicket) -> Result<(), CoreError> {
        match ticket.0 == self.generation.get() {
            true => Ok(()),
            false => Err(rolled_back()),
        }
    }

    /// Takes the next place (call right after taking the batch from the replica).
    pub fn enter(&self) -> Place<'_> {
        let id = self.started.get() + 1;
        self.started.set(id);
        self.running.borrow_mut().push(id);
        Place {
            pipeline: self,
            id,
            generation: self.generation.get(),
        }
    }

    /// Whether a commit or reload is under way.
    pub fn is_busy(&self) -> bool {
        !self.running.borrow().is_empty()
    }

    /// Resolves once every commit started so far has finished.
    pub fn settled(&self) -> impl Future<Output = ()> + '_ {
        self.settled_upto(self.started.get())
    }

    fn settled_upto(&self, upto: u64) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self
                .running
                .borrow()
                .first()
                .is_none_or(|first| *first > upto)
            {
                Poll::Ready(())
            } else {
                self.waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
    }

    fn leave(&self, id: u64) {
        let mut running = self.running.borrow_mut();
        if let Ok(at) = running.binary_search(&id) {
            running.remove(at);
        }
        drop(running);
        for waker in self.waiters.borrow_mut().drain(..) {
            waker.wake();
        }
    }
}

impl Place<'_> {
    /// Waits until every earlier place has finished.
    pub async fn turn(&self) {
        self.pipeline.settled_upto(self.id - 1).await;
    }

    /// [`Place::turn`], then fails when a commit failed since this place's batch was
    /// taken: the batch comes from a replica that was thrown away.
    pub async fn commit_turn(&self) -> Result<(), CoreError> {
        self.turn().await;
        match self.generation == self.pipeline.generation.get() {
            true => Ok(()),
            false => Err(rolled_back()),
        }
    }

    /// Whether a later place was taken (a batch was taken from the replica after this one).
    pub fn has_followers(&self) -> bool {
        self.pipeline
            .running
            .borrow()
            .last()
            .is_some_and(|last| *last > self.id)
    }

    /// This place's commit failed: every write taken so far belongs to a dead generation.
    /// Call after the replica was reloaded; later places still wait behind this one.
    pub fn roll_back(&self) {
        let g = &self.pipeline.generation;
        g.set(g.get() + 1);
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.pipeline.leave(self.id);
    }
}
