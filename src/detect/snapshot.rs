//! What the engine has learned, as plain data: what a state file stores and a restart restores.
//!
//! The file format lives in `store::templates_file`; the engine only fills and reads these.

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub embedder: String,
    pub dim: u32,
    pub records: u64,
    pub epoch_records: u64,
    pub threshold: f32,
    /// Normal lines were learned from a baseline (`learn`) or acknowledged by an operator: a
    /// new template is then evidence by itself. Absent in files of earlier versions.
    #[serde(default)]
    pub baseline: bool,
    pub templates: Vec<SavedTemplate>,
    /// What the values of each template position looked like: kept in a file of its own
    /// (`values.tls`, see `store::values_file`), not in this one's JSON.
    #[serde(skip)]
    pub values: Option<crate::detect::values::Saved>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct SavedTemplate {
    pub id: u32,
    pub text: String,
    pub count: u64,
    pub epochs_seen: u32,
    pub first_seen: u64,
    pub last_seen: u64,
    pub established: bool,
    pub distance: f32,
    /// Most severe level seen (0..1); absent in files of earlier versions.
    #[serde(default)]
    pub level_severity: f32,
    /// Some record carried a level; absent in files of earlier versions.
    #[serde(default)]
    pub has_level: bool,
    /// Acknowledged as normal by an operator (`acks.tls` is the source; this is what was applied).
    #[serde(default)]
    pub acked: bool,
    /// Record time of the first sighting, when records carry one.
    #[serde(default)]
    pub first_time: Option<i64>,
}
