//! The billing domain: pure types and rules, no I/O and no AWS or Stripe types.

pub mod catalog;
pub mod entitlements;
pub mod ids;
pub mod module;
pub mod records;
pub mod time;

pub use catalog::*;
pub use entitlements::*;
pub use ids::*;
pub use module::*;
pub use records::*;
pub use time::*;
