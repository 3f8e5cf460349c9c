//! The commands a person runs by hand: storing a first credential, and revoking after a leak.

use secrecy::SecretString;
use tracing::{info, warn};

use super::pass::{refresh_credential, Pass};
use super::report::{Failure, Outcome, Report};
use super::{Engine, Integration, RunOptions};
use crate::document::{
    OAuthClientDocument, RefreshTokenDocument, RefreshTokenSlot, Slot, TokenDocument,
};
use crate::error::SinkError;
use crate::sink::{Precondition, TokenSinkExt, Version};
use crate::source::{Credential, CredentialKind, RefreshGrant, SourceError};

/// What `bootstrap` stores in an integration's state location.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum BootstrapCredential {
    /// Refresh tokens: created with a password or pasted (stored exactly as pasted), and a
    /// standby when the integration keeps one.
    RefreshTokens {
        /// The token to mint from.
        primary: RefreshGrant,
        /// The second token, for `standby = true`.
        standby: Option<RefreshGrant>,
    },
    /// An OAuth 2.0 client application.
    OAuthClient {
        /// The client id.
        client_id: String,
        /// The client secret.
        client_secret: SecretString,
    },
}

impl Engine {
    /// Decides how a bootstrap may write the state location, before any credential is
    /// created: an empty location takes `Absent`; a location holding a credential that the
    /// source still accepts is refused unless `force`; a dead or unreadable one may be
    /// replaced (that is what bootstrap is for), with compare-and-set over the version read.
    pub async fn bootstrap_precondition(
        &self,
        integration: &Integration,
        force: bool,
    ) -> Result<Precondition, Failure> {
        let location = &integration.state;
        let stored = location
            .sink
            .read(&location.key)
            .await
            .map_err(|source| Failure::store("read the state location", location, source))?;
        let Some(stored) = stored else {
            return Ok(Precondition::Absent);
        };
        let replace = Precondition::Version(stored.version.clone());
        if force {
            return Ok(replace);
        }
        let (credential, expires_at) = match integration.credential_kind() {
            CredentialKind::OAuthClient => {
                match OAuthClientDocument::from_document(&stored.document) {
                    Ok(doc) => (
                        Credential::OAuthClient {
                            client_id: doc.client_id,
                            client_secret: doc.client_secret,
                        },
                        None,
                    ),
                    Err(_) => return Ok(replace),
                }
            }
            _ => match RefreshTokenDocument::from_document(&stored.document) {
                Ok(doc) => (refresh_credential(&doc), Some(doc.token_expires_at)),
                Err(_) => return Ok(replace),
            },
        };
        match integration.source.check(&credential).await {
            Ok(status) => Err(Failure::AlreadyBootstrapped {
                integration: integration.name.clone(),
                credential: integration.credential_kind(),
                location: location.label(),
                expires_at: status.expires_at.or(expires_at),
            }),
            Err(error) if error.is_credential_dead() => Ok(replace),
            Err(source) => Err(Failure::alation("check the stored credential", source)),
        }
    }

    /// Stores a credential obtained by `bootstrap` under `precondition` from
    /// [`Engine::bootstrap_precondition`]. Refresh tokens go to escrow first, so one that the
    /// state location refuses is kept, never dropped, and the next run stores it.
    pub async fn store_bootstrap(
        &self,
        integration: &Integration,
        credential: BootstrapCredential,
        precondition: Precondition,
    ) -> Result<Version, Failure> {
        let pass = Pass::new(self, integration, RunOptions::run());
        let location = &integration.state;
        match credential {
            BootstrapCredential::OAuthClient {
                client_id,
                client_secret,
            } => {
                let document = OAuthClientDocument {
                    client_id,
                    client_secret,
                    integration: integration.name.clone(),
                    stored_at: self.clock.now(),
                };
                pass.write_with_retry(location, &document, precondition)
                    .await
                    .map_err(|source| {
                        Failure::store("store the client credentials", location, source)
                    })
            }
            BootstrapCredential::RefreshTokens { primary, standby } => {
                for grant in std::iter::once(&primary).chain(standby.as_ref()) {
                    if let Some(configured) = integration.user_id {
                        if grant.user_id != configured {
                            return Err(Failure::UserMismatch {
                                integration: integration.name.clone(),
                                configured,
                                actual: grant.user_id,
                            });
                        }
                    }
                }
                let slot_of = |grant: &RefreshGrant| RefreshTokenSlot {
                    refresh_token: grant.refresh_token.clone(),
                    name: grant.name.clone(),
                    created_at: grant.created_at,
                    token_expires_at: grant.expires_at,
                    last_regenerated_at: None,
                };
                let replacing = matches!(precondition, Precondition::Version(_));
                let identity = integration.escrow_identity();
                let mut escrowed = None;
                if let Some(escrow) = &self.escrow {
                    for (slot, grant) in [
                        (Slot::Primary, Some(&primary)),
                        (Slot::Standby, standby.as_ref()),
                    ] {
                        if let Some(grant) = grant {
                            let path = pass.escrow_token(
                                escrow,
                                &identity,
                                slot,
                                &slot_of(grant),
                                replacing,
                            );
                            if slot == Slot::Primary {
                                escrowed = path;
                            }
                        }
                    }
                }
                let document = RefreshTokenDocument {
                    refresh_token: primary.refresh_token.clone(),
                    user_id: primary.user_id,
                    name: primary.name.clone(),
                    token_expires_at: primary.expires_at,
                    created_at: primary.created_at,
                    integration: integration.name.clone(),
                    last_regenerated_at: None,
                    standby: standby.as_ref().map(slot_of),
                    regenerating: None,
                    degraded: None,
                };
                match pass
                    .write_with_retry(location, &document, precondition)
                    .await
                {
                    Ok(version) => {
                        if let Some(escrow) = &self.escrow {
                            for slot in [Slot::Primary, Slot::Standby] {
                                pass.discard_escrow(escrow, &identity, slot);
                            }
                            let _ = escrow.remove_intent(&identity);
                        }
                        Ok(version)
                    }
                    Err(source) => Err(match escrowed {
                        Some(path) => Failure::RefreshEscrowed {
                            location: location.label(),
                            escrow: path.display().to_string(),
                            source,
                        },
                        None => Failure::store("store the refresh token", location, source),
                    }),
                }
            }
        }
    }

    /// Incident response: revokes every access token issued from the integration's
    /// credentials where the source can, issues a fresh one and pushes it everywhere, then
    /// checks that every destination holds a token issued after the revocation.
    pub async fn revoke(&self, integration: &Integration) -> Report {
        let mut pass = Pass::new(self, integration, RunOptions::run());
        let revoked = async {
            let credentials = match integration.credential_kind() {
                CredentialKind::OAuthClient => {
                    let stored = integration
                        .state
                        .sink
                        .read_as::<OAuthClientDocument>(&integration.state.key)
                        .await
                        .map_err(|source| {
                            Failure::store(
                                "read the client credentials",
                                &integration.state,
                                source,
                            )
                        })?
                        .ok_or_else(|| {
                            pass.needs_bootstrap("no client credentials are stored there".into())
                        })?;
                    vec![Credential::OAuthClient {
                        client_id: stored.document.client_id,
                        client_secret: stored.document.client_secret,
                    }]
                }
                _ => {
                    let stored = pass.read_refresh().await?.document;
                    let mut credentials = vec![refresh_credential(&stored)];
                    if let Some(standby) = &stored.standby {
                        credentials.push(Credential::RefreshToken {
                            refresh_token: standby.refresh_token.clone(),
                            user_id: stored.user_id,
                        });
                    }
                    credentials
                }
            };
            let mut unsupported = false;
            for credential in &credentials {
                match integration.source.revoke(credential).await {
                    Ok(detail) => info!(%detail, "revoked the access tokens of the integration"),
                    Err(SourceError::Unsupported { .. }) => unsupported = true,
                    Err(source) => {
                        return Err(Failure::alation("revoke the access tokens", source))
                    }
                }
            }
            Ok(unsupported)
        }
        .await;
        let unsupported = match revoked {
            Ok(unsupported) => unsupported,
            Err(failure) => {
                warn!(error = %failure, "revocation failed");
                pass.report.outcome = Outcome::Failed(failure);
                return pass.report;
            }
        };
        let mut report = self
            .run_one(integration, RunOptions::run().force(true))
            .await;
        if unsupported {
            report.warnings.push(
                "this token source cannot revoke the access tokens it issued (OAuth 2.0 client \
                 credentials): they stay valid until they expire, at most the client's token \
                 lifetime. A new token was issued and delivered; to cut a leaked token off \
                 sooner, rotate or revoke the client application's secret in Alation, then run \
                 `alation-rotator bootstrap NAME --oauth-client-id ID --client-secret-stdin`"
                    .into(),
            );
            return report;
        }
        if let (Outcome::Rotated, Some(minted_at)) = (&report.outcome, report.access_created_at) {
            if let Err(failure) = verify_revocation(integration, minted_at).await {
                report.outcome = Outcome::Failed(failure);
            }
        }
        report
    }
}

/// Every destination must hold a token issued at or after `minted_at` (the first token
/// issued after the revocation).
async fn verify_revocation(
    integration: &Integration,
    minted_at: jiff::Timestamp,
) -> Result<(), Failure> {
    for location in &integration.access_token {
        let stored = location
            .sink
            .read_as::<crate::document::AccessTokenDocument>(&location.key)
            .await
            .map_err(|source: SinkError| {
                Failure::store(
                    "read back the access token after revoking",
                    location,
                    source,
                )
            })?;
        match stored {
            Some(stored) if stored.document.created_at >= minted_at => {}
            Some(stored) => {
                return Err(Failure::RevocationNotVerified {
                    location: location.label(),
                    created_at: stored.document.created_at,
                })
            }
            None => {
                return Err(Failure::ReadBack {
                    location: location.label(),
                })
            }
        }
    }
    Ok(())
}
