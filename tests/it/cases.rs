//! The case-work store suite (users, sessions, workflow, approvals, notes, audit chain),
//! run as `cases::sqlite::*` always and `cases::postgres::*` when `CLEARWATCH_TEST_PG` is
//! set, in the fresh databases of `store::TestDb`; includes the concurrency tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use clearwatch_model::audit::{AuditKey, keyed_hash};
use clearwatch_model::case::Status;
use clearwatch_model::case::{AuditCheck, AuditEntry, UserRole};
use clearwatch_model::{Alert, Evidence, Severity, Subject, SubjectKind, Window};
use clearwatch_store::AlertStore;
use clearwatch_store::AuditStore;
use clearwatch_store::CaseStore;
use clearwatch_store::UserStore;
use clearwatch_store::cases::{CaseError, CaseUpdate, NewSession, UserChange};
use clearwatch_store::{AlertFilter, AlertSort, AnyStore, RuleVersion, StoreError};

use crate::store::TestDb;

macro_rules! case_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = crate::store::TestDb::sqlite().await;
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(db) = crate::store::TestDb::postgres().await else {
                        crate::store::say_skipped(stringify!($name));
                        return;
                    };
                    super::$name(&db).await;
                }
            )*
        }
    };
}

case_suite!(
    users_and_sessions,
    workflow_rules,
    approvals_need_another_supervisor,
    notes_and_audit_chain,
    tampering_is_named,
    a_deleted_last_audit_entry_is_detected,
    an_emptied_audit_table_is_detected,
    an_altered_middle_entry_with_recomputed_hashes_is_detected,
    an_intact_log_verifies_against_its_head_and_checkpoints,
    a_log_from_before_the_keyed_chain_is_rekeyed_once,
    a_bulk_change_refused_partway_changes_nothing,
    queue_filters_counts_and_sorts,
    rules_hits_and_publication,
    users_change_audited_and_disabled,
    newest_publication_per_rule,
    two_concurrent_edits_one_wins,
    many_concurrent_updates_keep_the_chain_linear,
    kept_counts_match_a_full_count,
);

fn alert(n: i64, score: u32) -> Alert {
    let subject = Subject {
        kind: SubjectKind::Account,
        id: format!("ACC-{n}"),
    };
    let from = 1_767_225_600_000 + n * 86_400_000;
    let window = Window {
        from,
        until: from + 86_400_000,
    };
    let rule = if n % 2 == 0 { "TC-01" } else { "TC-02" };
    Alert {
        id: Alert::make_id(rule, "v1", &subject, window),
        rule_id: rule.into(),
        rule_version: "v1".into(),
        title: "t".into(),
        subject,
        window,
        severity: Severity::High,
        score,
        summary: "s".into(),
        currency: Some("CNY".into()),
        metrics: BTreeMap::new(),
        evidence: Evidence::default(),
    }
}

async fn seed(db: &TestDb, n: i64) -> Vec<String> {
    let alerts: Vec<Alert> = (0..n).map(|i| alert(i, 50 + i as u32)).collect();
    db.store.save_alerts(&alerts, &[]).await.unwrap();
    for (name, role) in [
        ("ann", UserRole::Analyst),
        ("bob", UserRole::Analyst),
        ("sue", UserRole::Supervisor),
        ("sam", UserRole::Supervisor),
    ] {
        db.store.add_user(name, role, "hash", "test").await.unwrap();
    }
    alerts.into_iter().map(|a| a.id).collect()
}

fn case_err(e: StoreError) -> CaseError {
    match e {
        StoreError::Case(c) => c,
        other => panic!("expected a case error, got {other}"),
    }
}

fn update(id: &str, version: i64, actor: &str) -> CaseUpdate {
    CaseUpdate {
        alert_id: id.to_string(),
        expected_version: version,
        actor: actor.to_string(),
        status: None,
        assignee: None,
    }
}

async fn users_and_sessions(db: &TestDb) {
    let s = &db.store;
    let u = s
        .add_user("ann", UserRole::Analyst, "$argon2id$x", "admin")
        .await
        .unwrap();
    assert_eq!(u.role, UserRole::Analyst);
    let dup = s.add_user("ann", UserRole::Admin, "h", "admin").await;
    assert_eq!(
        case_err(dup.unwrap_err()),
        CaseError::UserExists("ann".into())
    );
    assert_eq!(
        s.user("ann").await.unwrap().unwrap().password_hash,
        "$argon2id$x"
    );
    assert!(s.user("nobody").await.unwrap().is_none());
    assert_eq!(s.users().await.unwrap().len(), 1);
    s.create_session(&NewSession {
        id: "tok1".into(),
        user_name: "ann".into(),
        csrf: "c1".into(),
        expires_at: 2_000,
    })
    .await
    .unwrap();
    let live = s.session("tok1", 1_000).await.unwrap().unwrap();
    assert_eq!(live.user.name, "ann");
    assert_eq!(live.csrf, "c1");
    assert!(s.session("tok1", 2_000).await.unwrap().is_none(), "expired");
    assert!(s.session("other", 1_000).await.unwrap().is_none());
    s.delete_session("tok1", 0).await.unwrap();
    assert!(s.session("tok1", 1_000).await.unwrap().is_none());
    // Adding a user is audited.
    let log = s.audit_log(None, 10, 0).await.unwrap();
    assert_eq!(log[0].action, "user.add");
    assert_eq!(log[0].entity, "user:ann");
}

async fn workflow_rules(db: &TestDb) {
    let ids = seed(db, 3).await;
    let s = &db.store;
    let a = s.alert(&ids[0]).await.unwrap().unwrap();
    assert_eq!((a.status.as_str(), a.version), ("new", 1));
    let mut u = update(&ids[0], 1, "ann");
    u.status = Some(Status::InReview);
    u.assignee = Some(Some("ann".into()));
    let a = s.update_case(&u).await.unwrap();
    assert_eq!(a.status, Status::InReview);
    assert_eq!(a.assignee.as_deref(), Some("ann"));
    assert_eq!(a.version, 2);
    // The same change on the old version is a conflict, not a lost update.
    let e = case_err(s.update_case(&u).await.unwrap_err());
    assert!(
        matches!(
            e,
            CaseError::Conflict {
                expected: 1,
                found: 2,
                ..
            }
        ),
        "{e}"
    );
    // Escalation and dismissal are not direct moves.
    let mut esc = update(&ids[0], 2, "ann");
    esc.status = Some(Status::Escalated);
    assert_eq!(
        case_err(s.update_case(&esc).await.unwrap_err()),
        CaseError::NeedsApproval(Status::Escalated)
    );
    let mut bad = update(&ids[1], 1, "ann");
    bad.status = Some(Status::Reported);
    assert!(matches!(
        case_err(s.update_case(&bad).await.unwrap_err()),
        CaseError::BadTransition { .. }
    ));
    // Unassigning.
    let mut un = update(&ids[0], 2, "ann");
    un.assignee = Some(None);
    assert_eq!(s.update_case(&un).await.unwrap().assignee, None);
    let missing = s.update_case(&update("nope", 1, "ann")).await.unwrap_err();
    assert!(matches!(case_err(missing), CaseError::NotFound(_)));
    assert!(matches!(
        s.audit_verify().await.unwrap(),
        AuditCheck::Intact { .. }
    ));
}

async fn approvals_need_another_supervisor(db: &TestDb) {
    let ids = seed(db, 2).await;
    let s = &db.store;
    let mut u = update(&ids[0], 1, "sue");
    u.status = Some(Status::InReview);
    s.update_case(&u).await.unwrap();
    // A dismissal needs a reason.
    let e = s
        .request_approval(&ids[1], 1, Status::Dismissed, Some("  "), "ann", None)
        .await
        .unwrap_err();
    assert_eq!(case_err(e), CaseError::ReasonRequired);
    let req = s
        .request_approval(&ids[0], 2, Status::Escalated, None, "sue", None)
        .await
        .unwrap();
    assert_eq!(
        s.alert(&ids[0]).await.unwrap().unwrap().status,
        Status::InReview
    );
    let again = s
        .request_approval(&ids[0], 3, Status::Escalated, None, "ann", None)
        .await
        .unwrap_err();
    assert!(matches!(case_err(again), CaseError::AlreadyPending(_)));
    // The requester cannot approve, even as a supervisor; an analyst cannot either.
    assert_eq!(
        case_err(s.decide_approval(req.id, true, "sue").await.unwrap_err()),
        CaseError::SelfApproval
    );
    assert_eq!(
        case_err(s.decide_approval(req.id, true, "bob").await.unwrap_err()),
        CaseError::NotSupervisor
    );
    assert_eq!(s.approvals(None, true).await.unwrap().len(), 1);
    let done = s.decide_approval(req.id, true, "sam").await.unwrap();
    assert_eq!(done.approved, Some(true));
    let a = s.alert(&ids[0]).await.unwrap().unwrap();
    assert_eq!(a.status, Status::Escalated);
    assert!(matches!(
        case_err(s.decide_approval(req.id, true, "sam").await.unwrap_err()),
        CaseError::AlreadyDecided(_)
    ));
    assert!(s.approvals(None, true).await.unwrap().is_empty());
    // A rejected dismissal leaves the case where it was.
    let d = s
        .request_approval(
            &ids[1],
            1,
            Status::Dismissed,
            Some("false positive"),
            "ann",
            None,
        )
        .await
        .unwrap();
    s.decide_approval(d.id, false, "sue").await.unwrap();
    assert_eq!(s.alert(&ids[1]).await.unwrap().unwrap().status, Status::New);
    let actions: Vec<String> = s
        .audit_log(Some(&format!("alert:{}", ids[0])), 50, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["case.approve", "case.request", "case.status"]);
}

async fn notes_and_audit_chain(db: &TestDb) {
    let ids = seed(db, 1).await;
    let s = &db.store;
    let body = "<script>alert(1)</script> checked the hub";
    let n = s.add_note(&ids[0], "ann", body).await.unwrap();
    assert_eq!(n.body, body);
    assert!(matches!(
        case_err(s.add_note(&ids[0], "ann", "  ").await.unwrap_err()),
        CaseError::EmptyNote
    ));
    assert!(matches!(
        case_err(s.add_note("missing", "ann", "x").await.unwrap_err()),
        CaseError::NotFound(_)
    ));
    assert_eq!(s.notes(&ids[0]).await.unwrap(), vec![n]);
    s.audit("ann", "session.login", "user:ann", None, None)
        .await
        .unwrap();
    let log = s.audit_log(None, 100, 0).await.unwrap();
    // 4 users added, one note, one login; newest first, chained.
    assert_eq!(log.len(), 6);
    assert_eq!(log[0].seq, 6);
    assert_eq!(log[0].prev_hash, log[1].hash);
    assert_eq!(log[1].action, "case.note");
    match s.audit_verify().await.unwrap() {
        AuditCheck::Intact { entries, head } => {
            assert_eq!(entries, 6);
            assert_eq!(head, log[0].hash);
        }
        other => panic!("{other:?}"),
    }
}

async fn exec(store: &AnyStore, sql: &str) {
    match store {
        AnyStore::Sqlite(s) => {
            sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(s.pool())
                .await
                .unwrap();
        }
        AnyStore::Postgres(s) => {
            sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(s.pool())
                .await
                .unwrap();
        }
    }
}

async fn tampering_is_named(db: &TestDb) {
    seed(db, 1).await;
    exec(
        &db.store,
        "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3",
    )
    .await;
    match db.store.audit_verify().await.unwrap() {
        AuditCheck::Broken { seq, .. } => assert_eq!(seq, 3),
        other => panic!("{other:?}"),
    }
    let out = db.cmd().args(["audit", "verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("entry 3"), "{text}");
    exec(&db.store, "DELETE FROM audit_log WHERE seq >= 3").await;
    assert!(matches!(
        db.store.audit_verify().await.unwrap(),
        AuditCheck::Broken { seq: 3, .. }
    ));
    let text = verify_fails(db, &[]);
    assert!(
        text.contains("log truncated after 2 (head says 4)"),
        "{text}"
    );
}

/// Runs `audit verify` with `args`, expects exit 1, and gives its output.
fn verify_fails(db: &TestDb, args: &[&str]) -> String {
    let out = db
        .cmd()
        .args(["audit", "verify"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The findings of checking the log, as sentences.
async fn findings(db: &TestDb) -> Vec<String> {
    let report = db.store.audit_report(&[]).await.unwrap();
    report.findings.iter().map(ToString::to_string).collect()
}

async fn a_deleted_last_audit_entry_is_detected(db: &TestDb) {
    seed(db, 1).await;
    db.store
        .audit("ann", "session.login", "user:ann", None, None)
        .await
        .unwrap();
    exec(&db.store, "DELETE FROM audit_log WHERE seq = 5").await;
    assert_eq!(findings(db).await, ["log truncated after 4 (head says 5)"]);
    let text = verify_fails(db, &[]);
    assert!(
        text.contains("log truncated after 4 (head says 5)"),
        "{text}"
    );
    // A middle entry deleted is named too.
    exec(&db.store, "DELETE FROM audit_log WHERE seq = 2").await;
    let found = findings(db).await;
    assert!(found.contains(&"entry 2 deleted".to_string()), "{found:?}");
}

async fn an_emptied_audit_table_is_detected(db: &TestDb) {
    seed(db, 1).await;
    exec(&db.store, "DELETE FROM audit_log").await;
    assert_eq!(findings(db).await, ["log emptied (head says 4 entries)"]);
    let text = verify_fails(db, &[]);
    assert!(text.contains("log emptied (head says 4 entries)"), "{text}");
}

/// Rewrites the entries from `from` on as someone with the database but not the key
/// would: the actor of `from` changed, every hash after it recomputed with `hash`.
async fn rewrite_from(db: &TestDb, from: i64, hash: impl Fn(&AuditEntry) -> String) {
    let mut log = db.store.audit_log(None, 1000, 0).await.unwrap();
    log.reverse();
    for i in (from as usize - 1)..log.len() {
        if i + 1 == from as usize {
            log[i].actor = "mallory".into();
        }
        if i > 0 {
            log[i].prev_hash = log[i - 1].hash.clone();
        }
        log[i].hash = hash(&log[i]);
        let e = &log[i];
        exec(
            &db.store,
            &format!(
                "UPDATE audit_log SET actor = '{}', prev_hash = '{}', hash = '{}' WHERE seq = {}",
                e.actor, e.prev_hash, e.hash, e.seq
            ),
        )
        .await;
    }
}

async fn an_altered_middle_entry_with_recomputed_hashes_is_detected(db: &TestDb) {
    seed(db, 1).await;
    let expected = [
        "entry 2 altered (HMAC mismatch)",
        "entries 3-4 fail the HMAC too (hashes recomputed after entry 2)",
        "head sequence 4 hash differs",
    ];
    // The old unkeyed algorithm: SHA-256 of the same fields.
    rewrite_from(db, 2, AuditEntry::unkeyed_hash).await;
    assert_eq!(findings(db).await, expected);
    let text = verify_fails(db, &[]);
    assert!(text.contains("entry 2 altered (HMAC mismatch)"), "{text}");
    // The keyed algorithm under a guessed key.
    let guess = AuditKey::new([0; 32]);
    rewrite_from(db, 2, |e| keyed_hash(&guess, e)).await;
    assert_eq!(findings(db).await, expected);
}

async fn an_intact_log_verifies_against_its_head_and_checkpoints(db: &TestDb) {
    seed(db, 2).await;
    let cp = db.dir.path().join("cp-1.json");
    let out = db
        .cmd()
        .args(["audit", "checkpoint", "--out"])
        .arg(&cp)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    db.store
        .audit("ann", "session.login", "user:ann", None, None)
        .await
        .unwrap();
    let out = db
        .cmd()
        .args(["audit", "verify", "--checkpoint"])
        .arg(&cp)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("audit log intact: 5 entries") && text.contains("1 checkpoints checked"),
        "{text}"
    );
    // The checkpoint outlives a rewrite of the head: entry 4 rewritten with the key's
    // help still differs from what the outside party holds.
    exec(&db.store, "UPDATE audit_log SET hash = 'ff' WHERE seq = 4").await;
    let text = verify_fails(db, &["--checkpoint", cp.to_str().unwrap()]);
    assert!(
        text.contains("checkpoint sequence 4 hash differs"),
        "{text}"
    );
}

async fn a_log_from_before_the_keyed_chain_is_rekeyed_once(db: &TestDb) {
    seed(db, 1).await;
    // As an older clearwatch left it: an unkeyed chain and no key or head files.
    rewrite_from(db, 1, AuditEntry::unkeyed_hash).await;
    exec(
        &db.store,
        "UPDATE audit_log SET actor = 'test' WHERE seq = 1",
    )
    .await;
    rewrite_from(db, 1, AuditEntry::unkeyed_hash).await;
    let key = db.audit_key();
    for suffix in ["", ".head", ".ed25519", ".ed25519.pub"] {
        std::fs::remove_file(format!("{}{suffix}", key.display())).unwrap();
    }
    let store = db.reopen().await.unwrap();
    let report = store.audit_report(&[]).await.unwrap();
    assert!(report.intact(), "{:?}", report.findings);
    assert_eq!((report.entries, report.head_seq), (5, Some(5)));
    let last = store.audit_log(None, 1, 0).await.unwrap().remove(0);
    assert_eq!(last.action, "audit.rekey");
    assert!(last.before.unwrap().contains("unkeyed_head"));
}

async fn a_bulk_change_refused_partway_changes_nothing(db: &TestDb) {
    let ids = seed(db, 3).await;
    let s = &db.store;
    let entries = s.audit_report(&[]).await.unwrap().entries;
    let mut updates: Vec<CaseUpdate> = ids
        .iter()
        .map(|id| {
            let mut u = update(id, 1, "ann");
            u.status = Some(Status::InReview);
            u.assignee = Some(Some("ann".into()));
            u
        })
        .collect();
    // The second was changed by someone else meanwhile.
    updates[1].expected_version = 7;
    match case_err(s.bulk_update(&updates).await.unwrap_err()) {
        CaseError::Bulk { alert_id, source } => {
            assert_eq!(alert_id, ids[1]);
            assert!(matches!(*source, CaseError::Conflict { .. }), "{source}");
        }
        other => panic!("{other}"),
    }
    for id in &ids {
        let a = s.alert(id).await.unwrap().unwrap();
        assert_eq!((a.status, a.version, a.assignee), (Status::New, 1, None));
    }
    assert_eq!(s.audit_report(&[]).await.unwrap().entries, entries);
    updates[1].expected_version = 1;
    assert_eq!(s.bulk_update(&updates).await.unwrap(), 3);
    let report = s.audit_report(&[]).await.unwrap();
    assert!(report.intact(), "{:?}", report.findings);
    assert_eq!(report.entries, entries + 3);
    for id in &ids {
        assert_eq!(s.alert(id).await.unwrap().unwrap().status, Status::InReview);
    }
}

async fn queue_filters_counts_and_sorts(db: &TestDb) {
    let ids = seed(db, 6).await;
    let s = &db.store;
    for id in &ids[..2] {
        let mut u = update(id, 1, "ann");
        u.assignee = Some(Some("ann".into()));
        u.status = Some(Status::InReview);
        s.update_case(&u).await.unwrap();
    }
    let all = AlertFilter::default();
    assert_eq!(s.count_alerts(&all).await.unwrap(), 6);
    let counts: BTreeMap<&str, u64> = s
        .status_counts(&all)
        .await
        .unwrap()
        .into_iter()
        .map(|(status, n)| (status.as_str(), n))
        .collect();
    assert_eq!(counts["new"], 4);
    assert_eq!(counts["in_review"], 2);
    assert_eq!(counts["closed"], 0);
    let mine = AlertFilter {
        assignee: Some("ann".into()),
        ..Default::default()
    };
    assert_eq!(s.alerts(&mine).await.unwrap().len(), 2);
    let unassigned = AlertFilter {
        assignee: Some(String::new()),
        ..Default::default()
    };
    assert_eq!(s.count_alerts(&unassigned).await.unwrap(), 4);
    let days = AlertFilter {
        from: Some(1_767_225_600_000 + 86_400_000),
        until: Some(1_767_225_600_000 + 3 * 86_400_000),
        ..Default::default()
    };
    assert_eq!(s.count_alerts(&days).await.unwrap(), 2);
    let oldest = s
        .alerts(&AlertFilter {
            sort: AlertSort::Oldest,
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(oldest[0].alert.id, ids[0]);
    let by_score = s.alerts(&AlertFilter::default()).await.unwrap();
    assert_eq!(by_score[0].alert.id, ids[5]);
    let newest = s
        .alerts(&AlertFilter {
            sort: AlertSort::Newest,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(newest[0].alert.id, ids[5]);
    let updated = s
        .alerts(&AlertFilter {
            sort: AlertSort::Updated,
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(updated.len(), 1);
}

async fn rules_hits_and_publication(db: &TestDb) {
    let ids = seed(db, 4).await;
    let s = &db.store;
    // ids[0] and ids[2] are TC-01: report one, dismiss the other.
    let mut u = update(&ids[0], 1, "ann");
    u.status = Some(Status::InReview);
    s.update_case(&u).await.unwrap();
    let r = s
        .request_approval(&ids[0], 2, Status::Escalated, None, "ann", None)
        .await
        .unwrap();
    s.decide_approval(r.id, true, "sue").await.unwrap();
    let mut rep = update(&ids[0], 4, "ann");
    rep.status = Some(Status::Reported);
    s.update_case(&rep).await.unwrap();
    let d = s
        .request_approval(
            &ids[2],
            1,
            Status::Dismissed,
            Some("known merchant"),
            "ann",
            None,
        )
        .await
        .unwrap();
    s.decide_approval(d.id, true, "sue").await.unwrap();
    let hits = s.rule_hits().await.unwrap();
    let tc01 = hits.iter().find(|h| h.rule_id == "TC-01").unwrap();
    assert_eq!(
        (tc01.alerts, tc01.reported, tc01.dismissed, tc01.open),
        (2, 1, 1, 0)
    );
    assert_eq!(tc01.precision(), Some(0.5));
    let tc02 = hits.iter().find(|h| h.rule_id == "TC-02").unwrap();
    assert_eq!(tc02.precision(), None);
    let rv = RuleVersion {
        rule_id: "TC-01".into(),
        version: "v2hash".into(),
        title: "pool".into(),
        text: "id: TC-01\n".into(),
    };
    s.publish_rule(&rv, "rita").await.unwrap();
    let versions = s.rule_versions("TC-01").await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].published_by.as_deref(), Some("rita"));
    assert!(
        versions[0].created_at.ends_with('Z'),
        "{}",
        versions[0].created_at
    );
    assert_eq!(
        s.rule_version("TC-01", "v2hash").await.unwrap().unwrap(),
        rv
    );
}

async fn two_concurrent_edits_one_wins(db: &TestDb) {
    let ids = seed(db, 5).await;
    let a = Arc::new(db.reopen().await.unwrap());
    let b = Arc::new(db.reopen().await.unwrap());
    for id in &ids {
        let mut ua = update(id, 1, "ann");
        ua.assignee = Some(Some("ann".into()));
        let mut ub = update(id, 1, "bob");
        ub.assignee = Some(Some("bob".into()));
        ub.status = Some(Status::InReview);
        let (sa, sb) = (a.clone(), b.clone());
        let ta = tokio::spawn(async move { sa.update_case(&ua).await });
        let tb = tokio::spawn(async move { sb.update_case(&ub).await });
        let (ra, rb) = (ta.await.unwrap(), tb.await.unwrap());
        let wins = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "{ra:?} / {rb:?}");
        let loser = if ra.is_ok() { rb } else { ra };
        assert!(matches!(
            case_err(loser.unwrap_err()),
            CaseError::Conflict { expected: 1, .. }
        ));
        let stored = db.store.alert(id).await.unwrap().unwrap();
        assert_eq!(stored.version, 2);
    }
    assert!(matches!(
        db.store.audit_verify().await.unwrap(),
        AuditCheck::Intact { entries: 9, .. }
    ));
}

/// Eight writers with their own connection pools reassign ten alerts and add notes,
/// retrying on conflicts; every success is one audit entry and the chain stays linear.
async fn many_concurrent_updates_keep_the_chain_linear(db: &TestDb) {
    let ids = Arc::new(seed(db, 10).await);
    let before = match db.store.audit_verify().await.unwrap() {
        AuditCheck::Intact { entries, .. } => entries,
        other => panic!("{other:?}"),
    };
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = Arc::new(db.reopen().await.unwrap());
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut conflicts) = (0u64, 0u64);
            let me = format!("user{w}");
            for round in 0..10 {
                let id = &ids[(w + round) % ids.len()];
                loop {
                    let current = store.alert(id).await.unwrap().unwrap();
                    let mut u = update(id, current.version, &me);
                    u.assignee = Some(Some(format!("{me}-{round}")));
                    match store.update_case(&u).await {
                        Ok(_) => break,
                        Err(StoreError::Case(CaseError::Conflict { .. })) => conflicts += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
                ok += 1;
                store
                    .add_note(id, &me, &format!("round {round}"))
                    .await
                    .unwrap();
                ok += 1;
            }
            (ok, conflicts)
        }));
    }
    let mut total = 0;
    for t in tasks {
        let (ok, _conflicts) = t.await.unwrap();
        total += ok;
    }
    assert_eq!(total, 160);
    match db.store.audit_verify().await.unwrap() {
        AuditCheck::Intact { entries, .. } => assert_eq!(entries, before + total),
        other => panic!("{other:?}"),
    }
    let versions: i64 = {
        let all = db.store.alerts(&AlertFilter::default()).await.unwrap();
        all.iter().map(|a| a.version - 1).sum()
    };
    assert_eq!(versions, 80);
    assert_counts_match_listing(&db.store).await;
}

/// The queue's counts (kept per status, severity, rule and assignee) against the rows
/// the listing returns, for filters the kept counts answer and ones they don't.
async fn assert_counts_match_listing(s: &AnyStore) {
    let all = s
        .alerts(&AlertFilter {
            limit: 10_000,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut filters = vec![AlertFilter::default()];
    for a in &all {
        let assignee = a.assignee.clone().unwrap_or_default();
        filters.push(AlertFilter {
            assignee: Some(assignee.clone()),
            ..Default::default()
        });
        filters.push(AlertFilter {
            rule_id: Some(a.alert.rule_id.clone()),
            status: Some(a.status),
            ..Default::default()
        });
        filters.push(AlertFilter {
            rule_id: Some(a.alert.rule_id.clone()),
            min_severity: Some(Severity::Medium),
            assignee: Some(assignee),
            ..Default::default()
        });
        filters.push(AlertFilter {
            subject: Some(a.alert.subject.id.clone()),
            ..Default::default()
        });
    }
    for f in filters {
        let listed = s
            .alerts(&AlertFilter {
                limit: 10_000,
                ..f.clone()
            })
            .await
            .unwrap();
        assert_eq!(
            s.count_alerts(&f).await.unwrap(),
            listed.len() as u64,
            "{f:?}"
        );
        for (status, n) in s.status_counts(&f).await.unwrap() {
            let expected = s
                .alerts(&AlertFilter {
                    status: Some(status),
                    limit: 10_000,
                    ..f.clone()
                })
                .await
                .unwrap()
                .len() as u64;
            assert_eq!(n, expected, "{status} under {f:?}");
        }
    }
}

async fn kept_counts_match_a_full_count(db: &TestDb) {
    let ids = seed(db, 12).await;
    let s = &db.store;
    assert_counts_match_listing(s).await;
    let moves = [
        (Some(Status::InReview), Some("ann")),
        (Some(Status::InReview), None),
        (None, Some("bob")),
        (None, Some("ann")),
    ];
    for (i, id) in ids.iter().enumerate() {
        let (status, assignee) = moves[i % moves.len()];
        let mut u = update(id, 1, "ann");
        u.status = status;
        u.assignee = Some(assignee.map(str::to_string));
        s.update_case(&u).await.unwrap();
    }
    assert_counts_match_listing(s).await;
    // Back to unassigned: the counts move with the assignee.
    let mut u = update(&ids[0], 2, "ann");
    u.assignee = Some(None);
    s.update_case(&u).await.unwrap();
    assert_counts_match_listing(s).await;
    let hits = s.rule_hits().await.unwrap();
    assert_eq!(hits.iter().map(|h| h.alerts).sum::<u64>(), 12);
    // Subject search: a case-insensitive substring; LIKE's wildcards are literal.
    let subject = |text: &str| AlertFilter {
        subject: Some(text.into()),
        ..Default::default()
    };
    assert_eq!(s.count_alerts(&subject("acc-1")).await.unwrap(), 3);
    assert_eq!(s.count_alerts(&subject("C-1")).await.unwrap(), 3);
    assert_eq!(s.count_alerts(&subject("%")).await.unwrap(), 0);
    assert_eq!(s.count_alerts(&subject("ACC_1")).await.unwrap(), 0);
}

async fn users_change_audited_and_disabled(db: &TestDb) {
    let s = &db.store;
    s.add_user("ann", UserRole::Analyst, "h", "admin")
        .await
        .unwrap();
    assert!(!s.user("ann").await.unwrap().unwrap().disabled);
    s.create_session(&NewSession {
        id: "tok".into(),
        user_name: "ann".into(),
        csrf: "c".into(),
        expires_at: 2_000,
    })
    .await
    .unwrap();
    let u = s
        .update_user(
            "ann",
            &UserChange {
                role: Some(UserRole::Supervisor),
                time_zone: Some("Asia/Shanghai".into()),
                disabled: None,
                unavailable_until: Some(Some(4_102_444_800_000)),
            },
            "admin",
        )
        .await
        .unwrap();
    assert_eq!(
        (u.role, u.time_zone.as_str()),
        (UserRole::Supervisor, "Asia/Shanghai")
    );
    assert_eq!(s.user("ann").await.unwrap().unwrap(), u);
    assert_eq!(u.unavailable_until, Some(4_102_444_800_000));
    assert!(s.session("tok", 1_000).await.unwrap().is_some());
    // No change, no entry.
    let before = s.audit_log(None, 100, 0).await.unwrap().len();
    s.update_user("ann", &UserChange::default(), "admin")
        .await
        .unwrap();
    assert_eq!(s.audit_log(None, 100, 0).await.unwrap().len(), before);
    // Disabling ends the sessions.
    let u = s
        .update_user(
            "ann",
            &UserChange {
                disabled: Some(true),
                ..UserChange::default()
            },
            "admin",
        )
        .await
        .unwrap();
    assert!(u.disabled);
    assert!(s.session("tok", 1_000).await.unwrap().is_none());
    assert!(s.users().await.unwrap()[0].disabled);
    let log = s.audit_log(Some("user:ann"), 10, 0).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "user.disable",
            "user.role+time_zone+availability",
            "user.add"
        ]
    );
    assert_eq!(
        log[1].before.as_deref(),
        Some(r#"{"role":"analyst","time_zone":"UTC","unavailable_until":null}"#)
    );
    assert_eq!(
        log[1].after.as_deref(),
        Some(
            r#"{"role":"supervisor","time_zone":"Asia/Shanghai","unavailable_until":4102444800000}"#
        )
    );
    let missing = s
        .update_user("nobody", &UserChange::default(), "admin")
        .await;
    assert!(matches!(
        case_err(missing.unwrap_err()),
        CaseError::NotFound(_)
    ));
    assert!(matches!(
        s.audit_verify().await.unwrap(),
        AuditCheck::Intact { .. }
    ));
}

async fn newest_publication_per_rule(db: &TestDb) {
    let s = &db.store;
    assert!(s.published_rules().await.unwrap().is_empty());
    let v = |id: &str, version: &str| RuleVersion {
        rule_id: id.into(),
        version: version.into(),
        title: format!("{id} {version}"),
        text: format!("id: {id}\n# {version}\n"),
    };
    s.publish_rule(&v("TC-01", "a"), "rita").await.unwrap();
    s.publish_rule(&v("TC-02", "x"), "rita").await.unwrap();
    s.publish_rule(&v("TC-01", "b"), "rob").await.unwrap();
    // Publishing an older version again makes it the newest.
    s.publish_rule(&v("TC-02", "y"), "rita").await.unwrap();
    s.publish_rule(&v("TC-02", "x"), "rob").await.unwrap();
    let p = s.published_rules().await.unwrap();
    let got: Vec<(&str, &str, Option<&str>)> = p
        .iter()
        .map(|r| {
            (
                r.rule_id.as_str(),
                r.version.as_str(),
                r.published_by.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [("TC-01", "b", Some("rob")), ("TC-02", "x", Some("rob"))]
    );
    assert_eq!(p[0].text, "id: TC-01\n# b\n");
}
