use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A product module of the CRM. The serialized names are stable: they are used in the API, in
/// stored items, in the authorizer context and in the paywall's 403 body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ServiceModule {
    #[serde(rename = "BasicCRM")]
    BasicCrm,
    LeadGeneration,
    EmailAutomation,
    SocialInbox,
    AdvancedAnalytics,
    Integrations,
    EnterpriseFeatures,
}

impl ServiceModule {
    pub const ALL: [ServiceModule; 7] = [
        ServiceModule::BasicCrm,
        ServiceModule::LeadGeneration,
        ServiceModule::EmailAutomation,
        ServiceModule::SocialInbox,
        ServiceModule::AdvancedAnalytics,
        ServiceModule::Integrations,
        ServiceModule::EnterpriseFeatures,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ServiceModule::BasicCrm => "BasicCRM",
            ServiceModule::LeadGeneration => "LeadGeneration",
            ServiceModule::EmailAutomation => "EmailAutomation",
            ServiceModule::SocialInbox => "SocialInbox",
            ServiceModule::AdvancedAnalytics => "AdvancedAnalytics",
            ServiceModule::Integrations => "Integrations",
            ServiceModule::EnterpriseFeatures => "EnterpriseFeatures",
        }
    }

    /// BasicCRM is part of every plan and never sold.
    pub const fn is_free(self) -> bool {
        matches!(self, ServiceModule::BasicCrm)
    }

    pub(crate) const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for ServiceModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown service module {0:?}")]
pub struct UnknownModule(pub String);

impl FromStr for ServiceModule {
    type Err = UnknownModule;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServiceModule::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| UnknownModule(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_str_and_serde() {
        for module in ServiceModule::ALL {
            assert_eq!(module.as_str().parse::<ServiceModule>(), Ok(module));
            let json = serde_json::to_string(&module).unwrap();
            assert_eq!(json, format!("\"{}\"", module.as_str()));
        }
        assert!("leadgeneration".parse::<ServiceModule>().is_err());
        assert!(ServiceModule::BasicCrm.is_free());
        assert!(!ServiceModule::LeadGeneration.is_free());
    }
}
