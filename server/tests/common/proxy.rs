//! A TCP proxy a test can cut: while cut, it closes every connection it carries and every
//! new one at once, as a database behind a failed network path or a restarting proxy looks
//! to the server.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct CuttableProxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl CuttableProxy {
    /// Forwards connections on a fresh local port to `target`.
    pub async fn start(target: SocketAddr) -> CuttableProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let (up, links) = (up.clone(), links.clone());
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let link = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    links.lock().unwrap().push(link);
                }
            })
        };
        CuttableProxy {
            addr,
            up,
            links,
            accept,
        }
    }

    /// Drops every carried connection and refuses new ones until [`Self::restore`].
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// `url` (`postgres://user:pass@host:port/db`) with its host and port replaced by `addr`;
/// also returns the address it named.
pub fn reroute(url: &str, addr: SocketAddr) -> (String, SocketAddr) {
    let at = url.rfind('@').expect("a user in the URL") + 1;
    let slash = url[at..].find('/').map_or(url.len(), |i| at + i);
    let original: SocketAddr = url[at..slash]
        .parse()
        .expect("the PostgreSQL URL names ip:port");
    (format!("{}{}{}", &url[..at], addr, &url[slash..]), original)
}
