//! The real files, uploaded to the S3 server `.ci/run` starts on
//! 127.0.0.1, read by the examples through an object URL: what they print
//! must be what they print for the local file.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use objectdev::ObjectDevice;

use super::support::on_ci;

/// Uploads `file` to the test bucket and returns its `s3://` URL, or `None`
/// (after saying why; a panic under CI) when no server is configured.
pub(crate) fn upload(file: &Path) -> Option<String> {
    let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let (Some(endpoint), Some(bucket)) = (var("AWS_ENDPOINT"), var("OBJECTDEV_TEST_BUCKET")) else {
        let message = "object-URL test not run: no S3 server (AWS_ENDPOINT and \
                       OBJECTDEV_TEST_BUCKET unset; .ci/run starts one)";
        assert!(!on_ci(), "{message}, and CI is set");
        eprintln!("{message}");
        return None;
    };
    let host = url::Url::parse(&endpoint)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned));
    assert!(
        matches!(host.as_deref(), Some("127.0.0.1" | "localhost" | "[::1]")),
        "tests only talk to a server on loopback, not {endpoint}"
    );
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = file.file_name().expect("a file name").to_string_lossy();
    let url = format!(
        "s3://{bucket}/real-files/{}-{}/{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let bytes = std::fs::read(file).expect("read the file to upload");
    ObjectDevice::create(&url, bytes).unwrap_or_else(|err| panic!("upload to {url}: {err}"));
    Some(url)
}
