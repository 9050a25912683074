//! A TCP relay that caps the upload rate to a registry, so a copy lasts long
//! enough to watch (the progress display's test). Bytes pass unchanged.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A relay on 127.0.0.1 in front of `upstream`.
pub struct SlowLink {
    /// `127.0.0.1:port` of the relay.
    pub host: String,
}

impl SlowLink {
    /// Relays to `upstream` (`host:port`), sending at most `bytes_per_sec`
    /// per connection towards it; answers come back at full speed.
    pub fn start(upstream: &str, bytes_per_sec: u64) -> SlowLink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
        let host = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
        let upstream = upstream.to_string();
        // The accept thread lives as long as the test process; each relay ends with its connection.
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let Ok(up) = TcpStream::connect(&upstream) else { continue };
                let (conn2, up2) = (conn.try_clone().unwrap(), up.try_clone().unwrap());
                std::thread::spawn(move || pump(conn, up, Some(bytes_per_sec)));
                std::thread::spawn(move || pump(up2, conn2, None));
            }
        });
        SlowLink { host }
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, rate: Option<u64>) {
    let mut buf = vec![0u8; 64 << 10];
    let started = Instant::now();
    let mut sent = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n as u64;
        if let Some(rate) = rate {
            let due = Duration::from_secs_f64(sent as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
