//! Load options, what a load found wrong, and why a load failed.
//!
//! A road file is hand-made or exported from OSM, so it is expected to have
//! flaws. Each flaw becomes a [`LoadIssue`] naming the feature; the feature is
//! skipped and the rest still loads, unless the operator asked for
//! `strict = true`, in which case any [`IssueLevel::Error`] rejects the whole
//! file (all problems listed at once, so one edit pass can fix them).

use std::fmt;

/// How to load a road network. Config keys `roads.max_snap_m`, `roads.strict`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    /// Farthest a point may be from a centre line and still be "on" that
    /// road, metres. Default 100 (issue 3).
    pub max_snap_m: f64,
    /// Reject the file when any feature is bad instead of skipping it.
    pub strict: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            max_snap_m: 100.0,
            strict: false,
        }
    }
}

/// How bad an issue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IssueLevel {
    /// Worth knowing, nothing wrong with the file: an unknown `kind`, an OSM
    /// chain whose stakes had to be guessed. Never rejects a load.
    Note,
    /// A bad feature that was skipped (or rejects the load when strict).
    Error,
}

/// One problem found while loading.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadIssue {
    pub level: IssueLevel,
    /// Index of the feature in the file's `features` array, when one feature
    /// is to blame.
    pub feature: Option<usize>,
    pub message: String,
}

impl fmt::Display for LoadIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            IssueLevel::Note => "note",
            IssueLevel::Error => "error",
        };
        match self.feature {
            Some(i) => write!(f, "{level}: feature {i}: {}", self.message),
            None => write!(f, "{level}: {}", self.message),
        }
    }
}

/// Why a load failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("invalid load options: {0}")]
    Options(String),
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a GeoJSON FeatureCollection: {0}")]
    NotGeoJson(String),
    #[error("rejected (strict): {} problem(s): {}", .0.len(), join_issues(.0))]
    Rejected(Vec<LoadIssue>),
}

fn join_issues(issues: &[LoadIssue]) -> String {
    const SHOWN: usize = 20;
    let mut text = issues
        .iter()
        .take(SHOWN)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join("; ");
    if issues.len() > SHOWN {
        text.push_str(&format!("; … and {} more", issues.len() - SHOWN));
    }
    text
}

/// Collects issues during a load.
#[derive(Debug, Default)]
pub(crate) struct Issues {
    list: Vec<LoadIssue>,
}

impl Issues {
    pub(crate) fn error(&mut self, feature: usize, message: impl Into<String>) {
        self.list.push(LoadIssue {
            level: IssueLevel::Error,
            feature: Some(feature),
            message: message.into(),
        });
    }

    pub(crate) fn note(&mut self, feature: Option<usize>, message: impl Into<String>) {
        self.list.push(LoadIssue {
            level: IssueLevel::Note,
            feature,
            message: message.into(),
        });
    }

    pub(crate) fn general_error(&mut self, message: impl Into<String>) {
        self.list.push(LoadIssue {
            level: IssueLevel::Error,
            feature: None,
            message: message.into(),
        });
    }

    pub(crate) fn has_errors(&self) -> bool {
        self.list.iter().any(|i| i.level == IssueLevel::Error)
    }

    pub(crate) fn into_vec(self) -> Vec<LoadIssue> {
        self.list
    }
}
