//! The service's own LSP methods, beside the standard ones: their names
//! and their parameter and result shapes. Editor extensions keep their
//! copies of these types in one file that points here.
//!
//! | method | direction | params | result |
//! |---|---|---|---|
//! | `mirrord/listTargets` | request | none | [`TargetList`] |
//! | `mirrord/prepareLaunch` | request | [`PrepareLaunchParams`] | [`PrepareLaunchResult`] |
//! | `mirrord/endSession` | request | [`SessionRef`] | `null` |
//! | `mirrord/sessions` | request | none | [`SessionList`] |
//! | `mirrord/pickTarget` | server → client request | [`TargetList`] | [`PickTargetResult`] |
//! | `mirrord/progress` | notification (server → client) | [`ProgressParams`] | |
//! | `mirrord/sessionEnded` | notification (server → client) | [`SessionEndedParams`] | |

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tower_lsp::lsp_types::notification::Notification;
use tower_lsp::lsp_types::request::Request;

use crate::target::TargetInfo;

pub const LIST_TARGETS: &str = "mirrord/listTargets";
pub const PREPARE_LAUNCH: &str = "mirrord/prepareLaunch";
pub const END_SESSION: &str = "mirrord/endSession";
pub const SESSIONS: &str = "mirrord/sessions";

/// The targets a user can pick on this machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetList {
    pub targets: Vec<TargetInfo>,
}

/// A resolved debug configuration (variables substituted) and the
/// workspace folder it belongs to (a path or a `file://` URI).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrepareLaunchParams {
    pub configuration: Map<String, Value>,
    #[serde(default)]
    pub workspace_folder: Option<String>,
}

/// The configuration to launch instead, and the session it runs in
/// (`None` when the configuration said `"mirrord": false`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrepareLaunchResult {
    pub configuration: Map<String, Value>,
    pub session_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRef {
    pub session_id: String,
}

/// One session the service started.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    pub session_id: String,
    /// `pid/123` or `targetless`.
    pub target: String,
    /// The session's intproxy (it owns the agent).
    pub pid: u32,
    /// When it started, in milliseconds since the Unix epoch.
    pub since: u64,
    /// `running` or `ended`.
    pub state: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionList {
    pub sessions: Vec<SessionInfo>,
}

/// The editor's answer to `mirrord/pickTarget`: `None` when the user
/// cancelled.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PickTargetResult {
    pub target: Option<String>,
}

/// `mirrord/pickTarget`: the service asks the editor for a target.
pub enum PickTarget {}

impl Request for PickTarget {
    type Params = TargetList;
    type Result = PickTargetResult;
    const METHOD: &'static str = "mirrord/pickTarget";
}

/// One step while a session starts; `done` on the last one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProgressParams {
    /// Which `prepareLaunch` this is about (one id per call).
    pub id: String,
    pub message: String,
    pub done: bool,
}

/// `mirrord/progress`.
pub enum Progress {}

impl Notification for Progress {
    type Params = ProgressParams;
    const METHOD: &'static str = "mirrord/progress";
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionEndedParams {
    pub session_id: String,
    /// Why: `requested`, `debuggee exited`, `editor closed`.
    pub reason: String,
}

/// `mirrord/sessionEnded`: a session is over (the extension can drop its
/// status).
pub enum SessionEnded {}

impl Notification for SessionEnded {
    type Params = SessionEndedParams;
    const METHOD: &'static str = "mirrord/sessionEnded";
}
