//! The arguments of the attach and detach jobs, as the API validates and the queue stores them.
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

use crate::azure::{ClusterId, IdError, RegistryId, RegistryName};

/// A registry given by ARM id (any subscription) or by bare name (searched in the configured
/// subscriptions). Registry names are globally unique, so both forms name one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryRef {
    Id(RegistryId),
    Name(RegistryName),
}

impl RegistryRef {
    pub fn name(&self) -> String {
        match self {
            RegistryRef::Id(id) => id.name().to_string(),
            RegistryRef::Name(n) => n.as_str().to_string(),
        }
    }
}

impl std::str::FromStr for RegistryRef {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let s = s.trim();
        if s.starts_with('/') {
            s.parse().map(RegistryRef::Id)
        } else {
            s.parse().map(RegistryRef::Name)
        }
    }
}

impl fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryRef::Id(id) => write!(f, "{id}"),
            RegistryRef::Name(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for RegistryRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RegistryRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Arguments of `attach` and `detach`: one cluster, one registry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairArgs {
    pub cluster: ClusterId,
    pub registry: RegistryRef,
}

impl PairArgs {
    /// Jobs of one pair run one at a time, in order, whichever way the registry was named.
    pub fn target_key(&self) -> String {
        format!(
            "{}|acr:{}",
            self.cluster.lower_key(),
            self.registry.name().to_ascii_lowercase()
        )
    }
}
