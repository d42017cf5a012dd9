//! `anonymous_file`: both creation paths leave no name, mode 0600, close-on-exec.

mod common;

use std::os::unix::fs::MetadataExt;

use blockdev::{AnonymousMethod, ReadAt, WriteAt, anonymous_file, anonymous_file_with};
use common::TestDir;

fn check_anonymous(method: AnonymousMethod) {
    let dir = TestDir::new("anon");
    let file = anonymous_file_with(dir.path(), method).expect("create anonymous file");

    assert_eq!(dir.entries(), Vec::<String>::new(), "the file has a name");
    let meta = file.metadata().unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(meta.nlink(), 0, "a linked file is not anonymous");
    let fd_flags = rustix::io::fcntl_getfd(&file).unwrap();
    assert!(fd_flags.contains(rustix::io::FdFlags::CLOEXEC));

    file.write_all_at(3, b"payload").unwrap();
    let mut back = [0u8; 10];
    file.read_exact_at(0, &mut back).unwrap();
    assert_eq!(&back, b"\0\0\0payload");
    assert_eq!(dir.entries(), Vec::<String>::new());
}

#[test]
fn tmpfile_path_leaves_no_entry_and_is_private() {
    check_anonymous(AnonymousMethod::Tmpfile);
}

#[test]
fn named_fallback_leaves_no_entry_and_is_private() {
    check_anonymous(AnonymousMethod::Named);
}

#[test]
fn default_path_leaves_no_entry_and_is_private() {
    check_anonymous(AnonymousMethod::TmpfileOrNamed);
}

#[test]
fn many_named_files_in_one_dir_do_not_collide() {
    let dir = TestDir::new("anon-many");
    let files: Vec<_> = (0..64)
        .map(|_| anonymous_file_with(dir.path(), AnonymousMethod::Named).unwrap())
        .collect();
    for (i, file) in files.iter().enumerate() {
        file.write_all_at(0, &[i as u8]).unwrap();
    }
    for (i, file) in files.iter().enumerate() {
        let mut byte = [0u8];
        file.read_exact_at(0, &mut byte).unwrap();
        assert_eq!(byte[0], i as u8, "two handles share one file");
    }
    assert_eq!(dir.entries(), Vec::<String>::new());
}

#[test]
fn missing_directory_is_not_found_with_the_path_in_the_message() {
    let dir = TestDir::new("anon-missing");
    let missing = dir.path().join("no-such-dir");
    for method in [
        AnonymousMethod::TmpfileOrNamed,
        AnonymousMethod::Tmpfile,
        AnonymousMethod::Named,
    ] {
        let error = anonymous_file_with(&missing, method).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::NotFound, "{method:?}");
        assert!(
            error.to_string().contains("no-such-dir"),
            "{method:?}: {error}"
        );
    }
}

#[test]
fn a_regular_file_as_dir_is_an_error() {
    let dir = TestDir::new("anon-notdir");
    let not_a_dir = dir.path().join("plain");
    std::fs::write(&not_a_dir, b"x").unwrap();
    let error = anonymous_file(&not_a_dir).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::NotADirectory, "{error}");
    assert_eq!(dir.entries(), vec!["plain".to_string()]);
}

#[test]
fn files_survive_being_dropped_without_leaving_names() {
    let dir = TestDir::new("anon-drop");
    for method in [AnonymousMethod::Tmpfile, AnonymousMethod::Named] {
        let file = anonymous_file_with(dir.path(), method).unwrap();
        file.set_len(1 << 20).unwrap();
        drop(file);
    }
    assert_eq!(dir.entries(), Vec::<String>::new());
}

#[test]
fn a_failed_unlink_is_retried() {
    let dir = TestDir::new("anon-unlink-retry");
    let method = AnonymousMethod::NamedFailingUnlink { failures: 1 };
    let file = anonymous_file_with(dir.path(), method).expect("the second unlink succeeds");
    assert_eq!(file.metadata().unwrap().nlink(), 0);
    assert_eq!(dir.entries(), Vec::<String>::new());
}

#[test]
fn an_unlink_that_keeps_failing_returns_the_error_and_leaves_no_name() {
    let dir = TestDir::new("anon-unlink-fails");
    let method = AnonymousMethod::NamedFailingUnlink { failures: 2 };
    let err = anonymous_file_with(dir.path(), method).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ResourceBusy, "{err}");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
    assert_eq!(
        dir.entries(),
        Vec::<String>::new(),
        "a name was left behind"
    );
}
