//! Who is asking and what they may do: users, departments, passwords, sessions and
//! login throttling, the Casbin policy compiled from the metadata's roles, and the
//! permission gate that turns a user into an [`Access`] for an entity.

mod access;
pub mod casbin_adapter;
pub mod context;
pub mod login;
pub mod org;
pub mod password;
pub mod policy;
pub mod rate;
pub mod sessions;
pub mod throttle;
pub mod users;

pub use access::{Access, OwnerIndex, SYSTEM_USER};
pub use context::Context;
pub use users::User;
