//! Opening by URL and by builder: retries and a deadline that bound a read
//! on a stalled server, versions, and clear errors for what would
//! otherwise go wrong later.

use std::io::Read;
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use objectdev::{Error, ObjectDevice};

/// A loopback server that accepts connections and never answers.
struct Stalled {
    listener: TcpListener,
}

impl Stalled {
    fn start() -> Self {
        Stalled {
            listener: TcpListener::bind("127.0.0.1:0").unwrap(),
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.listener.local_addr().unwrap())
    }

    /// Accepts (and keeps, unanswered) connections until `stop` fires.
    fn serve(self, stop: mpsc::Receiver<()>) {
        self.listener.set_nonblocking(true).unwrap();
        let mut held = Vec::new();
        while stop.try_recv().is_err() {
            if let Ok((mut socket, _)) = self.listener.accept() {
                socket.set_nonblocking(true).unwrap();
                let _ = socket.read(&mut [0u8; 1024]);
                held.push(socket);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[test]
fn a_stalled_server_fails_the_read_at_the_deadline() {
    let stalled = Stalled::start();
    let options = [
        ("aws_endpoint", stalled.endpoint()),
        ("aws_access_key_id", "key".into()),
        ("aws_secret_access_key", "secret".into()),
        ("aws_region", "us-east-1".into()),
        ("aws_allow_http", "true".into()),
        ("objectdev_deadline", "1s".into()),
    ];
    let (stop, stop_rx) = mpsc::channel();
    let server = std::thread::spawn(move || stalled.serve(stop_rx));
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(ObjectDevice::open_with_options("s3://bucket/key", options));
    });
    // A guard, not a measurement: object_store's defaults would wait for
    // minutes.
    let outcome = result.recv_timeout(Duration::from_secs(15));
    stop.send(()).unwrap();
    server.join().unwrap();
    let err = outcome
        .expect("the open is still waiting on a stalled server")
        .unwrap_err();
    assert!(matches!(err, Error::Deadline { .. }), "{err}");
    let io: std::io::Error = err.into();
    assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
}

#[test]
fn a_bucket_without_a_key_is_a_clear_error() {
    for url in ["s3://bucket", "s3://bucket/"] {
        let err = ObjectDevice::open_with_options(url, [("aws_endpoint", "http://127.0.0.1:9")])
            .unwrap_err();
        assert!(matches!(err, Error::InvalidUrl { .. }), "{url}: {err}");
        assert!(err.to_string().contains("not an object"), "{err}");
    }
}

#[test]
fn a_version_is_kept_or_refused_never_dropped() {
    let err =
        ObjectDevice::open_with_options("memory:///key?versionId=3", [("k", "v")]).unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err}");
    assert!(err.to_string().contains("versionId"), "{err}");
    let err = ObjectDevice::open_with_options("s3://bucket/key?acl=1", [("k", "v")]).unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err}");
}

#[test]
fn a_version_the_store_does_not_serve_is_refused() {
    // s3s-fs, like local files and memory, ignores versionId and would
    // answer with the latest object.
    let server = testsupport::s3::S3Server::start();
    let key = testsupport::s3::unique_key("version");
    testsupport::s3::upload(&server.store(), &key, b"versioned");
    let url = format!("{}?versionId=v1", server.url(key.as_ref()));
    let err = ObjectDevice::open_with_options(&url, server.url_options()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidOption {
                option: "version",
                ..
            } | Error::Store(_)
        ),
        "{err}"
    );
    let err = ObjectDevice::builder()
        .version("v1")
        .build_from_bytes(vec![1])
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidOption {
                option: "version",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_part_size_below_the_minimum_is_refused() {
    let device = ObjectDevice::from_bytes(vec![0; 1 << 20]).unwrap();
    let err = device.with_part_size(1).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidOption {
                option: "part_size",
                ..
            }
        ),
        "{err}"
    );
    let err = ObjectDevice::builder()
        .part_size(4096)
        .build_from_bytes(vec![0; 10])
        .unwrap_err();
    assert!(matches!(err, Error::InvalidOption { .. }), "{err}");
}

#[test]
fn gcs_azure_and_http_urls_reach_their_stores() {
    // Each fails for want of a server or credentials, but past the scheme:
    // no "feature not enabled".
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let quick = [("objectdev_max_retries", "0"), ("objectdev_deadline", "5s")];
    let cases = [
        (
            "gs://bucket/key".to_owned(),
            vec![("google_service_account_key", "not json")],
        ),
        (
            "az://container/key".to_owned(),
            vec![
                ("azure_storage_use_emulator", "true"),
                ("azure_storage_account_name", "devstoreaccount1"),
            ],
        ),
        (format!("http://{closed}/key"), vec![]),
    ];
    for (url, options) in cases {
        let options = options.into_iter().chain(quick);
        let err = ObjectDevice::open_with_options(&url, options).unwrap_err();
        assert!(!err.to_string().contains("feature"), "{url}: {err}");
    }
}
