//! Authoring on SQLite and PostgreSQL: versions, idempotent puts, invalid definitions store nothing.

mod common;

use braid_control_plane::engine::EngineError;
use common::{TestDb, diamond, tenant, yaml};

async fn same_content_same_version(db: &TestDb) {
    let e = &db.engine;
    let first = e.put_workflow(&tenant(), &diamond("wf")).await.unwrap();
    assert!(first.created);
    assert_eq!(first.workflow.version, 1);
    let again = e.put_workflow(&tenant(), &diamond("wf")).await.unwrap();
    assert!(!again.created, "same content must not make a new version");
    assert_eq!(again.workflow.version, 1);
    assert_eq!(again.workflow.content_hash, first.workflow.content_hash);

    // Defaults written out explicitly are the same content.
    let explicit = yaml(
        "name: wf\ntasks:\n  - {name: a, task_type: t, retry: {max_attempts: 3}}\n  - {name: b, task_type: t, depends_on: [a]}\n  - {name: c, task_type: t, depends_on: [a]}\n  - {name: d, task_type: t, depends_on: [b, c]}\n",
    );
    assert_eq!(e.put_workflow(&tenant(), &explicit).await.unwrap().workflow.version, 1);
}
on_both_backends!(same_content_returns_the_existing_version, same_content_same_version);

async fn changed_content_new_version(db: &TestDb) {
    let e = &db.engine;
    let a = diamond("wf");
    let mut b = diamond("wf");
    b.tasks[3].task_type = "other".into();
    assert_eq!(e.put_workflow(&tenant(), &a).await.unwrap().workflow.version, 1);
    let v2 = e.put_workflow(&tenant(), &b).await.unwrap();
    assert!(v2.created);
    assert_eq!(v2.workflow.version, 2);
    // Going back to the first content is a change relative to the latest: version 3.
    assert_eq!(e.put_workflow(&tenant(), &a).await.unwrap().workflow.version, 3);
    assert_eq!(e.get_workflow(&tenant(), "wf", None).await.unwrap().version, 3);
    let v2_again = e.get_workflow(&tenant(), "wf", Some(2)).await.unwrap();
    assert_eq!(v2_again.definition.tasks[3].task_type, "other");
    let listed = e.list_workflows(&tenant(), 0, "").await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].latest_version, 3);
    assert_eq!(listed.items[0].task_count, 4);
}
on_both_backends!(changed_content_makes_the_next_version, changed_content_new_version);

async fn invalid_lists_every_problem(db: &TestDb) {
    let e = &db.engine;
    let broken = yaml(
        "name: broken\ntasks:\n  - {name: a, task_type: t, depends_on: [c]}\n  - {name: b, task_type: t, depends_on: [a]}\n  - {name: c, task_type: t, depends_on: [b, missing]}\n",
    );
    let err = e.put_workflow(&tenant(), &broken).await.unwrap_err();
    let EngineError::InvalidDefinition(errors) = err else { panic!("expected InvalidDefinition, got {err:?}") };
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert!(errors.iter().any(|e| e.reason.contains("cycle") && e.reason.contains("->")), "{errors:?}");
    assert!(paths.contains(&"tasks[2].depends_on[1]"), "unknown dependency path missing: {paths:?}");
    assert!(errors.iter().any(|e| e.reason.contains("missing")), "{errors:?}");
    // Nothing was stored.
    assert!(matches!(e.get_workflow(&tenant(), "broken", None).await, Err(EngineError::NotFound(_))));
    assert!(e.list_workflows(&tenant(), 0, "").await.unwrap().items.is_empty());
}
on_both_backends!(invalid_definition_lists_every_problem_and_stores_nothing, invalid_lists_every_problem);

async fn pages_of_workflows(db: &TestDb) {
    let e = &db.engine;
    for i in 0..5 {
        e.put_workflow(&tenant(), &diamond(&format!("wf-{i}"))).await.unwrap();
    }
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let page = e.list_workflows(&tenant(), 2, &token).await.unwrap();
        assert!(page.items.len() <= 2);
        names.extend(page.items.into_iter().map(|w| w.name));
        match page.next {
            Some(next) => token = next,
            None => break,
        }
    }
    assert_eq!(names, ["wf-0", "wf-1", "wf-2", "wf-3", "wf-4"]);
    assert!(matches!(e.list_workflows(&tenant(), 2, "garbage!").await, Err(EngineError::InvalidArgument { .. })));
}
on_both_backends!(workflows_are_listed_in_pages, pages_of_workflows);

/// Concurrent puts of the same new content store it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_store_one_version_on_postgres() {
    let db = TestDb::postgres().await;
    let def = diamond("raced");
    let puts = (0..20).map(|_| {
        let e = db.engine.clone();
        let def = def.clone();
        tokio::spawn(async move { e.put_workflow(&tenant(), &def).await })
    });
    let outcomes: Vec<_> = futures::future::join_all(puts).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert_eq!(outcomes.iter().filter(|o| o.created).count(), 1);
    assert!(outcomes.iter().all(|o| o.workflow.version == 1));
    db.finish().await;
}
