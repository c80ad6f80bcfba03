//! A full disk, for real (issue 17, finding 3): the data directory on a small tmpfs, filled up while
//! the server runs. Publishing answers 503 `storage_full` (not 500, nothing half-written),
//! `/healthz` says `degraded`, reads keep working, and once space is freed everything recovers
//! without a restart. Mounting needs root, as on the CI machine; elsewhere the test says it cannot
//! run and passes.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Server, member_with_key, realistic_item};

/// A tmpfs mounted on a temporary directory, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|status| status.success());
        mounted.then_some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Fills the file system with one file until it is full; returns the file.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let filler = dir.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let block = vec![0u8; 64 * 1024];
    while file.write_all(&block).is_ok() {}
    // The last partial block, byte by byte in bigger steps.
    let small = vec![0u8; 512];
    while file.write_all(&small).is_ok() {}
    let _ = file.sync_all();
    filler
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_marks_health_degraded_and_recovers() {
    let Some(disk) = SmallDisk::mount(48) else {
        eprintln!("cannot mount a tmpfs here (not root?): the disk-full test did not run");
        return;
    };
    let data = disk.path().join("data");
    let (_member, key) = member_with_key(&data, "Disk Test Agency", "editor");
    let server = Server::start(&data, &["--translation-workers", "0"]);
    let client = reqwest::Client::new();
    let publish = |n: usize| {
        let (client, base, key) = (client.clone(), server.base.clone(), key.clone());
        async move {
            let response = client
                .post(format!("{base}/v1/items"))
                .bearer_auth(&key)
                .json(&realistic_item(&format!("urn:disk:{n}"), n))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };
    let health = || {
        let (client, base) = (client.clone(), server.base.clone());
        async move {
            let response = client.get(format!("{base}/healthz")).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };
    assert_eq!(publish(0).await.0, 201);
    assert_eq!(health().await.0, 200);

    let filler = fill(disk.path());
    // SQLite may still have room in pages it holds; a few publishes use it up.
    let mut refused = None;
    for n in 1..200 {
        let (status, body) = publish(n).await;
        if status != 201 {
            refused = Some((n, status, body));
            break;
        }
    }
    let (refused_at, status, body) = refused.expect("publishing kept working on a full disk");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "storage_full", "{body}");
    let (status, state) = health().await;
    assert_eq!((status, state["status"].as_str()), (503, Some("degraded")), "{state}");
    assert_eq!(state["checks"]["storage"]["status"], "full");
    // Reads keep working, and the refused item was not half-written.
    let response = client.get(format!("{}/v1/items?limit=100", server.base)).bearer_auth(&key).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let listed: serde_json::Value = response.json().await.unwrap();
    let uris: Vec<&str> = listed["items"].as_array().unwrap().iter().filter_map(|i| i["uri"].as_str()).collect();
    assert!(!uris.contains(&format!("urn:disk:{refused_at}").as_str()), "the refused item is listed");
    assert!(uris.contains(&"urn:disk:0"));

    // Space comes back: health says so by itself, and publishing works again, without a restart.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, state) = health().await;
        if status == 200 {
            assert_eq!(state["status"], "ok");
            break;
        }
        assert!(Instant::now() < deadline, "health never recovered: {state}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = publish(refused_at).await;
    assert_eq!(status, 201, "{body}");
    drop(server);
}
