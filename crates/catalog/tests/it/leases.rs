//! Work leases: claiming unfinished documents, renewing, releasing, expiry.

use std::time::Duration;

use ragd_catalog::Lease;
use ragd_core::{Chunk, ChunkId, DocumentId, DocumentStatus, ErrorKind};

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

/// The worker's writes that are fenced by the lease: a status and the chunks are written
/// only while the writer holds the lease, so one that stalled past its lease and lost the
/// document cannot undo the new owner's work.
fn leased_writes_belong_to_the_owner(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let document = add_document(&catalog, "a.txt", "text/plain", 1);
    let id = document.id;
    let text = "one two three";
    let chunk = |ordinal: u32| Chunk {
        id: ChunkId::new(),
        document_id: id,
        ordinal,
        text: text.to_owned(),
        char_start: 0,
        char_end: 13,
        token_count: 3,
        page: None,
        heading: None,
    };
    let a = lease("replica-a", 60);
    let b = lease("replica-b", 60);

    // Unleased, nobody's leased write lands.
    assert!(
        !catalog.set_status_leased(id, "replica-a", DocumentStatus::Chunking, 5, None).unwrap()
    );
    assert!(!catalog.replace_chunks_leased(id, "replica-a", text, &[chunk(0)]).unwrap());
    assert_eq!(catalog.get_document(id).unwrap().status, DocumentStatus::Queued);
    assert_eq!(catalog.count_chunks(Some(id)).unwrap(), 0);

    catalog.claim_document(&a, Some(id)).unwrap().unwrap();
    assert!(catalog.set_status_leased(id, "replica-a", DocumentStatus::Chunking, 5, None).unwrap());
    let ours = chunk(0);
    assert!(
        catalog.replace_chunks_leased(id, "replica-a", text, std::slice::from_ref(&ours)).unwrap()
    );
    // Another owner's writes change nothing.
    assert!(!catalog.set_status_leased(id, "replica-b", DocumentStatus::Ready, 100, None).unwrap());
    assert!(!catalog.replace_chunks_leased(id, "replica-b", text, &[chunk(0)]).unwrap());
    let stored = catalog.get_document(id).unwrap();
    assert_eq!((stored.status, stored.progress), (DocumentStatus::Chunking, 5));
    let chunks = catalog.list_chunks(id, 10, 0).unwrap().items;
    assert_eq!(chunks.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ours.id]);

    // Taken over: the old owner's writes no longer land, the new owner's do.
    catalog.clear_leases().unwrap();
    catalog.claim_document(&b, Some(id)).unwrap().unwrap();
    assert!(!catalog.set_status_leased(id, "replica-a", DocumentStatus::Ready, 100, None).unwrap());
    assert!(!catalog.replace_chunks_leased(id, "replica-a", text, &[chunk(0)]).unwrap());
    let theirs = chunk(0);
    assert!(
        catalog
            .replace_chunks_leased(id, "replica-b", text, std::slice::from_ref(&theirs))
            .unwrap()
    );
    let failed = Some("no text");
    assert!(catalog.set_status_leased(id, "replica-b", DocumentStatus::Failed, 5, failed).unwrap());
    let stored = catalog.get_document(id).unwrap();
    assert_eq!((stored.status, stored.error.as_deref()), (DocumentStatus::Failed, failed));
    let chunks = catalog.list_chunks(id, 10, 0).unwrap().items;
    assert_eq!(chunks.iter().map(|c| c.id).collect::<Vec<_>>(), vec![theirs.id]);

    // An unknown document is an error, not a lost lease; bad input is refused as before.
    let unknown = DocumentId::new();
    let err = catalog.set_status_leased(unknown, "replica-b", DocumentStatus::Ready, 100, None);
    assert_eq!(err.unwrap_err().kind(), ErrorKind::NotFound);
    let err = catalog.replace_chunks_leased(unknown, "replica-b", text, &[]);
    assert_eq!(err.unwrap_err().kind(), ErrorKind::NotFound);
    let err = catalog.set_status_leased(id, "replica-b", DocumentStatus::Ready, 101, None);
    assert_eq!(err.unwrap_err().kind(), ErrorKind::InvalidInput);
}

on_both_backends!(
    leased_writes_belong_to_the_owner,
    claims_take_the_oldest_unleased_document_once,
    renewing_and_releasing_belong_to_the_owner,
    an_expired_lease_is_taken_over,
    clearing_frees_every_lease,
    concurrent_claims_never_share_a_document,
    an_empty_owner_is_refused,
);
