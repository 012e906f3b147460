//! Azure credentials from AWS Secrets Manager, read at run time (never from the function's
//! environment, logs or Terraform outputs).

use crate::auth::{AuthError, AzureAuth};

/// Why the secret could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Secrets Manager failed.
    #[error("Secrets Manager {arn}")]
    Fetch {
        /// The secret.
        arn: String,
        /// What it said.
        #[source]
        source: aztrail_state::BoxError,
    },
    /// The secret holds no string.
    #[error("Secrets Manager {arn}: the secret has no SecretString")]
    Empty {
        /// The secret.
        arn: String,
    },
    /// The secret's text is not credentials.
    #[error("Secrets Manager {arn}")]
    Shape {
        /// The secret.
        arn: String,
        /// Why.
        source: AuthError,
    },
}

/// Reads the Azure credentials in secret `arn` (JSON, or a bare connection string or SAS URL).
pub async fn auth_from_secret(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<AzureAuth, SecretError> {
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| SecretError::Fetch {
            arn: arn.to_string(),
            source: Box::new(e),
        })?;
    let text = out.secret_string().ok_or_else(|| SecretError::Empty {
        arn: arn.to_string(),
    })?;
    AzureAuth::from_secret(text).map_err(|source| SecretError::Shape {
        arn: arn.to_string(),
        source,
    })
}
