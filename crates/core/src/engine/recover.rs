//! Escrow recovery at the start of each run: a refresh token that reached the escrow but not
//! the state location (a crash, a store outage, a failed bootstrap) is stored first.

use secrecy::ExposeSecret;
use tracing::{info, warn};

use super::escrow::{Escrow, EscrowIdentity, EscrowedToken};
use super::pass::Pass;
use super::regenerate::fingerprint;
use super::report::Failure;
use crate::document::{RefreshTokenDocument, RefreshTokenSlot, Slot};
use crate::sink::{Precondition, TokenSinkExt};
use crate::source::Credential;

impl Pass<'_> {
    /// Stores every token the escrow holds for this integration, where that is safe.
    pub(super) async fn recover(&mut self) -> Result<(), Failure> {
        let Some(escrow) = self.engine.escrow.clone() else {
            return Ok(());
        };
        let identity = self.integration.escrow_identity();
        let contents = escrow
            .contents(&identity)
            .map_err(|source| Failure::Escrow { source })?;
        for path in &contents.mismatched {
            self.report.warnings.push(format!(
                "{} is named for this integration but records another Alation, user or state \
                 location; it was left alone",
                path.display()
            ));
        }
        if let Some(path) = contents.unreadable_raw.first() {
            self.unreadable_raw = Some(path.display().to_string());
        }
        for token in contents.tokens {
            self.recover_token(&escrow, &identity, token).await?;
        }
        Ok(())
    }

    async fn recover_token(
        &mut self,
        escrow: &Escrow,
        identity: &EscrowIdentity,
        token: EscrowedToken,
    ) -> Result<(), Failure> {
        let location = self.integration.state.clone();
        let stored = location
            .sink
            .read_as::<RefreshTokenDocument>(&location.key)
            .await
            .map_err(|source| {
                Failure::store(
                    "read the refresh token before recovering escrow",
                    &location,
                    source,
                )
            })?;
        let slot = token.slot;
        if let Some(stored) = &stored {
            let held = stored.document.slot(slot);
            if held.is_some_and(|h| {
                h.refresh_token.expose_secret() == token.refresh_token.expose_secret()
            }) {
                info!(%slot, "the escrowed refresh token is already stored; setting the escrow copy aside");
                self.discard_escrow(escrow, identity, slot);
                if stored
                    .document
                    .regenerating
                    .as_ref()
                    .is_some_and(|i| i.slot == slot)
                {
                    self.clear_intent(stored.clone()).await;
                }
                return Ok(());
            }
        }
        let user_id = stored
            .as_ref()
            .map(|s| s.document.user_id)
            .or(self.integration.user_id)
            .unwrap_or_default();
        let source = std::sync::Arc::clone(&self.integration.source);
        let credential = |secret: &secrecy::SecretString| Credential::RefreshToken {
            refresh_token: secret.clone(),
            user_id,
        };
        let status = match source.check(&credential(&token.refresh_token)).await {
            Ok(status) => status,
            Err(error) if error.is_credential_dead() => {
                warn!(%error, path = %token.path.display(), "the escrowed refresh token no longer works; setting it aside");
                if let Err(error) = escrow.discard(&token.path, self.now()) {
                    warn!(%error, "could not set the escrow file aside");
                }
                return Ok(());
            }
            Err(error) => {
                return Err(Failure::alation("check the escrowed refresh token", error));
            }
        };
        let may_replace = match &stored {
            None => true,
            Some(stored) => match stored.document.slot(slot) {
                None => true,
                Some(held) => {
                    let intent_names_held =
                        stored.document.regenerating.as_ref().is_some_and(|i| {
                            i.slot == slot
                                && fingerprint(&i.salt, &held.refresh_token) == i.fingerprint
                        });
                    intent_names_held
                        || token.replace_live
                        || match source.check(&credential(&held.refresh_token)).await {
                            Ok(_) => false,
                            Err(error) if error.is_credential_dead() => true,
                            Err(error) => {
                                return Err(Failure::alation(
                                    "check the stored refresh token before recovering escrow",
                                    error,
                                ))
                            }
                        }
                }
            },
        };
        if !may_replace {
            self.report.warnings.push(format!(
                "escrow holds a working {slot} refresh token ({}) but the state location {} holds \
                 a different one that works too; it was left in escrow. To use it instead, store \
                 it with `alation-rotator bootstrap {} --refresh-token-stdin --force`; otherwise \
                 move the file away",
                token.path.display(),
                location.label(),
                self.integration.name
            ));
            return Ok(());
        }
        info!(%slot, "recovering the refresh token kept in escrow");
        let now = self.now();
        let recovered = RefreshTokenSlot {
            refresh_token: token.refresh_token.clone(),
            name: status
                .name
                .clone()
                .or(token.name.clone())
                .unwrap_or_else(|| self.integration.name.clone()),
            created_at: status.created_at.or(token.created_at).unwrap_or(now),
            token_expires_at: status.expires_at.or(token.token_expires_at).unwrap_or(now),
            last_regenerated_at: None,
        };
        let (document, precondition) = match &stored {
            Some(stored) => {
                let mut document = stored.document.clone();
                document.set_slot(slot, recovered);
                if document
                    .regenerating
                    .as_ref()
                    .is_some_and(|i| i.slot == slot)
                {
                    document.regenerating = None;
                }
                (document, Precondition::Version(stored.version.clone()))
            }
            None => (
                RefreshTokenDocument {
                    refresh_token: recovered.refresh_token,
                    user_id,
                    name: recovered.name,
                    token_expires_at: recovered.token_expires_at,
                    created_at: recovered.created_at,
                    integration: self.integration.name.clone(),
                    last_regenerated_at: None,
                    standby: None,
                    regenerating: None,
                    degraded: None,
                },
                Precondition::Absent,
            ),
        };
        match self
            .write_with_retry(&location, &document, precondition)
            .await
        {
            Ok(_) => {}
            Err(error) if error.is_conflict() && self.slot_holds(slot, &token).await => {}
            Err(source) => {
                return Err(Failure::RefreshEscrowed {
                    location: location.label(),
                    escrow: token.path.display().to_string(),
                    source,
                })
            }
        }
        self.discard_escrow(escrow, identity, slot);
        if slot == Slot::Primary {
            let _ = escrow.remove_intent(identity);
        }
        self.report.escrow_recovered = true;
        info!(%slot, "refresh token recovered from escrow");
        Ok(())
    }

    /// Whether the state document now holds `token` in `slot` (another runner stored it).
    async fn slot_holds(&self, slot: Slot, token: &EscrowedToken) -> bool {
        self.read_refresh().await.is_ok_and(|stored| {
            stored.document.slot(slot).is_some_and(|held| {
                held.refresh_token.expose_secret() == token.refresh_token.expose_secret()
            })
        })
    }
}
