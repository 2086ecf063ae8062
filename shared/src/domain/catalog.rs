//! What is for sale. Prices are identified in Stripe by *lookup keys*, never by the ids Stripe
//! generates, so the same code runs against any Stripe account once `catalog-sync` has run.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::module::ServiceModule;

/// Amount in the currency's minor unit (cents). Money is never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub amount: i64,
    pub currency: Currency,
}

/// ISO 4217 code, lowercase as Stripe writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Currency {
    Usd,
}

impl Currency {
    pub const fn as_str(self) -> &'static str {
        match self {
            Currency::Usd => "usd",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BillingInterval {
    Month,
    Year,
}

impl BillingInterval {
    /// Monthly for yearly and back.
    pub const fn other(self) -> Self {
        match self {
            BillingInterval::Month => BillingInterval::Year,
            BillingInterval::Year => BillingInterval::Month,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            BillingInterval::Month => "month",
            BillingInterval::Year => "year",
        }
    }
}

impl fmt::Display for BillingInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BillingInterval {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "month" => Ok(BillingInterval::Month),
            "year" => Ok(BillingInterval::Year),
            _ => Err(()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogPrice {
    pub interval: BillingInterval,
    pub unit_amount: i64,
    pub currency: Currency,
    pub lookup_key: &'static str,
}

impl CatalogPrice {
    pub const fn money(&self) -> Money {
        Money {
            amount: self.unit_amount,
            currency: self.currency,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogEntry {
    pub module: ServiceModule,
    pub name: &'static str,
    pub description: &'static str,
    /// `None` for BasicCRM, which is included in every plan.
    pub prices: Option<[CatalogPrice; 2]>,
}

impl CatalogEntry {
    pub fn price(&self, interval: BillingInterval) -> Option<&CatalogPrice> {
        self.prices
            .as_ref()?
            .iter()
            .find(|p| p.interval == interval)
    }
}

const fn usd(
    interval: BillingInterval,
    unit_amount: i64,
    lookup_key: &'static str,
) -> CatalogPrice {
    CatalogPrice {
        interval,
        unit_amount,
        currency: Currency::Usd,
        lookup_key,
    }
}

const fn paid(
    module: ServiceModule,
    name: &'static str,
    description: &'static str,
    monthly: (i64, &'static str),
    yearly: (i64, &'static str),
) -> CatalogEntry {
    CatalogEntry {
        module,
        name,
        description,
        prices: Some([
            usd(BillingInterval::Month, monthly.0, monthly.1),
            usd(BillingInterval::Year, yearly.0, yearly.1),
        ]),
    }
}

static ENTRIES: [CatalogEntry; 7] = [
    CatalogEntry {
        module: ServiceModule::BasicCrm,
        name: "Basic CRM",
        description: "Contacts, companies, deals and tasks. Included with every account.",
        prices: None,
    },
    paid(
        ServiceModule::LeadGeneration,
        "Lead Generation",
        "Capture, score and route leads from forms, ads and landing pages.",
        (9_900, "leadgen_monthly"),
        (99_900, "leadgen_yearly"),
    ),
    paid(
        ServiceModule::EmailAutomation,
        "Email Automation",
        "Drip campaigns, sequences and transactional email from your CRM data.",
        (4_900, "email_automation_monthly"),
        (49_900, "email_automation_yearly"),
    ),
    paid(
        ServiceModule::SocialInbox,
        "Social Inbox",
        "Every social channel's messages and mentions in one shared inbox.",
        (7_900, "social_inbox_monthly"),
        (79_900, "social_inbox_yearly"),
    ),
    paid(
        ServiceModule::AdvancedAnalytics,
        "Advanced Analytics",
        "Custom dashboards, funnels, cohorts and forecasting.",
        (2_900, "advanced_analytics_monthly"),
        (29_900, "advanced_analytics_yearly"),
    ),
    paid(
        ServiceModule::Integrations,
        "Integrations",
        "Two-way sync with accounting, support and marketing tools, plus webhooks and API access.",
        (4_900, "integrations_monthly"),
        (49_900, "integrations_yearly"),
    ),
    paid(
        ServiceModule::EnterpriseFeatures,
        "Enterprise Features",
        "SSO, audit logs, custom roles, sandboxes and priority support.",
        (19_900, "enterprise_monthly"),
        (199_900, "enterprise_yearly"),
    ),
];

/// The product catalog. A static table: reading it costs nothing and needs no Stripe call.
#[derive(Debug, Clone, Copy)]
pub struct Catalog {
    entries: &'static [CatalogEntry],
}

impl Catalog {
    pub const fn standard() -> Catalog {
        Catalog { entries: &ENTRIES }
    }

    pub fn entries(&self) -> &'static [CatalogEntry] {
        self.entries
    }

    pub fn entry(&self, module: ServiceModule) -> &'static CatalogEntry {
        // ENTRIES lists every module in `ServiceModule::ALL` order; a unit test holds it there.
        &self.entries[module as usize]
    }

    pub fn paid_entries(&self) -> impl Iterator<Item = &'static CatalogEntry> {
        self.entries.iter().filter(|e| e.prices.is_some())
    }

    pub fn price(
        &self,
        module: ServiceModule,
        interval: BillingInterval,
    ) -> Option<&'static CatalogPrice> {
        self.entry(module).price(interval)
    }

    /// Which module and interval a Stripe price stands for, from its lookup key.
    pub fn by_lookup_key(&self, key: &str) -> Option<(ServiceModule, &'static CatalogPrice)> {
        self.entries.iter().find_map(|e| {
            e.prices
                .as_ref()?
                .iter()
                .find(|p| p.lookup_key == key)
                .map(|p| (e.module, p))
        })
    }
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog::standard()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_follow_module_order_and_every_paid_module_has_two_prices() {
        let catalog = Catalog::standard();
        for module in ServiceModule::ALL {
            let entry = catalog.entry(module);
            assert_eq!(entry.module, module);
            assert_eq!(entry.prices.is_none(), module.is_free());
        }
    }

    #[test]
    fn prices_match_the_price_list() {
        let catalog = Catalog::standard();
        let expect = [
            (ServiceModule::LeadGeneration, 9_900, 99_900),
            (ServiceModule::EmailAutomation, 4_900, 49_900),
            (ServiceModule::SocialInbox, 7_900, 79_900),
            (ServiceModule::AdvancedAnalytics, 2_900, 29_900),
            (ServiceModule::Integrations, 4_900, 49_900),
            (ServiceModule::EnterpriseFeatures, 19_900, 199_900),
        ];
        for (module, monthly, yearly) in expect {
            let m = catalog.price(module, BillingInterval::Month).unwrap();
            let y = catalog.price(module, BillingInterval::Year).unwrap();
            assert_eq!(
                (m.unit_amount, y.unit_amount),
                (monthly, yearly),
                "{module}"
            );
            assert_eq!(m.currency, Currency::Usd);
        }
    }

    #[test]
    fn lookup_keys_are_unique_and_resolve_back() {
        let catalog = Catalog::standard();
        let mut seen = std::collections::HashSet::new();
        for entry in catalog.paid_entries() {
            for price in entry.prices.unwrap() {
                assert!(
                    seen.insert(price.lookup_key),
                    "duplicate {}",
                    price.lookup_key
                );
                let (module, found) = catalog.by_lookup_key(price.lookup_key).unwrap();
                assert_eq!(module, entry.module);
                assert_eq!(found.interval, price.interval);
            }
        }
        assert_eq!(
            catalog.by_lookup_key("leadgen_monthly").map(|(m, _)| m),
            Some(ServiceModule::LeadGeneration)
        );
        assert!(catalog.by_lookup_key("nope").is_none());
    }
}
