//! A minimal HTTP/1.1 upstream for the proxy tests: it records every request's head and answers
//! in one of a few fixed ways. (httpbin covers echo behaviour; this one covers sizes and silence
//! that httpbin caps or cannot produce.)

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone, Copy)]
pub enum Answer {
    /// 200 with the request head as the body.
    Echo,
    /// 200 with this many bytes of `x`, written in 64 KiB chunks.
    Bytes(u64),
    /// Accepts, reads the request, never answers.
    Silent,
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub head: String,
    pub at: Instant,
}

pub struct Upstream {
    pub base: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    pub async fn start(answer: Answer) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Upstream::serve(listener, answer)
    }

    pub fn serve(listener: TcpListener, answer: Answer) -> Upstream {
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    log.lock().unwrap().push(Seen {
                        head: head.clone(),
                        at: Instant::now(),
                    });
                    match answer {
                        Answer::Echo => {
                            let reply = format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{head}",
                                head.len()
                            );
                            let _ = socket.write_all(reply.as_bytes()).await;
                        }
                        Answer::Bytes(total) => {
                            let start = format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {total}\r\nconnection: close\r\n\r\n"
                            );
                            if socket.write_all(start.as_bytes()).await.is_err() {
                                return;
                            }
                            let chunk = vec![b'x'; 64 * 1024];
                            let mut left = total;
                            while left > 0 {
                                let n = left.min(chunk.len() as u64) as usize;
                                if socket.write_all(&chunk[..n]).await.is_err() {
                                    return;
                                }
                                left -= n as u64;
                            }
                        }
                        Answer::Silent => {
                            tokio::time::sleep(std::time::Duration::from_secs(120)).await;
                        }
                    }
                });
            }
        });
        Upstream {
            base: format!("http://127.0.0.1:{port}"),
            seen,
        }
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}
