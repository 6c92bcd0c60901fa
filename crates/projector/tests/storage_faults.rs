//! Stores that were emptied, damaged or made read-only are refused at start,
//! saying what to do, against the real binary: never taken for a new store,
//! never a healthy start followed by an error on every write.

use crate::support;

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use support::{job_body, job_store, scratch_dir, submit, up, up_args};

/// Runs `up` on `data_dir` to a stop, with a few jobs in its job store.
async fn used_store(data_dir: &Path) {
    let cluster = up(data_dir, &[]);
    let gateway = cluster.url("gateway");
    for index in 0..20 {
        let id = format!("kept-{index}");
        assert_eq!(
            submit(&gateway, &job_body(&id, "C-000001")).await.status(),
            202
        );
    }
    support::finished(&gateway, "kept-19", Duration::from_secs(60)).await;
    cluster.stop();
}

/// `up` on `data_dir`, expected to refuse: its stderr.
fn refused_start(data_dir: &Path) -> String {
    let output: Output = support::projector(&up_args(data_dir, &[]))
        .env("PROJECTOR_DATASVC_TOKEN", support::DATASVC_TOKEN)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "up started on a bad store:\n{stderr}"
    );
    stderr
}

fn overwrite(path: &Path, offset: u64, bytes: &[u8]) {
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.write_all(bytes).unwrap();
    file.sync_all().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_emptied_job_store_is_refused_not_taken_for_a_new_one() {
    let data_dir = scratch_dir();
    used_store(data_dir.path()).await;
    std::fs::File::create(job_store(data_dir.path())).unwrap();
    let stderr = refused_start(data_dir.path());
    assert!(stderr.contains("exists but is empty"), "{stderr}");
    assert!(stderr.contains("Restore it from a backup"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_garbled_job_store_is_refused_at_start() {
    let data_dir = scratch_dir();
    used_store(data_dir.path()).await;
    let store = job_store(data_dir.path());
    let size = std::fs::metadata(&store).unwrap().len();
    assert!(
        size > 3 * 4096,
        "the store holds several pages ({size} bytes)"
    );
    overwrite(&store, 2 * 4096, &[0x5a; 4096]);
    let stderr = refused_start(data_dir.path());
    assert!(stderr.contains("is damaged"), "{stderr}");
    assert!(stderr.contains("restore it from a backup"), "{stderr}");

    overwrite(&store, 0, b"definitely not an SQLite header!");
    let stderr = refused_start(data_dir.path());
    assert!(stderr.contains("is damaged"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_store_this_process_cannot_write_is_refused_at_start() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;

    let data_dir = scratch_dir();
    used_store(data_dir.path()).await;
    let store = job_store(data_dir.path());
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o444)).unwrap();
    // The directory stays open to all, so the write-ahead log could be made:
    // only the store itself is read-only.
    std::fs::set_permissions(data_dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    for entry in std::fs::read_dir(data_dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path != store {
            let mode = if path.is_dir() { 0o777 } else { 0o666 };
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
    let mut command = support::projector(&up_args(data_dir.path(), &[]));
    command.env("PROJECTOR_DATASVC_TOKEN", support::DATASVC_TOKEN);
    // Permissions do not bind root: run as nobody when the test is root.
    if unsafe { libc::geteuid() } == 0 {
        const NOBODY: u32 = 65534;
        command.uid(NOBODY).gid(NOBODY);
    }
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "up started on a read-only store:\n{stderr}"
    );
    assert!(
        stderr.contains("job store") && stderr.contains("cannot be written"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_postgres_database_is_refused_at_start() {
    let database = database::testing::TestDatabase::create().await;
    let migrated = support::projector(&["migrate", "--database-url", database.url()])
        .output()
        .unwrap();
    assert!(migrated.status.success(), "{migrated:?}");
    let name = database.url().rsplit('/').next().unwrap();
    let session = sqlx::PgPool::connect(database.url()).await.unwrap();
    // The test database's own name, made of hex digits by the test harness.
    sqlx::query(&format!(
        "ALTER DATABASE {name} SET default_transaction_read_only = on"
    ))
    .execute(&session)
    .await
    .unwrap();
    session.close().await;
    let output = support::projector(&[
        "gateway",
        "--addr",
        "127.0.0.1:0",
        "--database-url",
        database.url(),
    ])
    .env("PROJECTOR_API_KEY", support::KEY)
    .env("PROJECTOR_TENANT_SECRET", support::TENANT_SECRET)
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("default_transaction_read_only"), "{stderr}");
}

/// A tmpfs mounted on a directory of its own, unmounted when dropped.
struct Tmpfs {
    directory: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounted with `options` (`size=1m`, say). Needs root, as CI has;
    /// fails naming what is missing otherwise.
    fn mount(options: &str) -> Tmpfs {
        let directory = scratch_dir();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(directory.path())
            .output()
            .expect("the full-disk test needs `mount` (util-linux) and root");
        assert!(
            mounted.status.success(),
            "the full-disk test needs root to mount a tmpfs: {}",
            String::from_utf8_lossy(&mounted.stderr)
        );
        Tmpfs { directory }
    }

    fn path(&self) -> &Path {
        self.directory.path()
    }

    fn resize(&self, size: &str) {
        let resized = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.path())
            .status()
            .unwrap();
        assert!(resized.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.directory.path())
            .status();
    }
}

/// Fills the file system of `directory` until a write fails for lack of space.
fn fill(directory: &Path) {
    let mut filler = std::fs::File::create(directory.join("filler")).unwrap();
    let block = vec![0u8; 16 * 1024];
    loop {
        match filler.write_all(&block) {
            Ok(()) => {}
            Err(error) if error.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(error) => panic!("cannot fill the tmpfs: {error}"),
        }
    }
    let mut byte_by_byte = std::fs::OpenOptions::new()
        .append(true)
        .open(directory.join("filler"))
        .unwrap();
    while byte_by_byte
        .write_all(&[0])
        .and_then(|()| byte_by_byte.sync_all())
        .is_ok()
    {}
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_answers_507_and_unready_and_the_writer_recovers_when_space_returns() {
    let logs = scratch_dir();
    let disk = Tmpfs::mount("size=1m");
    let gateway_process = support::lone_gateway(&disk.path().join("jobs.sqlite"), logs.path(), &[]);
    let gateway = gateway_process.url("gateway");
    let client = support::client();
    let mut accepted = Vec::new();
    for index in 0..20 {
        let id = format!("before-{index}");
        assert_eq!(
            submit(&gateway, &job_body(&id, "C-000001")).await.status(),
            202
        );
        accepted.push(id);
    }
    fill(disk.path());
    let mut refusals = Vec::new();
    for index in 0..2_000 {
        let id = format!("during-{index}");
        let answer = submit(&gateway, &job_body(&id, "C-000001")).await;
        match answer.status().as_u16() {
            202 => accepted.push(id),
            status => {
                let problem: serde_json::Value = answer.json().await.unwrap();
                refusals.push((status, problem));
                if refusals.len() == 3 {
                    break;
                }
            }
        }
    }
    assert_eq!(refusals.len(), 3, "the disk never filled");
    for (status, problem) in &refusals {
        assert_eq!(*status, 507, "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains("disk is full"),
            "{problem}"
        );
    }
    let unready = client
        .get(format!("{gateway}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(unready.status(), 503);
    let why = unready.text().await.unwrap();
    assert!(
        why.contains("job store") && why.contains("disk is full"),
        "{why}"
    );

    disk.resize("64m");
    assert_eq!(
        submit(&gateway, &job_body("after", "C-000001"))
            .await
            .status(),
        202,
        "the next submission once space returns"
    );
    accepted.push("after".to_string());
    let ready = client
        .get(format!("{gateway}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    for id in &accepted {
        let job = support::status(&gateway, id).await;
        assert_eq!(job["status"], "queued", "{id}: {job}");
    }
    drop(gateway_process);
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_recovers_by_itself_once_space_returns() {
    let logs = scratch_dir();
    let disk = Tmpfs::mount("size=1m");
    let gateway_process = support::lone_gateway(&disk.path().join("jobs.sqlite"), logs.path(), &[]);
    let gateway = gateway_process.url("gateway");
    fill(disk.path());
    let mut index = 0;
    while submit(&gateway, &job_body(&format!("fill-{index}"), "C-000001"))
        .await
        .status()
        == 202
    {
        index += 1;
        assert!(index < 2_000, "the disk never filled");
    }
    let readyz = format!("{gateway}/readyz");
    let client = support::client();
    assert_eq!(client.get(&readyz).send().await.unwrap().status(), 503);
    std::fs::remove_file(disk.path().join("filler")).unwrap();
    // No submission comes (a load balancer sends none to an unready node):
    // the readiness check itself finds that writes succeed again.
    assert_eq!(client.get(&readyz).send().await.unwrap().status(), 200);
    drop(gateway_process);
}

#[test]
fn a_read_only_cache_directory_is_refused_for_what_it_is() {
    let data_dir = scratch_dir();
    let read_only = Tmpfs::mount("ro,size=1m");
    let cache_dir = read_only.path().join("node-1");
    let store_url = format!("sqlite://{}", job_store(data_dir.path()).display());
    let migrated =
        support::projector(&["migrate", "--store", "jobs", "--database-url", &store_url])
            .status()
            .unwrap();
    assert!(migrated.success());
    let output = support::projector(&[
        "worker",
        "--database-url",
        &store_url,
        "--cache-dir",
        cache_dir.to_str().unwrap(),
        "--datasvc-url",
        "http://127.0.0.1:1/api",
    ])
    .env("PROJECTOR_DATASVC_TOKEN", support::DATASVC_TOKEN)
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("cache directory") && stderr.contains("cannot be written"),
        "{stderr}"
    );
    assert!(stderr.contains("--cache-dir"), "{stderr}");
    assert!(!stderr.contains("aside"), "{stderr}");
}
