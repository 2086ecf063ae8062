//! The local stack without Docker: the emulators, and an API Gateway stand-in serving every
//! route of template.yaml through the real authorizer and the real handlers.

pub mod emulators;
pub mod fixtures;
pub mod frontend;
pub mod gateway;
pub mod http;
pub mod server;
pub mod stack;
pub mod stripe_mode;
