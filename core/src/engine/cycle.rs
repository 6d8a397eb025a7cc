//! One sync cycle: push every batch, then pull every page, refreshing credentials once on a
//! 401; and the mapping of transport and storage failures onto the state machine.

use super::*;

/// The `auth-required` code when the app's token source failed (no request was answered).
pub const TOKEN_UNAVAILABLE: &str = "token_unavailable";

impl<S: Store, T: Transport, A: TokenSource, C: Clock, E: Entropy> Engine<S, T, A, C, E> {
    /// Runs one sync cycle and updates the state machine.
    pub async fn sync(&self) -> CycleOutcome {
        self.state.borrow_mut().started();
        let trace = traceparent(&self.entropy);
        let result = self.cycle(&trace).await;
        let now = self.clock.now_ms();
        match result {
            Ok(()) => {
                self.state.borrow_mut().succeeded(now);
                self.metrics.borrow_mut().cycles_ok += 1;
                CycleOutcome::Synced
            }
            Err((failure, message)) => {
                let random = self.entropy.next_u64();
                self.state
                    .borrow_mut()
                    .failed(failure, message.clone(), now, random);
                self.metrics.borrow_mut().cycles_failed += 1;
                CycleOutcome::Failed(message)
            }
        }
    }

    async fn cycle(&self, trace: &str) -> Result<(), (Failure, String)> {
        self.commit().await.map_err(storage_failure)?;
        for _ in 0..3 {
            self.push_all(trace).await?;
            if self.replica.borrow().has_in_flight() {
                return Err((
                    Failure::Retryable {
                        retry_after_ms: None,
                    },
                    "some ops wait for a retry".into(),
                ));
            }
            self.pull_all(trace).await?;
            if !self.replica.borrow().has_pending_push() {
                break;
            }
        }
        Ok(())
    }

    async fn push_all(&self, trace: &str) -> Result<(), (Failure, String)> {
        {
            let depth = self.replica.borrow().outbox_depth() as u64;
            *self.progress.borrow_mut() = Progress {
                push_total: depth,
                ..Progress::default()
            };
        }
        for _ in 0..MAX_PUSH_ROUNDS {
            let Some(req) = self
                .replica
                .borrow_mut()
                .begin_push_with(self.is_degraded())
            else {
                return Ok(());
            };
            // The frozen batch must be durable before it leaves, so a retry is identical.
            self.commit().await.map_err(storage_failure)?;
            let timing = self.batch_timing(&req);
            let mut meta = self.meta(trace, idempotency_key(&req.mutations));
            meta.priority = Some(self.replica.borrow().push_priority(&req));
            let sent_at = self.clock.now_ms();
            match self.request(Request::Push(&req), meta).await {
                Ok(Response::Push(resp)) => {
                    self.note_round_trip(self.clock.now_ms().saturating_sub(sent_at));
                    self.check_push_answer(&req, &resp, (sent_at, self.clock.now_ms()))?;
                    let now = self.clock.now_ms();
                    self.record_push_metrics(&req, &resp, &timing, now);
                    let summary = self.replica.borrow_mut().on_push_response(&resp, now);
                    self.progress.borrow_mut().pushed +=
                        (summary.applied + summary.conflicts + summary.dead_lettered) as u64;
                    self.commit().await.map_err(storage_failure)?;
                    if summary.retry > 0 {
                        let msg = resp
                            .rejected
                            .iter()
                            .find(|r| r.retryable)
                            .map(|r| format!("{}: {}", r.code, r.message));
                        return Err((
                            Failure::Retryable {
                                retry_after_ms: None,
                            },
                            msg.unwrap_or_default(),
                        ));
                    }
                }
                Ok(Response::Pull(_)) => unreachable!("a push answers with a push response"),
                Err(TransportError::Http { status: 413, .. }) => {
                    // Too large for the server: smaller batches next, or a dead letter for
                    // a lone mutation; the writes behind it go on at once.
                    let now = self.clock.now_ms();
                    self.replica.borrow_mut().on_push_too_large(&req, now);
                    self.commit().await.map_err(storage_failure)?;
                }
                Err(error) => {
                    self.replica
                        .borrow_mut()
                        .note_push_failure(&error.to_string());
                    let _ = self.commit().await;
                    return Err(classify(&error));
                }
            }
        }
        Ok(())
    }

    async fn pull_all(&self, trace: &str) -> Result<(), (Failure, String)> {
        // A first sync takes the critical collections first (critical_first.rs).
        let mut rolled_back = self.pull_critical_first(trace).await?;
        // The next page, fetched while the previous one was being stored.
        let mut fetched: Option<FetchedPage> = None;
        loop {
            let FetchedPage {
                cursor,
                limit,
                view: _,
                sent_at,
                received_at,
                answer,
            } = match fetched.take() {
                Some(page) => page,
                None => self.fetch_page(trace).await,
            };
            match answer {
                Ok(Response::Pull(page)) => {
                    let check = self.check_pull_page(
                        cursor,
                        limit,
                        &page,
                        (sent_at, received_at),
                        rolled_back,
                    )?;
                    if let checks::PageCheck::RestartFromZero = check {
                        rolled_back = true;
                        self.commit().await.map_err(storage_failure)?;
                        continue;
                    }
                    {
                        let mut p = self.progress.borrow_mut();
                        p.pulled = p.pulled.saturating_add(page.changes.len() as u64);
                        p.pull_estimate = p.pulled.saturating_add(page.remaining);
                    }
                    self.replica
                        .borrow_mut()
                        .on_pull_page(&page, self.clock.now_ms());
                    if !page.has_more {
                        self.commit().await.map_err(storage_failure)?;
                        return Ok(());
                    }
                    // Storing this page and fetching the next overlap: the next page is asked
                    // for at this page's cursor (already folded in memory), and is folded in
                    // only once this page is durable — a failed commit returns before it.
                    let (stored, next) = join::join(self.commit(), self.fetch_page(trace)).await;
                    stored.map_err(storage_failure)?;
                    // Unless the commit moved the cursor or view under it: a commit that
                    // re-created lost storage starts a full resync from 0. Then ask again.
                    let still = {
                        let r = self.replica.borrow();
                        (r.cursor(), &r.meta().view) == (next.cursor, &next.view)
                    };
                    if still {
                        fetched = Some(next);
                    }
                }
                Ok(Response::Push(_)) => unreachable!("a pull answers with a pull response"),
                Err(TransportError::CursorExpired) => {
                    self.replica.borrow_mut().on_cursor_expired();
                    self.commit().await.map_err(storage_failure)?;
                }
                Err(error) => return Err(classify(&error)),
            }
        }
    }

    /// Asks for the page at the replica's cursor, noting when it was sent and answered.
    async fn fetch_page(&self, trace: &str) -> FetchedPage {
        let (cursor, limit, validator, view) = {
            let r = self.replica.borrow();
            // Once the server's history is known, an idle poll is conditional: the
            // server answers 304 (an empty page at this cursor) without reading a page.
            let validator = crate::conditional::pull_etag(&r.meta().epoch, r.cursor());
            (
                r.cursor(),
                r.config().pull_limit,
                validator,
                r.meta().view.clone(),
            )
        };
        let meta = RequestMeta {
            view,
            if_none_match: validator,
            ..self.meta(trace, String::new())
        };
        let sent_at = self.clock.now_ms();
        let view = meta.view.clone();
        let answer = self.request(Request::Pull(cursor, limit), meta).await;
        FetchedPage {
            cursor,
            view,
            limit,
            sent_at,
            received_at: self.clock.now_ms(),
            answer,
        }
    }

    pub(super) fn meta(&self, trace: &str, idempotency_key: String) -> RequestMeta {
        RequestMeta {
            idempotency_key,
            traceparent: trace.to_owned(),
            token: self.token.borrow().clone(),
            if_none_match: None,
            view: String::new(),
            data_version: self.replica.borrow().data_version(),
            priority: None,
            collections: Vec::new(),
        }
    }

    /// Sends a request; on a 401 asks the app for a fresh token and tries once more.
    pub(super) async fn request(
        &self,
        req: Request<'_>,
        mut meta: RequestMeta,
    ) -> Result<Response, TransportError> {
        if meta.token.is_none() {
            meta.token = self.fetch_token(false).await?;
        }
        match self.send(&req, &meta).await {
            Err(TransportError::Unauthorized { .. }) => {
                meta.token = self.fetch_token(true).await?;
                self.send(&req, &meta).await
            }
            other => other,
        }
    }

    async fn fetch_token(&self, refresh: bool) -> Result<Option<String>, TransportError> {
        let token =
            self.tokens
                .token(refresh)
                .await
                .map_err(|reason| TransportError::Unauthorized {
                    code: TOKEN_UNAVAILABLE.into(),
                    message: format!("the app could not give a token: {reason}"),
                })?;
        *self.token.borrow_mut() = token.clone();
        Ok(token)
    }

    async fn send(
        &self,
        req: &Request<'_>,
        meta: &RequestMeta,
    ) -> Result<Response, TransportError> {
        match req {
            Request::Push(r) => self.transport.push(r, meta).await.map(Response::Push),
            Request::Pull(cursor, limit) => self
                .transport
                .pull(*cursor, *limit, meta)
                .await
                .map(Response::Pull),
        }
    }

    fn batch_timing(&self, req: &PushRequest) -> HashMap<String, (u32, u64)> {
        let r = self.replica.borrow();
        r.outbox()
            .filter_map(|e| {
                e.sent
                    .as_ref()
                    .map(|s| (s.op_id.clone(), (e.attempts, e.created_at_ms)))
            })
            .filter(|(op, _)| req.mutations.iter().any(|m| &m.op_id == op))
            .collect()
    }

    fn record_push_metrics(
        &self,
        req: &PushRequest,
        resp: &PushResponse,
        timing: &HashMap<String, (u32, u64)>,
        now: u64,
    ) {
        let mut m = self.metrics.borrow_mut();
        for mutation in &req.mutations {
            *m.sent_by_collection
                .entry(mutation.collection.clone())
                .or_default() += 1;
        }
        for c in &resp.conflicts {
            *m.conflicts_by_collection
                .entry(c.server.collection.clone())
                .or_default() += 1;
        }
        for a in &resp.accepted {
            if let Some((attempts, created)) = timing.get(&a.op_id) {
                m.record_applied(*attempts, now.saturating_sub(*created));
            }
        }
    }
}

pub(super) enum Request<'a> {
    Push(&'a PushRequest),
    Pull(u64, u32),
}

pub(super) enum Response {
    Push(PushResponse),
    Pull(PullResponse),
}

pub(super) fn storage_failure(e: CoreError) -> (Failure, String) {
    (
        Failure::Retryable {
            retry_after_ms: None,
        },
        e.to_string(),
    )
}

/// Maps a transport failure to the state machine's input.
/// The server's code for a push from an older app data version (PROTOCOL.md §3).
const UPGRADE_REQUIRED: &str = "upgrade_required";

pub fn classify(error: &TransportError) -> (Failure, String) {
    let failure = match error {
        TransportError::Network(_) => Failure::Network,
        // The network carried the request; the server was slow: not "offline".
        TransportError::Timeout => Failure::Retryable {
            retry_after_ms: None,
        },
        TransportError::Unauthorized { code, .. } => Failure::Auth { code: code.clone() },
        TransportError::Http {
            status: 409, code, ..
        } if code == UPGRADE_REQUIRED => Failure::UpgradeRequired,
        TransportError::Http { retry_after_ms, .. } if error.is_retryable() => Failure::Retryable {
            retry_after_ms: *retry_after_ms,
        },
        TransportError::Http { .. } => Failure::Fatal,
        TransportError::CursorExpired => Failure::Retryable {
            retry_after_ms: None,
        },
        TransportError::Decode(detail) => {
            return (
                Failure::Protocol,
                crate::answers::undecodable(detail).to_string(),
            )
        }
    };
    (failure, error.to_string())
}

/// A pull page's answer with what it was asked for and when (for the clock calibration,
/// which must not count the time the answer waited for a commit).
struct FetchedPage {
    cursor: u64,
    view: String,
    limit: u32,
    sent_at: u64,
    received_at: u64,
    answer: Result<Response, TransportError>,
}
