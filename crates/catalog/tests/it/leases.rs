//! Work leases: claiming unfinished documents, renewing, releasing, expiry.

use std::time::Duration;

use ragd_catalog::Lease;
use ragd_core::{DocumentStatus, ErrorKind};

use crate::{Backend, add_document, temp_catalog};

fn lease(owner: &str, secs: u64) -> Lease {
    Lease::new(owner, Duration::from_secs(secs))
}

fn claims_take_the_oldest_unleased_document_once(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let first = add_document(&catalog, "a.txt", "text/plain", 1);
    let second = add_document(&catalog, "b.txt", "text/plain", 2);
    let done = add_document(&catalog, "c.txt", "text/plain", 3);
    catalog.set_status(done.id, DocumentStatus::Ready, 100, None).unwrap();

    let a = lease("replica-a", 60);
    let b = lease("replica-b", 60);
    assert_eq!(catalog.claim_document(&a, None).unwrap().unwrap().id, first.id);
    assert_eq!(catalog.claim_document(&b, None).unwrap().unwrap().id, second.id);
    // Everything unfinished is leased to someone, and a ready document is no work.
    assert_eq!(catalog.claim_document(&b, None).unwrap(), None);
    assert_eq!(catalog.claim_document(&b, Some(first.id)).unwrap(), None);
    assert_eq!(catalog.claim_document(&a, Some(done.id)).unwrap(), None);
    // An owner may claim again what it holds (a restart with the same id, a re-queue).
    assert_eq!(catalog.claim_document(&a, Some(first.id)).unwrap().unwrap().id, first.id);
}

fn renewing_and_releasing_belong_to_the_owner(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let document = add_document(&catalog, "a.txt", "text/plain", 1);
    let a = lease("replica-a", 60);
    let b = lease("replica-b", 60);
    catalog.claim_document(&a, Some(document.id)).unwrap().unwrap();
    assert!(catalog.renew_lease(document.id, &a).unwrap());
    assert!(!catalog.renew_lease(document.id, &b).unwrap());
    catalog.release_lease(document.id, "replica-b").unwrap();
    assert_eq!(
        catalog.claim_document(&b, Some(document.id)).unwrap(),
        None,
        "b released a's lease"
    );
    catalog.release_lease(document.id, "replica-a").unwrap();
    assert!(!catalog.renew_lease(document.id, &a).unwrap(), "a released lease was renewed");
    assert_eq!(catalog.claim_document(&b, None).unwrap().unwrap().id, document.id);
}

fn an_expired_lease_is_taken_over(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let document = add_document(&catalog, "a.txt", "text/plain", 1);
    catalog.set_status(document.id, DocumentStatus::Chunking, 40, None).unwrap();
    let dead = Lease::new("replica-dead", Duration::from_millis(200));
    catalog.claim_document(&dead, None).unwrap().unwrap();
    let b = lease("replica-b", 60);
    assert_eq!(catalog.claim_document(&b, None).unwrap(), None);
    std::thread::sleep(Duration::from_millis(400));
    let taken = catalog.claim_document(&b, None).unwrap().unwrap();
    assert_eq!(taken.id, document.id);
    assert_eq!(taken.status, DocumentStatus::Chunking);
    // The dead owner, come back, has lost it.
    assert!(!catalog.renew_lease(document.id, &dead).unwrap());
}

fn clearing_frees_every_lease(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    add_document(&catalog, "a.txt", "text/plain", 1);
    add_document(&catalog, "b.txt", "text/plain", 2);
    let a = lease("replica-a", 60);
    catalog.claim_document(&a, None).unwrap().unwrap();
    catalog.claim_document(&a, None).unwrap().unwrap();
    assert_eq!(catalog.clear_leases().unwrap(), 2);
    let b = lease("replica-b", 60);
    assert!(catalog.claim_document(&b, None).unwrap().is_some());
    assert!(catalog.claim_document(&b, None).unwrap().is_some());
}

fn concurrent_claims_never_share_a_document(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let count = 24;
    for n in 0..count {
        add_document(&catalog, &format!("{n}.txt"), "text/plain", n + 1);
    }
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let catalog = catalog.clone();
            std::thread::spawn(move || {
                let lease = lease(&format!("replica-{worker}"), 60);
                let mut claimed = Vec::new();
                while let Some(document) = catalog.claim_document(&lease, None).unwrap() {
                    claimed.push(document.id);
                }
                claimed
            })
        })
        .collect();
    let mut all: Vec<_> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    assert_eq!(all.len(), count as usize, "some document was claimed twice or never");
    all.sort_by_key(ToString::to_string);
    all.dedup();
    assert_eq!(all.len(), count as usize);
}

fn an_empty_owner_is_refused(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let err = catalog.claim_document(&lease(" ", 60), None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

on_both_backends!(
    claims_take_the_oldest_unleased_document_once,
    renewing_and_releasing_belong_to_the_owner,
    an_expired_lease_is_taken_over,
    clearing_frees_every_lease,
    concurrent_claims_never_share_a_document,
    an_empty_owner_is_refused,
);
