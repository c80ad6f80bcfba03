//! The connection layer through real sockets (issue 17, finding 2): idle sockets, headers sent a line
//! at a time and bodies trickled a byte at a time are cut off by their timeouts; a declared length
//! over the limit gets 413 before any body is sent; connections are capped per address, and the
//! server keeps answering everyone else throughout.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::TestApp;
use karavan_server::ServerConfig;
use karavan_server::listen::ConnectionLimits;

fn limits() -> ConnectionLimits {
    ConnectionLimits {
        max_connections: 64,
        max_per_address: 6,
        header_timeout: Duration::from_millis(800),
        body_timeout: Duration::from_millis(1500),
    }
}

/// A server on a free port with short timeouts; the runtime lives as long as the returned guard.
fn start() -> (SocketAddr, TestApp, tokio::runtime::Runtime, String) {
    let config = ServerConfig { connections: limits(), max_body_bytes: 64 * 1024, ..ServerConfig::default() };
    let app = TestApp::with_config(config.clone());
    let member = app.member("Conn");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let state = karavan_server::AppState::new(app.store.clone(), app.search.clone(), config).unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let address = listener.local_addr().unwrap();
    runtime.spawn(karavan_server::serve(listener, state, std::future::pending(), Duration::from_secs(1)));
    (address, app, runtime, member.editor)
}

/// Reads until the server closes the connection (or `within` passes); returns what it sent and
/// whether it closed.
fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, bool) {
    let deadline = Instant::now() + within;
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while Instant::now() < deadline {
        stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        match stream.read(&mut buffer) {
            Ok(0) => return (String::from_utf8_lossy(&received).into_owned(), true),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return (String::from_utf8_lossy(&received).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&received).into_owned(), false)
}

fn healthz(address: SocketAddr) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").unwrap();
    read_until_closed(&mut stream, Duration::from_secs(5)).0
}

#[test]
fn slow_and_idle_clients_are_cut_off_and_others_still_served() {
    let (address, _app, _runtime, key) = start();

    // An idle socket is closed after the header timeout.
    let mut idle = TcpStream::connect(address).unwrap();
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut idle, Duration::from_secs(5));
    assert!(closed, "an idle connection stays open");
    assert!(started.elapsed() >= Duration::from_millis(700), "closed before its timeout: {:?}", started.elapsed());

    // Headers sent a line at a time, each well within any per-read timeout, still run out.
    let mut slow = TcpStream::connect(address).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
    let started = Instant::now();
    let mut closed = false;
    for n in 0..20 {
        std::thread::sleep(Duration::from_millis(200));
        if slow.write_all(format!("x-slow-{n}: 1\r\n").as_bytes()).is_err() {
            closed = true;
            break;
        }
        let (_, gone) = read_until_closed(&mut slow, Duration::from_millis(1));
        if gone {
            closed = true;
            break;
        }
    }
    assert!(closed, "headers trickled for {:?} and the connection stayed open", started.elapsed());

    // A keep-alive connection that goes idle after a request is closed too.
    let mut kept = TcpStream::connect(address).unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let (answer, closed) = read_until_closed(&mut kept, Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed, "an idle keep-alive connection stays open");

    // A body sent a byte at a time is answered 408 when its deadline passes.
    let mut trickle = TcpStream::connect(address).unwrap();
    let head = format!(
        "POST /v1/items HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n"
    );
    trickle.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    let mut answer = String::new();
    while started.elapsed() < Duration::from_secs(6) {
        std::thread::sleep(Duration::from_millis(100));
        if trickle.write_all(b" ").is_err() {
            break;
        }
        let (got, closed) = read_until_closed(&mut trickle, Duration::from_millis(1));
        answer.push_str(&got);
        if closed || !answer.is_empty() {
            break;
        }
    }
    assert!(answer.starts_with("HTTP/1.1 408"), "after {:?}: {answer:?}", started.elapsed());
    assert!(answer.contains("request_timeout"), "{answer}");

    assert!(healthz(address).starts_with("HTTP/1.1 200"), "the server still answers");
}

#[test]
fn a_declared_length_over_the_limit_is_refused_before_the_body() {
    let (address, _app, _runtime, key) = start();
    let mut stream = TcpStream::connect(address).unwrap();
    let head = format!(
        "POST /v1/items HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: 1000000000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    // Nothing of the body is sent: the answer must come anyway, at once.
    let (answer, _) = read_until_closed(&mut stream, Duration::from_millis(600));
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    // Without a key too: the declared length is checked before anything else.
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(b"POST /v1/items HTTP/1.1\r\nhost: x\r\ncontent-length: 99999999999\r\n\r\n").unwrap();
    let (answer, _) = read_until_closed(&mut stream, Duration::from_millis(600));
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
}

#[test]
fn connections_from_one_address_are_capped() {
    let (address, _app, _runtime, _key) = start();
    let cap = limits().max_per_address;
    let held: Vec<TcpStream> = (0..cap).map(|_| TcpStream::connect(address).unwrap()).collect();
    // The connections above are accepted before the next one is (the listener takes them in order);
    // the next is closed at once, long before any timeout.
    let mut extra = TcpStream::connect(address).unwrap();
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut extra, Duration::from_millis(500));
    assert!(closed && started.elapsed() < Duration::from_millis(500), "a connection over the cap was kept");
    drop(held);
    // Once they are gone, new connections are served again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = healthz(address);
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "never served again: {answer:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
