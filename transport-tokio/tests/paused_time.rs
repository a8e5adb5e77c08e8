//! Keepalive over real loopback sockets on tokio's paused clock: minutes of
//! protocol time pass in milliseconds, with the default 30 s / 15 s timers.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::time::Instant;
use transport_tokio::{Client, ClientConfig, CloseReason, Event, Server, ServerConfig};

#[tokio::test(start_paused = true)]
async fn ten_idle_minutes_keep_the_session() {
    let server = Server::bind("127.0.0.1:0", ServerConfig::default())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve());
    let client = Client::connect(addr, "sleeper", ClientConfig::default())
        .await
        .unwrap();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(started.elapsed() >= Duration::from_secs(600));
    client.say("awake").await.unwrap();
    loop {
        match client.next_event().await {
            // Its own arrival in the default room comes first.
            Some(Event::Joined { .. }) => continue,
            event => {
                assert!(
                    matches!(&event, Some(Event::Message { from, text, .. })
                        if from == "sleeper" && text == "awake"),
                    "{event:?}"
                );
                break;
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_silent_server_is_declared_dead_after_idle_plus_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        assert_eq!(lines.next_line().await.unwrap().unwrap(), "iam:lonely");
        write.write_all(b"ok:lonely\n").await.unwrap();
        // Swallow pings, never answer.
        while let Ok(Some(_)) = lines.next_line().await {}
    });
    let client = Client::connect(addr, "lonely", ClientConfig::plain())
        .await
        .unwrap();
    let started = Instant::now();
    let event = client.next_event().await;
    assert_eq!(
        event,
        Some(Event::Closed {
            reason: CloseReason::Timeout
        })
    );
    // Pinged after 30 s of silence, given up 15 s later.
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(45) && waited < Duration::from_secs(46),
        "{waited:?}"
    );
}
