//! REST API Lambda authorizer (REQUEST type). Everything but the wiring lives in
//! `billing::auth`.

use billing::auth::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, AuthConfig, AuthError, Authorizer,
};
use billing::config;
use billing::store::BillingStore;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    billing::telemetry::init();
    let aws = config::aws().await;
    let store = BillingStore::from_env(&aws)?;
    let authorizer = Authorizer::new(AuthConfig::from_env(&aws).await?, store)?;
    let authorizer = &authorizer;
    run(service_fn(
        move |event: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>| async move {
            match authorizer.authorize(&event.payload).await {
                Ok(response) => Ok(response),
                // API Gateway answers 401 only for an error whose message is exactly this.
                Err(AuthError::Unauthorized) => Err(Error::from("Unauthorized")),
                // Any other error is a 500 (AUTHORIZER_FAILURE): fail closed, already logged.
                Err(AuthError::Failed(_)) => Err(Error::from("authorizer failure")),
            }
        },
    ))
    .await
}
