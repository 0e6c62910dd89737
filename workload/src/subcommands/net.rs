//! `net`: TCP request/response latency and stream throughput between two copies of the
//! workload. The protocol: the client's first byte picks the mode; `P` echoes each byte
//! back (round trips), `S` sinks everything until the client shuts its side down and
//! answers with the byte count as 8 little-endian bytes (stream).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::{emit, seconds_since};
use crate::result::{ResultLine, READY_LINE};

const PING_PONG: u8 = b'P';
const STREAM: u8 = b'S';
const WARMUP_ROUND_TRIPS: u32 = 50;
const STREAM_CHUNK: usize = 64 * 1024;
const CONNECT_PATIENCE: Duration = Duration::from_secs(2);

/// Serves peers until `connections` have been served (forever when `None`).
pub fn serve(addr: SocketAddr, connections: Option<u64>) -> io::Result<()> {
    let listener = TcpListener::bind(addr)
        .map_err(|e| io::Error::new(e.kind(), format!("listening on {addr}: {e}")))?;
    let bound = listener.local_addr()?;
    emit(&ResultLine::new("net-serve").fact("addr", bound.to_string()));
    println!("{READY_LINE}");
    let mut served = 0;
    while connections.is_none_or(|limit| served < limit) {
        let (stream, _) = listener.accept()?;
        // One misbehaving client must not stop the peer.
        if let Err(e) = serve_one(stream) {
            eprintln!("workload net: a connection failed: {e}");
        }
        served += 1;
    }
    Ok(())
}

fn serve_one(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut mode = [0u8; 1];
    stream.read_exact(&mut mode)?;
    match mode[0] {
        PING_PONG => echo(&mut stream),
        STREAM => sink(&mut stream),
        other => Err(io::Error::other(format!("unknown mode byte {other:#x}"))),
    }
}

fn echo(stream: &mut TcpStream) -> io::Result<()> {
    let mut byte = [0u8; 1];
    loop {
        if stream.read(&mut byte)? == 0 {
            return Ok(());
        }
        stream.write_all(&byte)?;
    }
}

fn sink(stream: &mut TcpStream) -> io::Result<()> {
    let mut buffer = vec![0u8; STREAM_CHUNK];
    let mut total: u64 = 0;
    loop {
        match stream.read(&mut buffer)? {
            0 => break,
            n => total += n as u64,
        }
    }
    stream.write_all(&total.to_le_bytes())
}

/// Measures latency and throughput against a peer at `addr`.
pub fn connect(addr: SocketAddr, round_trips: u32, stream_mib: u64) -> io::Result<ResultLine> {
    let rtt_us = measure_round_trips(addr, round_trips.max(1))?;
    let stream_mb_s = measure_stream(addr, stream_mib.max(1))?;
    Ok(ResultLine::new("net")
        .value("rtt_us", rtt_us, "us")
        .value("stream_mb_per_s", stream_mb_s, "MB/s")
        .fact("peer", addr.to_string()))
}

/// Connects, retrying briefly while the peer is still starting.
fn dial(addr: SocketAddr, mode: u8) -> io::Result<TcpStream> {
    let start = Instant::now();
    let mut stream = loop {
        match TcpStream::connect(addr) {
            Ok(s) => break s,
            Err(e)
                if e.kind() == io::ErrorKind::ConnectionRefused
                    && start.elapsed() < CONNECT_PATIENCE =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("connecting to {addr}: {e}"),
                ))
            }
        }
    };
    stream.set_nodelay(true)?;
    stream.write_all(&[mode])?;
    Ok(stream)
}

fn measure_round_trips(addr: SocketAddr, round_trips: u32) -> io::Result<f64> {
    let mut stream = dial(addr, PING_PONG)?;
    let mut byte = [0u8; 1];
    let mut round_trip = |i: u32| -> io::Result<()> {
        stream.write_all(&[i as u8])?;
        stream.read_exact(&mut byte)?;
        if byte[0] != i as u8 {
            return Err(io::Error::other("peer echoed the wrong byte"));
        }
        Ok(())
    };
    for i in 0..WARMUP_ROUND_TRIPS {
        round_trip(i)?;
    }
    let start = Instant::now();
    for i in 0..round_trips {
        round_trip(i)?;
    }
    Ok(seconds_since(start) * 1e6 / f64::from(round_trips))
}

fn measure_stream(addr: SocketAddr, stream_mib: u64) -> io::Result<f64> {
    let mut stream = dial(addr, STREAM)?;
    let chunk = vec![0x5au8; STREAM_CHUNK];
    let total = stream_mib * (1 << 20);
    let start = Instant::now();
    let mut sent = 0;
    while sent < total {
        stream.write_all(&chunk)?;
        sent += STREAM_CHUNK as u64;
    }
    stream.shutdown(Shutdown::Write)?;
    let mut count = [0u8; 8];
    stream.read_exact(&mut count)?;
    let elapsed = seconds_since(start);
    let received = u64::from_le_bytes(count);
    if received != sent {
        return Err(io::Error::other(format!(
            "peer received {received} bytes of {sent} sent"
        )));
    }
    Ok(sent as f64 / elapsed / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_and_server_agree_over_loopback() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            for _ in 0..2 {
                let (stream, _) = listener.accept().unwrap();
                serve_one(stream).unwrap();
            }
        });
        let line = connect(addr, 20, 1).unwrap();
        server.join().unwrap();
        assert!(line.values["rtt_us"].value > 0.0);
        assert!(line.values["stream_mb_per_s"].value > 0.0);
    }

    #[test]
    fn unreachable_peer_is_an_error_naming_it() {
        // Port 1 on loopback: nothing listens there in a test environment.
        let err = connect("127.0.0.1:1".parse().unwrap(), 1, 1).unwrap_err();
        assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    }
}
