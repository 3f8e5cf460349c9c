//! `max_concurrency` bounds the calls to the token source (Alation) in flight, not the
//! integrations: each integration's store reads and writes then overlap with other
//! integrations' calls instead of holding a slot while the source sits idle.

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::source::{
    Credential, CredentialStatus, IssuedToken, KeepRaw, RefreshGrant, SourceCapabilities,
    SourceError, TokenSource,
};

/// A source whose calls each hold a permit of the engine's gate.
#[derive(Debug)]
pub(super) struct GatedSource {
    pub(super) inner: Arc<dyn TokenSource>,
    pub(super) gate: Arc<Semaphore>,
}

impl GatedSource {
    async fn permit(&self) -> SemaphorePermit<'_> {
        self.gate
            .acquire()
            .await
            .expect("the engine never closes its gate")
    }
}

#[async_trait]
impl TokenSource for GatedSource {
    fn base_url(&self) -> String {
        self.inner.base_url()
    }

    fn capabilities(&self) -> SourceCapabilities {
        self.inner.capabilities()
    }

    async fn issue(&self, credential: &Credential) -> Result<IssuedToken, SourceError> {
        let _permit = self.permit().await;
        self.inner.issue(credential).await
    }

    async fn check(&self, credential: &Credential) -> Result<CredentialStatus, SourceError> {
        let _permit = self.permit().await;
        self.inner.check(credential).await
    }

    async fn validate_access(
        &self,
        credential: &Credential,
        access_token: &SecretString,
    ) -> Result<(), SourceError> {
        let _permit = self.permit().await;
        self.inner.validate_access(credential, access_token).await
    }

    async fn regenerate(
        &self,
        credential: &Credential,
        keep_raw: KeepRaw<'_>,
    ) -> Result<RefreshGrant, SourceError> {
        let _permit = self.permit().await;
        self.inner.regenerate(credential, keep_raw).await
    }

    async fn revoke(&self, credential: &Credential) -> Result<String, SourceError> {
        let _permit = self.permit().await;
        self.inner.revoke(credential).await
    }
}
