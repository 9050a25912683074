//! A webhook receiver on 127.0.0.1: records the body of every POST and
//! answers 200, so notifier plugins can be checked end to end.

use std::io::{BufReader, Write};
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
                    let Ok(Some(request)) = crate::http1::read_request(&mut reader) else {
                        return;
                    };
                    let line = format!("{} {}", request.method, request.target);
                    store.lock().unwrap().push((line, String::from_utf8_lossy(&request.body).into()));
                    let mut stream = stream;
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                });
            }
        });
        Receiver { port, bodies }
    }

    /// The method and target, and the body, of each request so far.
    pub fn received(&self) -> Vec<(String, String)> {
        self.bodies.lock().unwrap().clone()
    }

    /// The bodies received so far, parsed as JSON.
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.received().iter().map(|(_, b)| serde_json::from_str(b).expect("webhook body is JSON")).collect()
    }
}
