//! The `__metadata__` keys of format version 1 and their parsing.

use std::collections::HashMap;

use serde::de::DeserializeOwned;

use crate::error::{ModelError, Result};
use crate::graph::{Graph, RawGraph};
use crate::spec::{InputSpec, OutputSpec, Provenance};

/// The format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// Metadata key names.
pub mod keys {
    /// Format version (`"1"`).
    pub const FORMAT: &str = "outpost.format";
    /// Graph JSON.
    pub const GRAPH: &str = "outpost.graph";
    /// Input specs JSON.
    pub const INPUTS: &str = "outpost.inputs";
    /// Output specs JSON.
    pub const OUTPUTS: &str = "outpost.outputs";
    /// Class labels JSON.
    pub const LABELS: &str = "outpost.labels";
    /// Provenance JSON.
    pub const PROVENANCE: &str = "outpost.provenance";
    /// Model name.
    pub const NAME: &str = "outpost.name";
    /// Model version.
    pub const VERSION: &str = "outpost.version";
}

/// Everything the metadata says, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelMeta {
    /// Model name, if given.
    pub name: Option<String>,
    /// Model version, if given.
    pub version: Option<String>,
    /// The graph, nodes in topological order.
    pub graph: Graph,
    /// Input specs.
    pub inputs: Vec<InputSpec>,
    /// Output specs.
    pub outputs: Vec<OutputSpec>,
    /// Class labels (empty when none).
    pub labels: Vec<String>,
    /// Provenance, if given.
    pub provenance: Option<Provenance>,
}

/// The metadata before the graph is checked against the tensors.
#[derive(Debug)]
pub(crate) struct RawMeta {
    pub name: Option<String>,
    pub version: Option<String>,
    pub graph: RawGraph,
    pub inputs: Vec<InputSpec>,
    pub outputs: Vec<OutputSpec>,
    pub labels: Vec<String>,
    pub provenance: Option<Provenance>,
}

fn required<'a>(map: &'a HashMap<String, String>, key: &'static str) -> Result<&'a str> {
    map.get(key)
        .map(String::as_str)
        .ok_or(ModelError::MissingMetadata { key })
}

fn json<T: DeserializeOwned>(key: &'static str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| ModelError::InvalidMetadata {
        key,
        reason: e.to_string(),
    })
}

/// Check the version and parse every key. `map` is `None` when the file has no `__metadata__`.
pub(crate) fn parse(map: Option<&HashMap<String, String>>) -> Result<RawMeta> {
    let map = map.ok_or(ModelError::MissingMetadata { key: keys::FORMAT })?;
    let version = required(map, keys::FORMAT)?;
    if version.trim().parse::<u32>().ok() != Some(FORMAT_VERSION) {
        return Err(ModelError::UnsupportedVersion {
            found: version.chars().take(40).collect(),
            supported: FORMAT_VERSION,
        });
    }
    let graph = json(keys::GRAPH, required(map, keys::GRAPH)?)?;
    let inputs = json(keys::INPUTS, required(map, keys::INPUTS)?)?;
    let outputs = json(keys::OUTPUTS, required(map, keys::OUTPUTS)?)?;
    let labels = match map.get(keys::LABELS) {
        Some(t) => json(keys::LABELS, t)?,
        None => Vec::new(),
    };
    let provenance: Option<Provenance> = match map.get(keys::PROVENANCE) {
        Some(t) => Some(json(keys::PROVENANCE, t)?),
        None => None,
    };
    if let Some(sha) = provenance.as_ref().and_then(|p| p.source_sha256.as_deref())
        && (sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(ModelError::InvalidMetadata {
            key: keys::PROVENANCE,
            reason: "source_sha256 must be 64 hex digits".into(),
        });
    }
    Ok(RawMeta {
        name: map.get(keys::NAME).cloned(),
        version: map.get(keys::VERSION).cloned(),
        graph,
        inputs,
        outputs,
        labels,
        provenance,
    })
}
