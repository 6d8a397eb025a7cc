//! A connection that died under the handle. The browser may close an IndexedDB connection
//! without firing `close` (Chromium does so when the user clears the site's data): the next
//! transaction then throws `InvalidStateError`, which the store maps to
//! [`StoreError::Unavailable`]. Left at that, every later commit fails the same way, the
//! identity check never runs, and the tab never learns that its database is gone.
//!
//! So every use of the connection goes through [`IdbStore::on_live_connection`]: when it
//! fails as unavailable, the connection is dropped and opened again, the database's identity
//! is verified (a different or missing identity is [`StoreError::Lost`], which the engine
//! answers by re-creating the database from the replica), and the use is tried once more.
//! One retry only: a database that stays unavailable (another tab blocks an upgrade) fails
//! as before, with nothing written.

use super::IdbStore;
use ferry_core::ports::StoreError;
use indexed_db_futures::database::Database;
use indexed_db_futures::internals::SystemRepr;
use std::future::Future;

impl IdbStore {
    /// Runs `use_db` on the open connection; when it fails as unavailable (a dead
    /// connection), reopens, checks the database is still the replica's own when `verify`
    /// is set (unset only for uses that check or set the identity themselves), and runs it
    /// once more on the new connection.
    pub(super) async fn on_live_connection<T, F, Fut>(
        &self,
        verify: bool,
        use_db: F,
    ) -> Result<T, StoreError>
    where
        F: Fn(Database) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let db = self.db().await?;
        match use_db(db).await {
            Err(StoreError::Unavailable(_)) => {
                self.drop_connection();
                let db = self.db().await?;
                if verify {
                    self.verify(&db).await?;
                }
                use_db(db).await
            }
            other => other,
        }
    }

    /// Closes and forgets the cached connection (keeping the `close` listener's owner), so
    /// the next use opens a new one.
    pub(super) fn drop_connection(&self) {
        if let Some(db) = self.0.db.borrow_mut().take() {
            db.as_sys().set_onversionchange(None);
            db.as_sys().set_onclose(None);
            db.close();
        }
    }
}
