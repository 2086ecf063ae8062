//! The route table (filled in by the authorizer work).
