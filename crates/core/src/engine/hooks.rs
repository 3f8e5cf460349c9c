//! Named points in a rotation that an observer can see the engine pass.
//!
//! Production code installs [`NoHooks`]. Crash-safety tests install hooks that stop the
//! process at a point, so a test can kill it with SIGKILL exactly there; that hook lives
//! with the binary's test support, not here.

use std::fmt::Debug;

use async_trait::async_trait;

/// The points, in the order a rotation passes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Checkpoint {
    /// The intent record is written; the regeneration request is about to be sent.
    BeforeRegen,
    /// Alation answered the regeneration; the raw answer is in escrow, the parsed token not
    /// yet.
    AfterRegen,
    /// The parsed token is in escrow, not yet in its state location.
    AfterEscrow,
    /// The regenerated token is in its state location.
    AfterPersistRefresh,
    /// A new access token is minted, not yet written anywhere.
    AfterMint,
    /// The access token is written to the first destination.
    AfterFirstWrite,
}

impl Checkpoint {
    /// Every point, in order.
    pub const ALL: [Checkpoint; 6] = [
        Checkpoint::BeforeRegen,
        Checkpoint::AfterRegen,
        Checkpoint::AfterEscrow,
        Checkpoint::AfterPersistRefresh,
        Checkpoint::AfterMint,
        Checkpoint::AfterFirstWrite,
    ];

    /// The point's name, e.g. `after-regen`.
    pub fn name(self) -> &'static str {
        match self {
            Checkpoint::BeforeRegen => "before-regen",
            Checkpoint::AfterRegen => "after-regen",
            Checkpoint::AfterEscrow => "after-escrow",
            Checkpoint::AfterPersistRefresh => "after-persist-refresh",
            Checkpoint::AfterMint => "after-mint",
            Checkpoint::AfterFirstWrite => "after-first-write",
        }
    }
}

/// Sees the engine pass each [`Checkpoint`].
#[async_trait]
pub trait Hooks: Send + Sync + Debug {
    /// Called as the engine passes `point`; the engine waits for it to return.
    async fn reached(&self, point: Checkpoint);
}

/// Hooks that do nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHooks;

#[async_trait]
impl Hooks for NoHooks {
    async fn reached(&self, _point: Checkpoint) {}
}
