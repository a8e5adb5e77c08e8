//! The examples, run: the bot (examples/bot.rs) against a real server on
//! loopback greets a newcomer, answers `!time` once, and does not answer
//! the `!time` it is shown again as history when it joins.

use std::time::Duration;

use transport_tokio::{Client, ClientConfig, Event, Server, ServerConfig};

#[allow(dead_code)]
#[path = "../examples/bot.rs"]
mod bot;

/// The next message from `from`, skipping everything else.
async fn next_from(client: &Client, from: &str) -> String {
    loop {
        match client.next_event().await {
            Some(Event::Message {
                from: who, text, ..
            }) if who == from => return text,
            Some(_) => {}
            None => panic!("the session ended"),
        }
    }
}

#[tokio::test]
async fn the_bot_greets_newcomers_and_answers_live_time_requests_only() {
    let server = Server::bind("127.0.0.1:0", ServerConfig::default())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    let serving = tokio::spawn(server.serve());
    let test = async {
        // A request said before the bot arrives: the bot sees it as history.
        let early = Client::connect(addr, "early", ClientConfig::default())
            .await
            .unwrap();
        early.say("!time").await.unwrap();
        let bot = Client::connect(addr, "bot", ClientConfig::default())
            .await
            .unwrap();
        let running = tokio::spawn(async move {
            bot::serve_bot(&bot, "bot", |_| {}).await.unwrap();
        });
        let lisi = Client::connect(addr, "lisi", ClientConfig::default())
            .await
            .unwrap();
        assert_eq!(next_from(&lisi, "bot").await, "welcome, lisi!");
        lisi.say("!time").await.unwrap();
        let answer = next_from(&lisi, "bot").await;
        assert!(
            answer.starts_with("it is ") && answer.ends_with(" seconds past the Unix epoch"),
            "{answer}"
        );
        // One answer, to the live request: the next thing the bot says is
        // the greeting for the next newcomer.
        let wang = Client::connect(addr, "wangwu", ClientConfig::default())
            .await
            .unwrap();
        assert_eq!(next_from(&lisi, "bot").await, "welcome, wangwu!");
        drop(wang);
        handle.shutdown();
        running.await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(20), test)
        .await
        .expect("the example finished in time");
    serving.await.unwrap().unwrap();
}
