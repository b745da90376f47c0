//! The language server: standard LSP for config documents (diagnostics,
//! completion, hover) and the `mirrord/*` methods for editor extensions.

use std::sync::Arc;

use tower_lsp::jsonrpc;
use tower_lsp::lsp_types::*;
use tower_lsp::{Client, LanguageServer};

use super::assist;
use super::diagnostics;
use super::documents::{kind_of, Documents};
use super::line_index::LineIndex;
use super::prepare::{self, failed};
use super::protocol::{
    PrepareLaunchParams, PrepareLaunchResult, SessionEnded, SessionEndedParams, SessionList,
    SessionRef, TargetList,
};
use super::schema::Schema;
use super::sessions::Sessions;

pub struct Server {
    client: Client,
    documents: Documents,
    schema: Schema,
    pub sessions: Arc<Sessions>,
}

impl Server {
    pub fn new(client: Client, sessions: Arc<Sessions>) -> Self {
        Server {
            client,
            documents: Documents::default(),
            schema: Schema::default(),
            sessions,
        }
    }

    async fn publish(&self, uri: Url, version: Option<i32>) {
        let (Some(kind), Some(text)) = (kind_of(&uri), self.documents.get(&uri)) else {
            return;
        };
        let diagnostics = diagnostics::check(kind, &text);
        self.client
            .publish_diagnostics(uri, diagnostics, version)
            .await;
    }

    /// The document, its kind and the byte offset of `position` in it.
    fn locate(
        &self,
        uri: &Url,
        position: Position,
    ) -> Option<(super::documents::DocKind, String, usize)> {
        let kind = kind_of(uri)?;
        let text = self.documents.get(uri)?;
        let offset = LineIndex::new(&text).offset(position);
        Some((kind, text, offset))
    }

    pub async fn list_targets(&self) -> jsonrpc::Result<TargetList> {
        Ok(TargetList {
            targets: crate::target::list_local(),
        })
    }

    pub async fn prepare_launch(
        &self,
        params: PrepareLaunchParams,
    ) -> jsonrpc::Result<PrepareLaunchResult> {
        prepare::prepare_launch(&self.client, &self.sessions, params).await
    }

    pub async fn end_session(&self, params: SessionRef) -> jsonrpc::Result<Option<()>> {
        let sessions = self.sessions.clone();
        let id = params.session_id.clone();
        let ended = tokio::task::spawn_blocking(move || sessions.end(&id))
            .await
            .map_err(|e| failed(format!("ending the session failed: {e}")))?;
        ended.map_err(failed)?;
        self.client
            .send_notification::<SessionEnded>(SessionEndedParams {
                session_id: params.session_id,
                reason: "requested".into(),
            })
            .await;
        Ok(None)
    }

    pub async fn list_sessions(&self) -> jsonrpc::Result<SessionList> {
        Ok(SessionList {
            sessions: self.sessions.list(),
        })
    }
}

#[tower_lsp::async_trait]
impl LanguageServer for Server {
    async fn initialize(&self, _: InitializeParams) -> jsonrpc::Result<InitializeResult> {
        // Watch the sessions' intproxies: one gone means its debuggee exited.
        let sessions = self.sessions.clone();
        let client = self.client.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                for session_id in sessions.reap() {
                    client
                        .send_notification::<SessionEnded>(SessionEndedParams {
                            session_id,
                            reason: "debuggee exited".into(),
                        })
                        .await;
                }
            }
        });
        Ok(InitializeResult {
            capabilities: ServerCapabilities {
                text_document_sync: Some(TextDocumentSyncCapability::Kind(
                    TextDocumentSyncKind::FULL,
                )),
                completion_provider: Some(CompletionOptions {
                    trigger_characters: Some(vec!["\"".into(), ":".into()]),
                    ..Default::default()
                }),
                hover_provider: Some(HoverProviderCapability::Simple(true)),
                ..Default::default()
            },
            server_info: Some(ServerInfo {
                name: "mirrord ide".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
        })
    }

    async fn shutdown(&self) -> jsonrpc::Result<()> {
        let sessions = self.sessions.clone();
        let _ = tokio::task::spawn_blocking(move || sessions.end_all()).await;
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let document = params.text_document;
        self.documents.set(document.uri.clone(), document.text);
        self.publish(document.uri, Some(document.version)).await;
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        // Full sync: the last change holds the whole text.
        if let Some(change) = params.content_changes.into_iter().last() {
            let uri = params.text_document.uri;
            self.documents.set(uri.clone(), change.text);
            self.publish(uri, Some(params.text_document.version)).await;
        }
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let uri = params.text_document.uri;
        self.documents.close(&uri);
        self.client.publish_diagnostics(uri, Vec::new(), None).await;
    }

    async fn completion(
        &self,
        params: CompletionParams,
    ) -> jsonrpc::Result<Option<CompletionResponse>> {
        let at = params.text_document_position;
        let Some((kind, text, offset)) = self.locate(&at.text_document.uri, at.position) else {
            return Ok(None);
        };
        let items = assist::complete(&self.schema, kind, &text, offset);
        Ok((!items.is_empty()).then_some(CompletionResponse::Array(items)))
    }

    async fn hover(&self, params: HoverParams) -> jsonrpc::Result<Option<Hover>> {
        let at = params.text_document_position_params;
        let Some((kind, text, offset)) = self.locate(&at.text_document.uri, at.position) else {
            return Ok(None);
        };
        Ok(assist::hover(&self.schema, kind, &text, offset))
    }
}
