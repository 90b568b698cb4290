//! Authoring: validating workflow definitions and storing them as immutable versions.

use super::{Engine, EngineError, page};
use crate::domain::definition::WorkflowDefinition;
use crate::domain::records::{Page, Tenant, WorkflowSummary, WorkflowVersion};
use crate::domain::validate::{ValidationError, validate};
use crate::store::{StoreError, workflows};

/// Attempts at storing a version before giving up on concurrent writers.
const PUT_ATTEMPTS: usize = 5;

/// What PutWorkflow did.
#[derive(Debug, Clone)]
pub struct PutOutcome {
    pub workflow: WorkflowVersion,
    /// False when the content equals the latest version, which is returned.
    pub created: bool,
}

impl Engine {
    /// Validates `def` and stores it as the next version of its workflow, unless it
    /// equals the latest version (compared by content hash), which is then returned.
    pub async fn put_workflow(&self, tenant: &Tenant, def: &WorkflowDefinition) -> Result<PutOutcome, EngineError> {
        let valid = validate(def).map_err(EngineError::InvalidDefinition)?;
        let name = valid.definition.name.as_str();
        for _ in 0..PUT_ATTEMPTS {
            let txn = self.store.begin().await?;
            let latest = workflows::latest(&txn, tenant, name).await?;
            if let Some(latest) = latest.as_ref().filter(|l| l.content_hash == valid.content_hash) {
                return Ok(PutOutcome { workflow: latest.clone(), created: false });
            }
            let version = latest.map_or(1, |l| l.version + 1);
            let now = self.now();
            let new = workflows::NewVersion {
                name,
                version,
                description: &valid.definition.description,
                content_hash: &valid.content_hash,
                canonical_json: &valid.canonical_json,
                task_count: u32::try_from(valid.tasks.len()).unwrap_or(u32::MAX),
                now,
            };
            match workflows::insert(&txn, tenant, &new).await {
                Ok(()) => {
                    txn.commit().await.map_err(StoreError::from)?;
                    let workflow = WorkflowVersion {
                        name: name.to_owned(),
                        version,
                        definition: valid.definition.clone(),
                        content_hash: valid.content_hash.clone(),
                        created_at: now,
                    };
                    return Ok(PutOutcome { workflow, created: true });
                }
                // Another writer stored this version first: look again.
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::FailedPrecondition(format!("workflow {name} is being changed concurrently; try again")))
    }

    /// Every problem with `def`, or none.
    pub fn validate_workflow(&self, def: &WorkflowDefinition) -> Vec<ValidationError> {
        validate(def).err().unwrap_or_default()
    }

    /// Version `version` of `name`, or its latest version when `version` is None.
    pub async fn get_workflow(
        &self,
        tenant: &Tenant,
        name: &str,
        version: Option<u32>,
    ) -> Result<WorkflowVersion, EngineError> {
        let db = self.store.conn();
        let found = match version {
            None => workflows::latest(db, tenant, name).await?,
            Some(v) => workflows::get(db, tenant, name, v).await?,
        };
        found.ok_or_else(|| match version {
            None => EngineError::NotFound(format!("workflow {name:?} not found")),
            Some(v) => EngineError::NotFound(format!("workflow {name:?} has no version {v}")),
        })
    }

    /// Workflows by name, one page at a time.
    pub async fn list_workflows(
        &self,
        tenant: &Tenant,
        page_size: u32,
        page_token: &str,
    ) -> Result<Page<WorkflowSummary, String>, EngineError> {
        let after: Option<String> = page::decode(page_token)?;
        let limit = page::size(page_size);
        let items = workflows::list(self.store.conn(), tenant, after.as_deref(), limit + 1).await?;
        Ok(page::split(items, limit, |w| page::encode(&w.name)))
    }
}
