//! A loopback SOCKS5 proxy (RFC 1928, no authentication, CONNECT only)
//! standing in for Tor in tests: it connects `.onion` names it knows to a
//! loopback address, keeping the port asked for, and refuses every other
//! destination with "host unreachable", as Tor does for a service it
//! cannot reach. Every destination asked for is recorded.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The proxy; it stops when dropped.
pub struct SocksProxy {
    addr: SocketAddr,
    routes: Arc<Mutex<HashMap<String, IpAddr>>>,
    asked: Arc<Mutex<Vec<(String, u16)>>>,
    task: JoinHandle<()>,
}

impl SocksProxy {
    /// Starts a proxy on a free loopback port.
    pub async fn start() -> io::Result<SocksProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let routes: Arc<Mutex<HashMap<String, IpAddr>>> = Arc::default();
        let asked: Arc<Mutex<Vec<(String, u16)>>> = Arc::default();
        let (r, a) = (Arc::clone(&routes), Arc::clone(&asked));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (r, a) = (Arc::clone(&r), Arc::clone(&a));
                tokio::spawn(async move {
                    // A client that hangs up mid-handshake is its business.
                    let _ = serve(stream, &r, &a).await;
                });
            }
        });
        Ok(SocksProxy {
            addr,
            routes,
            asked,
            task,
        })
    }

    /// Where the proxy listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connects `name` (any port) to `to`, from now on.
    pub fn route(&self, name: &str, to: IpAddr) {
        self.routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_ascii_lowercase(), to);
    }

    /// Every `(name, port)` a client asked for, in order.
    pub fn asked(&self) -> Vec<(String, u16)> {
        self.asked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for SocksProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut client: TcpStream,
    routes: &Mutex<HashMap<String, IpAddr>>,
    asked: &Mutex<Vec<(String, u16)>>,
) -> io::Result<()> {
    // Greeting: VER, NMETHODS, METHODS; we take "no authentication".
    let mut head = [0u8; 2];
    client.read_exact(&mut head).await?;
    let mut methods = vec![0u8; usize::from(head[1])];
    client.read_exact(&mut methods).await?;
    if head[0] != 5 || !methods.contains(&0) {
        client.write_all(&[5, 0xff]).await?;
        return Ok(());
    }
    client.write_all(&[5, 0]).await?;
    // Request: VER, CMD, RSV, ATYP, DST.ADDR, DST.PORT.
    let mut req = [0u8; 4];
    client.read_exact(&mut req).await?;
    let name = match req[3] {
        3 => {
            let len = client.read_u8().await?;
            let mut name = vec![0u8; usize::from(len)];
            client.read_exact(&mut name).await?;
            String::from_utf8_lossy(&name).to_ascii_lowercase()
        }
        1 => {
            let mut a = [0u8; 4];
            client.read_exact(&mut a).await?;
            IpAddr::from(a).to_string()
        }
        _ => {
            let mut a = [0u8; 16];
            client.read_exact(&mut a).await?;
            IpAddr::from(a).to_string()
        }
    };
    let port = client.read_u16().await?;
    asked
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((name.clone(), port));
    let to = routes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&name)
        .copied();
    // Replies: VER, REP, RSV, ATYP=IPv4, BND.ADDR, BND.PORT.
    let reply = |code: u8| [5, code, 0, 1, 0, 0, 0, 0, 0, 0];
    if req[1] != 1 {
        return client.write_all(&reply(7)).await; // command not supported
    }
    let Some(to) = to else {
        return client.write_all(&reply(4)).await; // host unreachable
    };
    let Ok(mut upstream) = TcpStream::connect((to, port)).await else {
        return client.write_all(&reply(5)).await; // connection refused
    };
    client.write_all(&reply(0)).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}
