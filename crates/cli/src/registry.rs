//! Store types: what a `[stores.NAME]` block with `type = "..."` becomes.
//!
//! Every store, built-in or yours, is a [`StoreType`] registered with
//! [`App::with_store`](crate::App::with_store). The runner reads the block, hands it to the
//! store type's `Config` (serde, unknown keys refused), validates it offline, checks each key
//! an integration names, and builds the [`TokenSink`] without touching the network.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use rotator_core::{ConfigError, SinkError, TokenSink};
use serde::de::DeserializeOwned;

/// A kind of secret store the runner can use.
///
/// ```
/// use std::sync::Arc;
///
/// use alation_rotator::StoreType;
/// use rotator_core::{ConfigError, MemorySink, SinkError, TokenSink};
///
/// /// `[stores.NAME]` with `type = "memory"`: documents kept in memory (for tests).
/// struct Memory;
///
/// #[derive(Debug, serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct MemoryConfig {
///     /// A label shown in messages.
///     label: String,
/// }
///
/// impl StoreType for Memory {
///     const TYPE: &'static str = "memory";
///     type Config = MemoryConfig;
///
///     fn validate(config: &MemoryConfig) -> Result<(), ConfigError> {
///         if config.label.is_empty() {
///             return Err(ConfigError::new("label", "must not be empty"));
///         }
///         Ok(())
///     }
///
///     async fn build(_config: &MemoryConfig) -> Result<Arc<dyn TokenSink>, SinkError> {
///         Ok(Arc::new(MemorySink::new()))
///     }
/// }
///
/// let app = alation_rotator::App::new().with_store::<Memory>();
/// # let _ = app;
/// ```
pub trait StoreType: Send + Sync + 'static {
    /// The value of `type` that selects this store, e.g. `"vault"`.
    const TYPE: &'static str;

    /// The settings of the block besides `type`. Derive `Deserialize` with
    /// `#[serde(deny_unknown_fields)]`, document every field (it is user documentation) and
    /// write `Debug` by hand if a field could ever hold a secret.
    type Config: DeserializeOwned + Debug + Send + Sync + 'static;

    /// Keys of the block that would hold a secret if written inline. The runner refuses a
    /// string there and points at `KEY_env` / `KEY_file` instead, without repeating the
    /// value.
    const SECRET_KEYS: &'static [&'static str] = &[];

    /// Offline checks of the settings: no network, no environment, no files. The error names
    /// the key (relative to the block) and what is expected.
    fn validate(config: &Self::Config) -> Result<(), ConfigError>;

    /// Offline check that an integration's `key` is acceptable to this store; the default
    /// accepts any key. Return [`SinkError::InvalidKey`] with the store's rule.
    fn validate_key(config: &Self::Config, key: &str) -> Result<(), SinkError> {
        let _ = (config, key);
        Ok(())
    }

    /// Builds the store from validated settings, without network access (connections happen
    /// in the sink's methods).
    fn build(
        config: &Self::Config,
    ) -> impl Future<Output = Result<Arc<dyn TokenSink>, SinkError>> + Send;
}

/// A boxed future, for the type-erased side of the registry.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A parsed `[stores.NAME]` block.
pub(crate) trait StoreSettings: Debug + Send + Sync {
    fn validate(&self) -> Result<(), ConfigError>;
    fn validate_key(&self, key: &str) -> Result<(), SinkError>;
    fn build(&self) -> BoxFuture<'_, Result<Arc<dyn TokenSink>, SinkError>>;
}

struct Settings<T: StoreType>(T::Config);

impl<T: StoreType> Debug for Settings<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple(T::TYPE).field(&self.0).finish()
    }
}

impl<T: StoreType> StoreSettings for Settings<T> {
    fn validate(&self) -> Result<(), ConfigError> {
        T::validate(&self.0)
    }

    fn validate_key(&self, key: &str) -> Result<(), SinkError> {
        T::validate_key(&self.0, key)
    }

    fn build(&self) -> BoxFuture<'_, Result<Arc<dyn TokenSink>, SinkError>> {
        Box::pin(T::build(&self.0))
    }
}

/// What the registry knows of a store type without its settings.
trait Parser: Send + Sync {
    fn parse(&self, table: toml::Table) -> Result<Arc<dyn StoreSettings>, toml::de::Error>;
    fn secret_keys(&self) -> &'static [&'static str];
}

struct TypeParser<T>(std::marker::PhantomData<fn() -> T>);

impl<T: StoreType> Parser for TypeParser<T> {
    fn parse(&self, table: toml::Table) -> Result<Arc<dyn StoreSettings>, toml::de::Error> {
        let config: T::Config = toml::Value::Table(table).try_into()?;
        Ok(Arc::new(Settings::<T>(config)))
    }

    fn secret_keys(&self) -> &'static [&'static str] {
        T::SECRET_KEYS
    }
}

/// The store types an [`App`](crate::App) knows, by their `type` string.
#[derive(Clone, Default)]
pub(crate) struct Registry {
    types: BTreeMap<&'static str, Arc<dyn Parser>>,
}

impl Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.types.keys()).finish()
    }
}

/// The built-in store types and the cargo feature each needs, for the error a build without
/// one gives.
const BUILT_IN: [(&str, &str); 4] = [
    ("file", "file"),
    ("vault", "vault"),
    ("aws_secrets_manager", "aws"),
    ("exec", "exec"),
];

impl Registry {
    pub(crate) fn register<T: StoreType>(&mut self) {
        self.types
            .insert(T::TYPE, Arc::new(TypeParser::<T>(std::marker::PhantomData)));
    }

    /// Every key any store type calls secret.
    pub(crate) fn secret_keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.types
            .values()
            .flat_map(|t| t.secret_keys().iter().copied())
    }

    /// Parses a block whose `type` is `kind`. `Err` holds a message (never a value).
    pub(crate) fn parse(
        &self,
        kind: &str,
        table: toml::Table,
    ) -> Result<Arc<dyn StoreSettings>, ParseError> {
        let Some(parser) = self.types.get(kind) else {
            if let Some((_, feature)) = BUILT_IN.iter().find(|(name, _)| *name == kind) {
                return Err(ParseError::Type(format!(
                    "this alation-rotator was built without the `{feature}` feature; rebuild \
                     with `--features {feature}` (release builds have every store)"
                )));
            }
            let known: Vec<&str> = self.types.keys().copied().collect();
            return Err(ParseError::Type(format!(
                "unknown store type {kind:?}; expected one of: {}",
                known.join(", ")
            )));
        };
        parser.parse(table).map_err(ParseError::Settings)
    }
}

/// Why a `[stores.NAME]` block did not parse.
pub(crate) enum ParseError {
    /// The `type` is unknown or compiled out.
    Type(String),
    /// The settings do not fit the type's `Config`.
    Settings(toml::de::Error),
}
