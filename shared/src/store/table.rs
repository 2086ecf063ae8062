//! The table definition, shared by tests, the local stack and (checked by a test) template.yaml.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};

use super::StoreError;
use super::keys::{EXPIRES_AT, PK, SK};

/// Key attributes (name, type, role) exactly as template.yaml declares them.
pub const KEY_SCHEMA: [(&str, &str, &str); 2] = [(PK, "S", "HASH"), (SK, "S", "RANGE")];
pub const TTL_ATTRIBUTE: &str = EXPIRES_AT;
pub const BILLING_MODE: &str = "PAY_PER_REQUEST";

/// Creates the table (on-demand, TTL on) as template.yaml does; for tests and the local stack.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::from(BILLING_MODE));
    for (name, kind, role) in KEY_SCHEMA {
        request = request
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::from(kind))
                    .build()
                    .map_err(StoreError::unavailable)?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(name)
                    .key_type(KeyType::from(role))
                    .build()
                    .map_err(StoreError::unavailable)?,
            );
    }
    request.send().await.map_err(StoreError::unavailable)?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(TTL_ATTRIBUTE)
                .enabled(true)
                .build()
                .map_err(StoreError::unavailable)?,
        )
        .send()
        .await
        .map_err(StoreError::unavailable)?;
    Ok(())
}
