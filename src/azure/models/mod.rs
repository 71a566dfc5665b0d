//! Typed views of the ARM and Graph resources the service reads and writes.
//!
//! Only the fields the attach/detach logic needs are kept; unknown fields are ignored so new
//! api-versions don't break decoding. Ids inside responses stay strings (ARM echoes them in
//! whatever form it likes); parse them with the `ids` types where a URL is needed.
//! The public types are flat and serialisable so job handlers can store them.

use serde::Deserialize;

/// A `{value, nextLink}` page of an ARM list.
#[derive(Debug, Deserialize)]
pub(crate) struct ArmPage<T> {
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    #[serde(rename = "nextLink", default)]
    pub next_link: Option<String>,
}

/// A `{value, @odata.nextLink}` page of a Graph list.
#[derive(Debug, Deserialize)]
pub(crate) struct GraphPage<T> {
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    #[serde(rename = "@odata.nextLink", default)]
    pub next_link: Option<String>,
}

mod cluster;
mod graph;
mod identity;
mod registry;
mod role_assignment;
mod role_definition;
#[cfg(test)]
mod tests;

pub use cluster::*;
pub use graph::*;
pub use identity::*;
pub use registry::*;
pub use role_assignment::*;
pub use role_definition::*;
