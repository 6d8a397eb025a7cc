//! Queries over one collection: what the app asks for (`spec`), how field values order
//! (`key`), the declared indexes kept beside the replica (`index`), how a query is answered
//! through them (`plan`), the same indexes as keys a store orders (`stored`) and how a live result follows a change set instead of being
//! recomputed (`live`).
//!
//! Everything here is platform-free: the browser's client owns the instances and feeds
//! them the replica's records and change sets; the core decides which rows a query holds.

mod index;
mod key;
mod live;
mod plan;
mod spec;
mod stored;

pub use index::{IndexDecl, Indexes};
pub use key::{compare_values, KeyPart};
pub use live::{LiveRows, Step};
pub use plan::{run, Records, Rows};
pub use spec::{Bound, Condition, Order, QueryError, QuerySpec, INVALID_QUERY};
pub use stored::{
    compare_stored, index_name, read_plan, row_keys, signature, stored_key, stored_plan,
    StoredPage, StoredPlan, StoredRange,
};
