//! JWT verification and the authorizer decision (filled in by the authorizer work).
