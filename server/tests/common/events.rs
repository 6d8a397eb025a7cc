//! Reading a server-sent-event stream in tests.

use reqwest::StatusCode;

/// An open event stream and the bytes read so far.
pub struct EventStream {
    resp: reqwest::Response,
    buf: String,
}

impl EventStream {
    pub async fn open(url: &str, token: &str) -> EventStream {
        let resp = reqwest::Client::new()
            .get(format!("{url}/v1/sync/events?token={token}"))
            .send()
            .await
            .expect("events request");
        assert_eq!(resp.status(), StatusCode::OK);
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        EventStream {
            resp,
            buf: String::new(),
        }
    }

    /// The next event block (comments included), without its trailing blank line.
    pub async fn next_block(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block = self.buf[..end].to_owned();
                self.buf.drain(..end + 2);
                return block;
            }
            let chunk = self
                .resp
                .chunk()
                .await
                .expect("stream read")
                .expect("stream ended");
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The cursor of the next poke, skipping keep-alive comments.
    pub async fn next_poke(&mut self) -> u64 {
        loop {
            let block = self.next_block().await;
            if block.lines().all(|l| l.starts_with(':')) {
                continue;
            }
            assert!(block.contains("event: poke"), "{block}");
            let data = block
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .expect("data line");
            let value: serde_json::Value = serde_json::from_str(data).unwrap();
            return value["cursor"].as_u64().unwrap();
        }
    }

    /// Whether the server ended the stream cleanly (after whatever it still had to send).
    pub async fn ended(&mut self) -> bool {
        loop {
            match self.resp.chunk().await {
                Ok(Some(_)) => continue,
                Ok(None) => return true,
                Err(_) => return false,
            }
        }
    }
}
