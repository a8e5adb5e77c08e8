//! `chat connect`: a line-oriented client for people, on a terminal or with
//! stdin piped.
//!
//! A typed line is a message; `/who` asks who is there; `/quit`, the end of
//! stdin, or Ctrl-C says bye and leaves. What the room says is printed as it
//! comes.

use chat_proto::{ClientConfig, Event};
use clap::Args;
use tokio::io::{AsyncBufReadExt, BufReader};
use transport_tokio::Client;

/// Flags of `chat connect`.
#[derive(Debug, Args)]
pub(crate) struct ConnectArgs {
    /// The name to log in with.
    #[arg(long)]
    name: String,
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:7878")]
    addr: String,
}

pub(crate) fn run(args: ConnectArgs) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(session(args))
}

async fn session(args: ConnectArgs) -> Result<(), String> {
    let client = Client::connect(&args.addr, &args.name, ClientConfig::default())
        .await
        .map_err(|e| format!("{}: {e}", args.addr))?;
    println!(
        "* logged in as {} at {} (/who lists users, /quit leaves)",
        args.name, args.addr
    );
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut typing = true;
    let mut interrupted = false;
    loop {
        tokio::select! {
            // Ctrl-C leaves politely; a second one quits at once.
            _ = tokio::signal::ctrl_c() => {
                if interrupted {
                    return Ok(());
                }
                interrupted = true;
                typing = false;
                let _ = client.close("interrupted");
            },
            line = stdin.next_line(), if typing => match line {
                Ok(Some(line)) => {
                    if let Some(stop) = command(&client, &line) {
                        typing = !stop;
                    }
                }
                // End of input: leave once what was typed is sent.
                Ok(None) | Err(_) => {
                    typing = false;
                    let _ = client.close("bye");
                }
            },
            // After `Closed` the stream ends (`None`) once the last bytes,
            // such as our `bye:`, are flushed: only then is it safe to exit.
            event = client.next_event() => match event {
                Some(event) => {
                    if matches!(event, Event::Closed { .. }) {
                        typing = false;
                    }
                    print_event(&event);
                }
                None => return Ok(()),
            },
        }
    }
}

/// Acts on one typed line; `Some(true)` once the user has left.
fn command(client: &Client, line: &str) -> Option<bool> {
    let result = match line.trim_end() {
        "" => return None,
        "/quit" => {
            let _ = client.close("bye");
            return Some(true);
        }
        "/who" => client.who(),
        text => client.say(text),
    };
    if let Err(e) = result {
        println!("! not sent: {e}");
    }
    Some(false)
}

fn print_event(event: &Event) {
    match event {
        Event::Message { from, text, .. } => println!("{from}: {text}"),
        Event::Joined { name, .. } => println!("* {name} joined"),
        Event::Left { name, .. } => println!("* {name} left"),
        Event::Users { names, .. } => println!("* users: {}", names.join(", ")),
        Event::Error { code, text } => println!("! {code}: {text}"),
        Event::Closed { reason } => println!("* connection closed ({reason:?})"),
        Event::LoggedIn { name } => println!("* logged in as {name}"),
        Event::BadFrame { error } => println!("! the server sent a bad frame: {error}"),
        other => println!("* {other:?}"),
    }
}
