//! What a token check is made of, shared by the verifier ([`super::jwt`]) and the JWKS key
//! set ([`super::jwks`]) without either importing the other's internals: the one accepted
//! algorithm, and why a token was refused.

use jsonwebtoken::Algorithm;

/// The accepted signing algorithm (exactly one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    Hs256,
    Rs256,
    Es256,
}

impl JwtAlgorithm {
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim() {
            "HS256" => Some(Self::Hs256),
            "RS256" => Some(Self::Rs256),
            "ES256" => Some(Self::Es256),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
        }
    }

    pub const fn jwt(self) -> Algorithm {
        match self {
            Self::Hs256 => Algorithm::HS256,
            Self::Rs256 => Algorithm::RS256,
            Self::Es256 => Algorithm::ES256,
        }
    }
}

/// Why a token was refused. Everything but `KeysUnavailable` means "not authenticated" (401);
/// `KeysUnavailable` is our failure (the JWKS could not be fetched), answered with a 500.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no bearer token")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("token algorithm is not the configured one")]
    WrongAlgorithm,
    #[error("no key for the token's kid")]
    UnknownKey,
    #[error("token refused: {0}")]
    Invalid(String),
    #[error("token has no valid {0} claim")]
    MissingClaim(&'static str),
    #[error("verification keys unavailable: {0}")]
    KeysUnavailable(String),
}

impl TokenError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, TokenError::KeysUnavailable(_))
    }
}
