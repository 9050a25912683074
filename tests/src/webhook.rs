//! A webhook receiver on 127.0.0.1: records the body of every POST and
//! answers 200, so notifier plugins can be checked end to end.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// A running receiver; it stops with the test process.
pub struct Receiver {
    /// Its port.
    pub port: u16,
    bodies: Arc<Mutex<Vec<(String, String)>>>,
}

impl Receiver {
    /// Listens on an ephemeral port.
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let port = listener.local_addr().unwrap().port();
        let bodies: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let store = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let store = store.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).is_err() {
                        return;
                    }
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    store
                        .lock()
                        .unwrap()
                        .push((request_line.trim().to_string(), String::from_utf8_lossy(&body).into()));
                    let mut stream = stream;
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                });
            }
        });
        Receiver { port, bodies }
    }

    /// The request lines and bodies received so far.
    pub fn received(&self) -> Vec<(String, String)> {
        self.bodies.lock().unwrap().clone()
    }

    /// The bodies received so far, parsed as JSON.
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.received().iter().map(|(_, b)| serde_json::from_str(b).expect("webhook body is JSON")).collect()
    }
}
