//! Identifier newtypes. Every id that ends up inside a DynamoDB key is validated on the way in,
//! so a crafted value can never forge another key (keys are `PREFIX#<id>`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// An identifier was empty, too long, or held characters that cannot appear in a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: must be 1-255 printable ASCII characters without '#'")]
pub struct InvalidId {
    pub kind: &'static str,
}

fn valid_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 255
        && value.bytes().all(|b| b.is_ascii_graphic() && b != b'#')
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an identifier.
            pub fn parse(value: impl Into<String>) -> Result<Self, InvalidId> {
                let value = value.into();
                if valid_id(&value) {
                    Ok(Self(value))
                } else {
                    Err(InvalidId { kind: $kind })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// The CRM organization (tenant). Only ever taken from a verified token or from data this
    /// service itself wrote into Stripe.
    OrgId,
    "organization id"
);
string_id!(UserId, "user id");
string_id!(CustomerId, "Stripe customer id");
string_id!(SubscriptionId, "Stripe subscription id");
string_id!(InvoiceId, "Stripe invoice id");
string_id!(PaymentMethodId, "Stripe payment method id");
string_id!(EventId, "Stripe event id");
string_id!(CheckoutSessionId, "Stripe checkout session id");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_key_separators_and_blanks() {
        assert!(OrgId::parse("org_1").is_ok());
        assert!(OrgId::parse("").is_err());
        assert!(OrgId::parse("a#b").is_err());
        assert!(OrgId::parse("a b").is_err());
        assert!(OrgId::parse("x".repeat(256)).is_err());
        assert!(serde_json::from_str::<OrgId>("\"ORG#evil\"").is_err());
    }
}
