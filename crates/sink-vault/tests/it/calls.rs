//! How many Vault calls each sink operation makes, counted by a proxy in front of OpenBao,
//! so that a regression fails here (issue "fewer store calls").

use reqwest::Method;
use rotator_core::{
    AccessTokenDocument, Precondition, RefreshTokenDocument, SinkError, TokenSink, TokenSinkExt,
    WriteOptions,
};
use rotator_sink_vault::VaultSink;
use rotator_testkit::peers::openbao::OpenBao;
use secrecy::SecretString;
use serde_json::json;

use crate::proxy::CountingProxy;
use crate::support::{config, document, kv1_mount, unique, write_new, TokenFile};

/// A sink for `mount` (KV `kv_version`) that reaches OpenBao through a counting proxy,
/// already past its one-time mount check.
async fn counted_sink(
    bao: &OpenBao,
    mount: &str,
    kv_version: u8,
) -> (VaultSink, CountingProxy, TokenFile) {
    let proxy = CountingProxy::start(&bao.addr).await;
    let token = TokenFile::new(&bao.root_token);
    let mut cfg = config(bao, mount, kv_version, token.auth());
    cfg.address = Some(proxy.url.clone());
    let sink = VaultSink::new(cfg).unwrap();
    let warm_up = unique("warm-up");
    sink.read(&warm_up).await.unwrap();
    let data = if kv_version == 2 {
        format!("{mount}/data/{warm_up}")
    } else {
        format!("{mount}/{warm_up}")
    };
    // The first operation of a sink also looks at the mount, once.
    assert_eq!(
        proxy.take(),
        vec![
            format!("GET sys/internal/ui/mounts/{mount}"),
            format!("GET {data}")
        ]
    );
    (sink, proxy, token)
}

fn access(integration: &str, expires: &str, secret: &str) -> AccessTokenDocument {
    AccessTokenDocument::new(
        SecretString::from(secret.to_owned()),
        Some(7),
        "2030-01-01T00:00:00Z".parse().unwrap(),
        expires.parse().unwrap(),
        "https://alation.example.com",
        integration,
    )
}

fn refresh(integration: &str, secret: &str) -> RefreshTokenDocument {
    RefreshTokenDocument::new(
        SecretString::from(secret.to_owned()),
        7,
        "rotator",
        "2030-01-01T00:00:00Z".parse().unwrap(),
        "2030-03-01T00:00:00Z".parse().unwrap(),
        integration,
    )
}

#[tokio::test]
async fn each_kv_v2_operation_makes_the_fewest_calls() {
    let bao = OpenBao::shared();
    let (sink, proxy, _t) = counted_sink(bao, "secret", 2).await;
    let key = format!("alation/{}", unique("calls"));
    let data = format!("POST secret/data/{key}");
    let metadata = format!("POST secret/metadata/{key}");
    let get = format!("GET secret/data/{key}");

    // Read of an absent key: one call. Creating it after that read: the marker, then the data.
    assert!(sink.read(&key).await.unwrap().is_none());
    assert_eq!(proxy.take(), vec![get.clone()]);
    let v1 = write_new(&sink, &key, "first").await;
    assert_eq!(proxy.take(), vec![metadata.clone(), data.clone()]);

    // Read (data, version and custom_metadata in one answer), then a write over that
    // version: one call each.
    let stored = sink.read(&key).await.unwrap().unwrap();
    assert_eq!((stored.version.clone(), stored.managed), (v1, true));
    assert_eq!(proxy.take(), vec![get.clone()]);
    let v2 = sink
        .write(
            &key,
            &document("second"),
            &WriteOptions::new(Precondition::Version(stored.version)),
        )
        .await
        .unwrap();
    assert_eq!(proxy.take(), vec![data.clone()]);

    // A write right after our own write needs no read either, whatever the precondition.
    let v3 = sink
        .write(
            &key,
            &document("third"),
            &WriteOptions::new(Precondition::Version(v2)),
        )
        .await
        .unwrap();
    sink.write(
        &key,
        &document("fourth"),
        &WriteOptions::new(Precondition::Any),
    )
    .await
    .unwrap();
    assert_eq!(proxy.take(), vec![data.clone(), data.clone()]);

    // The previous version: the metadata for the current number, then that version.
    let previous = sink.read_previous(&key).await.unwrap().unwrap();
    assert_eq!(previous.version, v3);
    assert_eq!(
        proxy.take(),
        vec![format!("GET secret/metadata/{key}"), get.clone()]
    );
}

#[tokio::test]
async fn a_forced_rotation_is_three_calls_and_nothing_to_do_two() {
    // The engine's pattern per integration, state and access document in the same store.
    let bao = OpenBao::shared();
    let (sink, proxy, _t) = counted_sink(bao, "secret", 2).await;
    let name = unique("forced");
    let state_key = format!("alation/state/{name}");
    let access_key = format!("alation/{name}");
    sink.write_as(
        &state_key,
        &refresh(&name, "refresh-1"),
        Precondition::Absent,
        false,
    )
    .await
    .unwrap();
    sink.write_as(
        &access_key,
        &access(&name, "2030-01-02T00:00:00Z", "access-1"),
        Precondition::Absent,
        false,
    )
    .await
    .unwrap();
    proxy.take();

    // Nothing to do: read the access document and the state; write nothing.
    let fresh = sink
        .read_as::<AccessTokenDocument>(&access_key)
        .await
        .unwrap()
        .unwrap();
    sink.read_as::<RefreshTokenDocument>(&state_key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(proxy.take().len(), 2);

    // Forced: read the state, read the access document, write it with cas.
    sink.read_as::<RefreshTokenDocument>(&state_key)
        .await
        .unwrap()
        .unwrap();
    let current = sink
        .read_as::<AccessTokenDocument>(&access_key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.version, fresh.version);
    sink.write_as(
        &access_key,
        &access(&name, "2030-01-03T00:00:00Z", "access-2"),
        Precondition::Version(current.version),
        false,
    )
    .await
    .unwrap();
    let calls = proxy.take();
    assert_eq!(
        calls,
        vec![
            format!("GET secret/data/{state_key}"),
            format!("GET secret/data/{access_key}"),
            format!("POST secret/data/{access_key}"),
        ]
    );
}

#[tokio::test]
async fn without_a_read_first_a_write_reads_the_metadata() {
    let bao = OpenBao::shared();
    let key = format!("alation/{}", unique("cold"));
    let (writer, _wp, _wt) = counted_sink(bao, "secret", 2).await;
    let v1 = write_new(&writer, &key, "a").await;

    // Another process (a new sink) that did not read the key.
    let (sink, proxy, _t) = counted_sink(bao, "secret", 2).await;
    sink.write(
        &key,
        &document("b"),
        &WriteOptions::new(Precondition::Version(v1.clone())),
    )
    .await
    .unwrap();
    assert_eq!(
        proxy.take(),
        vec![
            format!("GET secret/metadata/{key}"),
            format!("POST secret/data/{key}")
        ]
    );

    // A version this sink knows is not current any more: a conflict, decided by Vault.
    let err = sink
        .write(
            &key,
            &document("c"),
            &WriteOptions::new(Precondition::Version(v1)),
        )
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(proxy.take(), vec![format!("GET secret/metadata/{key}")]);
}

#[tokio::test]
async fn a_remembered_version_that_another_writer_replaced_is_a_conflict_and_writes_nothing() {
    let bao = OpenBao::shared();
    let key = format!("alation/{}", unique("stale"));
    let (sink, proxy, _t) = counted_sink(bao, "secret", 2).await;
    write_new(&sink, &key, "ours").await;
    let seen = sink.read(&key).await.unwrap().unwrap();

    // Another rotator writes after our read.
    let (other, _op, _ot) = counted_sink(bao, "secret", 2).await;
    other
        .write(
            &key,
            &document("theirs"),
            &WriteOptions::new(Precondition::Any),
        )
        .await
        .unwrap();
    proxy.take();

    // Our write trusts what it read, and the cas refuses it: one call, nothing written.
    let err = sink
        .write(
            &key,
            &document("lost"),
            &WriteOptions::new(Precondition::Version(seen.version)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Conflict { .. }), "{err}");
    assert_eq!(proxy.take(), vec![format!("POST secret/data/{key}")]);
    let data = bao
        .root(Method::GET, &format!("secret/data/{key}"), None)
        .await;
    assert_eq!(data["data"]["data"]["api_access_token"], "theirs");

    // A lost cas is forgotten: the next write reads the metadata again and succeeds.
    sink.write(
        &key,
        &document("again"),
        &WriteOptions::new(Precondition::Any),
    )
    .await
    .unwrap();
    assert_eq!(
        proxy.take(),
        vec![
            format!("GET secret/metadata/{key}"),
            format!("POST secret/data/{key}")
        ]
    );
    assert_eq!(
        sink.read(&key).await.unwrap().unwrap().document,
        document("again")
    );
}

#[tokio::test]
async fn adopting_a_secret_writes_its_metadata_once_and_keeps_the_owners_keys() {
    let bao = OpenBao::shared();
    let key = format!("alation/{}", unique("adopt"));
    bao.root(
        Method::POST,
        &format!("secret/data/{key}"),
        Some(json!({ "data": { "api_access_token": "planted" } })),
    )
    .await;
    bao.root(
        Method::POST,
        &format!("secret/metadata/{key}"),
        Some(json!({ "custom_metadata": { "owner": "team-bi" } })),
    )
    .await;
    let (sink, proxy, _t) = counted_sink(bao, "secret", 2).await;
    let name = unique("adopted");
    let stored = sink.read(&key).await.unwrap().unwrap();
    assert!(!stored.managed);
    proxy.take();
    sink.write_as(
        &key,
        &access(&name, "2030-01-02T00:00:00Z", "adopted-1"),
        Precondition::Version(stored.version),
        true,
    )
    .await
    .unwrap();
    assert_eq!(
        proxy.take(),
        vec![
            format!("POST secret/metadata/{key}"),
            format!("POST secret/data/{key}")
        ]
    );
    let path = format!("secret/metadata/{key}");
    let custom = bao.root(Method::GET, &path, None).await["data"]["custom_metadata"].clone();
    assert_eq!(
        custom,
        json!({
            "owner": "team-bi",
            "managed-by": "alation-rotator",
            "integration": name,
            "token-expires-at": "2030-01-02T00:00:00Z",
        })
    );

    // From now on it is ours: a write over the version read is one call.
    let stored = sink.read(&key).await.unwrap().unwrap();
    assert!(stored.managed);
    proxy.take();
    sink.write_as(
        &key,
        &access(&name, "2030-01-03T00:00:00Z", "adopted-2"),
        Precondition::Version(stored.version),
        false,
    )
    .await
    .unwrap();
    assert_eq!(proxy.take(), vec![format!("POST secret/data/{key}")]);
}

#[tokio::test]
async fn kv_v1_reads_in_one_call_and_writes_in_two() {
    let bao = OpenBao::shared();
    let mount = kv1_mount().await;
    let (sink, proxy, _t) = counted_sink(bao, mount, 1).await;
    let key = unique("v1calls");
    let version = write_new(&sink, &key, "a").await;
    // No compare-and-set on KV v1: the precondition is checked by reading just before.
    assert_eq!(
        proxy.take(),
        vec![format!("GET {mount}/{key}"), format!("POST {mount}/{key}")]
    );
    assert_eq!(sink.read(&key).await.unwrap().unwrap().version, version);
    assert_eq!(proxy.take(), vec![format!("GET {mount}/{key}")]);
}
