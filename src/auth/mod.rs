//! Who is asking: users, password hashes, sessions, and the permission gate that turns
//! a user into an [`Access`] for an entity.

mod access;
pub mod context;
pub mod password;
pub mod sessions;
pub mod users;

pub use access::Access;
pub use context::Context;
pub use users::User;
